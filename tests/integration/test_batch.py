"""POST /v1/batch: every write in one transaction at consecutive positions, or none of them."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

AGREEMENT = "ru-eu-readmission-agreement"
COMMITTEE = "ru-eu-readmission-joint-committee"


def metric(client: FlaskClient, name: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def head(client: FlaskClient) -> dict[str, Any]:
    return client.get("/v1/audit/head").get_json()  # type: ignore[no-any-return]


def meeting_writes(ordinal: int) -> list[dict[str, Any]]:
    meeting = f"{COMMITTEE}-{ordinal}"
    return [
        {"op": "register", "collection": "meetings",
         "body": {"id": meeting, "title": f"{ordinal}th meeting", "series": COMMITTEE, "ordinal": ordinal}},
        {"op": "append", "collection": "meetings", "id": meeting,
         "body": {"type": "scheduled", "valid": "2030-03", "planned": "2030-03-10", "place": "Brussels"}},
        {"op": "append", "collection": "meetings", "id": meeting, "if_match": 2,
         "body": {"type": "held", "valid": "2030-03-10", "place": "Brussels"}},
    ]


def test_a_batch_registers_a_meeting_and_records_it_at_consecutive_positions(
        client: tuple[FlaskClient, dict[str, str]]) -> None:
    http, auth = client
    before = head(http)["position"]
    commits, events = metric(http, "registry_commits_total"), metric(http, "registry_committed_events_total")
    # An editor files the 19th meeting of the Joint Committee, its schedule and that it was held, at once.
    done = http.post("/v1/batch", json={"writes": meeting_writes(19)}, headers=auth)
    assert done.status_code == 201, done.get_json()
    view, scheduled, held = done.get_json()["items"]
    # Each item is what the single call answers: a view for the registration, envelopes for the events.
    assert view["id"] == f"{COMMITTEE}-19" and view["kind"] == "meeting" and view["version"] >= 1
    assert [scheduled["position"], held["position"]] == [before + 2, before + 3]
    assert (scheduled["type"], held["type"], held["version"]) == ("scheduled", "held", 3)
    assert held["prev_hash"] == scheduled["hash"]
    # One commit of three events, as /metrics counts them.
    assert metric(http, "registry_commits_total") == commits + 1
    assert metric(http, "registry_committed_events_total") == events + 3
    # Reads see all of it; the series counts the meeting.
    shown = http.get(f"/v1/meetings/{COMMITTEE}-19", query_string={"as_of": "2030-04-01"}).get_json()
    assert shown["status"] == "held" and shown["place"] == "Brussels"
    series = http.get(f"/v1/bodies/{COMMITTEE}", query_string={"as_of": "2030-04-01"}).get_json()
    assert series["meetings"]["last"]["id"] == f"{COMMITTEE}-19"
    assert http.get("/v1/audit/verify").get_json()["ok"] is True


@pytest.mark.parametrize(("broken", "status", "field"), [
    ({"op": "append", "collection": "meetings", "id": "no-such-meeting",
      "body": {"type": "held", "valid": "2030"}}, 404, None),
    ({"op": "append", "collection": "agreements", "id": AGREEMENT,
      "body": {"type": "no-such-type", "valid": "2030"}}, 422, "type"),
    ({"op": "append", "collection": "agreements", "id": AGREEMENT, "if_match": 1,
      "body": {"type": "terminated", "valid": "2030"}}, 412, None),
    ({"op": "register", "collection": "agreements", "body": {"id": AGREEMENT, "title": "Again"}}, 409, None),
])
def test_a_failing_write_is_named_by_its_index_and_nothing_is_written(
        client: tuple[FlaskClient, dict[str, str]], broken: dict[str, Any], status: int, field: str | None) -> None:
    http, auth = client
    before = head(http)
    writes = [*meeting_writes(20), broken]
    refused = http.post("/v1/batch", json={"writes": writes}, headers=auth)
    assert refused.status_code == status, refused.get_json()
    assert refused.mimetype == "application/problem+json"
    problem = refused.get_json()["errors"]["writes"]
    assert list(problem) == ["3"]
    if field:
        assert field in problem["3"]
    assert head(http) == before
    assert http.get(f"/v1/meetings/{COMMITTEE}-20").status_code == 404


def test_the_shape_of_a_batch_is_checked_before_any_write(client: tuple[FlaskClient, dict[str, str]]) -> None:
    http, auth = client
    before = head(http)
    for body, where in [
        ({"writes": []}, "writes"),
        ({"writes": [{"op": "append", "collection": "agreements", "body": {}}]}, "writes"),
        ({"writes": [{"op": "delete", "body": {}}]}, "writes"),
        ({"writes": [{"op": "register", "collection": "x", "body": {}}] * 1001}, "writes"),
        ({"items": []}, "items"),
    ]:
        refused = http.post("/v1/batch", json=body, headers=auth)
        assert refused.status_code == 422 and where in refused.get_json()["errors"], refused.get_json()
    assert http.post("/v1/batch", json={"writes": meeting_writes(21)}).status_code == 401
    assert head(http) == before


def test_a_retried_batch_returns_the_first_answer_and_writes_nothing(
        client: tuple[FlaskClient, dict[str, str]]) -> None:
    http, auth = client
    keyed = {**auth, "Idempotency-Key": "committee-22"}
    first = http.post("/v1/batch", json={"writes": meeting_writes(22)}, headers=keyed)
    after = head(http)
    again = http.post("/v1/batch", json={"writes": meeting_writes(22)}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert head(http) == after
    other = http.post("/v1/batch", json={"writes": meeting_writes(23)}, headers=keyed)
    assert other.status_code == 422 and head(http) == after


SHAPE_ERRORS = [  # (a write of the wrong shape, the field its error names)
    ("not an object", None),
    ({"collection": "meetings", "body": {}}, "op"),
    ({"op": "delete", "body": {}}, "op"),
    ({"op": "register", "body": {}}, "collection"),
    ({"op": "append", "collection": "meetings", "id": 19, "body": {}}, "id"),
    ({"op": "correct", "body": {"reason": "r"}}, "event"),
    ({"op": "register", "collection": "meetings", "id": "m", "body": {}}, "id"),
    ({"op": "retract", "event": "e", "if_match": 1, "body": {"reason": "r"}}, "if_match"),
    ({"op": "append", "collection": "meetings", "id": "m", "colour": "red", "body": {}}, "colour"),
    ({"op": "append", "collection": "meetings", "id": "m"}, "body"),
    ({"op": "append", "collection": "meetings", "id": "m", "body": ["held"]}, "body"),
    ({"op": "append", "collection": "meetings", "id": "m", "if_match": True, "body": {}}, "if_match"),
    ({"op": "append", "collection": "meetings", "id": "m", "if_match": 0, "body": {}}, "if_match"),
    ({"op": "append", "collection": "meetings", "id": "m", "if_match": 2**62 + 1, "body": {}}, "if_match"),
    ({"op": "append", "collection": "meetings", "id": "m", "if_match": "2", "body": {}}, "if_match"),
]


def test_each_kind_of_shape_error_is_a_422_naming_the_write_and_field(
        client: tuple[FlaskClient, dict[str, str]]) -> None:
    http, auth = client
    before = head(http)
    for broken, field in SHAPE_ERRORS:
        # A plain write first: the batch is refused as a whole all the same, naming the broken one.
        refused = http.post("/v1/batch", json={"writes": [*meeting_writes(24)[:1], broken]}, headers=auth)
        assert refused.status_code == 422, (broken, refused.get_json())
        assert refused.mimetype == "application/problem+json"
        errors = refused.get_json()["errors"]["writes"]
        assert list(errors) == ["1"], (broken, errors)
        assert field is None or field in errors["1"], (broken, errors)
    for body, field in [({"writes": [*meeting_writes(24)], "items": []}, "items"),
                        ({"writes": {"0": meeting_writes(24)[0]}}, "writes"), ({}, "writes")]:
        refused = http.post("/v1/batch", json=body, headers=auth)
        assert refused.status_code == 422 and field in refused.get_json()["errors"], refused.get_json()
    assert head(http) == before
