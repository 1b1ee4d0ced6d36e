"""Found by probing the running server as an outside user: extreme but valid dates and
instants, and a batch that retracts one event twice."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from api import create_app
from registry.seed import seed

AGREEMENT = "ru-eu-readmission-agreement"
SERIES = "ru-eu-readmission-joint-committee"


def _meeting(http: FlaskClient, auth: dict[str, str], record_id: str) -> None:
    response = http.post("/v1/meetings", json={"id": record_id, "title": "A probe", "series": SERIES},
                         headers=auth)
    assert response.status_code == 201, response.get_data(as_text=True)


def _append(http: FlaskClient, auth: dict[str, str], record_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(f"/v1/meetings/{record_id}/events", json=body, headers=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def test_an_instant_before_the_year_1000_is_before_every_recorded_event(
        client: tuple[FlaskClient, dict[str, str]]) -> None:
    """Instants are compared as text: year 999 must be written 0999, or it sorts after 2026."""
    http, _ = client
    for known_at in ("0999-06-01T00:00:00Z", "0300-01-01T00:00:00Z"):
        page = http.get(f"/v1/agreements?as_of=2010-01-01&known_at={known_at}").get_json()
        assert page["items"] == [], known_at
        assert page["known_at"] == known_at.replace("Z", ".000000Z")
        view = http.get(f"/v1/agreements/{AGREEMENT}?as_of=2010-01-01&known_at={known_at}")
        assert view.status_code == 404 or view.get_json()["status"] is None, known_at
    changes = http.get("/v1/changes?known_from=0999-06-01T00:00:00Z&known_to=9999-01-01T00:00:00Z"
                       "&as_of=2010-01-01").get_json()
    assert AGREEMENT in [item["id"] for item in changes["items"]]


def test_the_timeline_page_draws_events_at_the_ends_of_the_calendar(
        client: tuple[FlaskClient, dict[str, str]]) -> None:
    """Valid times the API accepts (year 9999, the first days of year 1) never make the page a 500."""
    http, auth = client
    _meeting(http, auth, "probe-far-ends")
    for valid in ("9999", "9999-12-31", "0001-01-03", "[..0001-02-01]", "9999-12/.."):
        _append(http, auth, "probe-far-ends", {"type": "scheduled", "valid": valid, "planned": "2030"})
    for query in ("", "?record=probe-far-ends", "?from=9999-01-01&to=9999-12-31", "?as_of=9999-12-31",
                  "?as_of=0001-01-01"):
        page = http.get(f"/timeline{query}")
        assert page.status_code == 200, (query, page.get_data(as_text=True)[:200])


def test_the_timeline_page_takes_a_limit_as_the_list_pages_do(client: tuple[FlaskClient, dict[str, str]]) -> None:
    """`limit` (1 to 1,000) is the rows a page shows; the pager's links keep it."""
    http, _ = client
    total = len(http.get("/v1/timeline?limit=1000").get_json()["items"])
    assert total > 5
    pages = -(-total // 5)
    first = http.get("/timeline?limit=5&kind=agreement")
    assert first.status_code == 200, first.get_data(as_text=True)[:300]
    whole = http.get("/timeline?limit=5")
    text = whole.get_data(as_text=True)
    assert whole.status_code == 200 and f"page 1 of {pages}" in text
    assert text.count('<tr class="state-') == 5
    following = re.search(r'<a rel="next" href="([^"]+)"', text)
    assert following is not None and "limit=5" in following.group(1) and "page=2" in following.group(1)
    last = http.get(f"/timeline?limit=5&page={pages}").get_data(as_text=True)
    assert last.count('<tr class="state-') == total - 5 * (pages - 1)
    assert http.get(f"/timeline?limit=5&page={pages + 1}").status_code == 400
    for bad in ("0", "1001", "x", "-5"):
        refused = http.get(f"/timeline?limit={bad}")
        assert refused.status_code == 400 and "limit" in refused.get_data(as_text=True), bad
    # As on the list pages: /agreements takes the same bounds.
    assert http.get("/agreements?limit=1000").status_code == 200
    assert http.get("/agreements?limit=1001").status_code == 400


def test_a_batch_cannot_retract_or_correct_an_event_it_already_retracted(
        client: tuple[FlaskClient, dict[str, str]]) -> None:
    """As the single calls: an event retracted earlier in the same batch is 'already retracted'."""
    http, auth = client
    _meeting(http, auth, "probe-batch-retract")
    event = _append(http, auth, "probe-batch-retract", {"type": "held", "valid": "2019-01-01"})["id"]
    head = http.get("/v1/audit/head").get_json()["position"]
    retract = {"op": "retract", "event": event, "body": {"reason": "entered in error"}}
    correct = {"op": "correct", "event": event, "body": {"changes": {"place": "Moscow"}, "reason": "moved"}}
    for second in (retract, correct):
        response = http.post("/v1/batch", json={"writes": [retract, second]}, headers=auth)
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.get_json()["errors"]["writes"]["1"]["target"] == ["already retracted"]
        assert http.get("/v1/audit/head").get_json()["position"] == head


def test_a_retraction_that_raced_another_is_refused(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two requests retract one event at once: both read it as not retracted; the second to
    emit its event sees the first on the record and is refused, as the single call would be."""
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False})
    registry = app.extensions["registry"]
    try:
        seed(registry)
        auth = {"Authorization": f"Bearer {registry.tokens.create('editor', 'editor')}"}
        http = app.test_client()
        _meeting(http, auth, "probe-race")
        event = _append(http, auth, "probe-race", {"type": "held", "valid": "2019-01-01"})["id"]
        first = http.post(f"/v1/events/{event}/retractions", json={"reason": "first"}, headers=auth)
        assert first.status_code == 201
        head = http.get("/v1/audit/head").get_json()["position"]
        monkeypatch.setattr(registry.reader, "is_retracted", lambda event_id: False)  # the stale read
        for path, body in ((f"/v1/events/{event}/retractions", {"reason": "second"}),
                           (f"/v1/events/{event}/corrections", {"changes": {"place": "Kyiv"}, "reason": "r"})):
            response = http.post(path, json=body, headers=auth)
            assert response.status_code == 422, response.get_data(as_text=True)
            assert response.get_json()["errors"] == {"target": ["already retracted"]}
        assert http.get("/v1/audit/head").get_json()["position"] == head
    finally:
        registry.close()


@pytest.mark.parametrize("call", ["register", "batch", "append_if_match", "retract"])
def test_a_retry_racing_its_first_attempt_gets_the_first_answer(
        store_url: str, monkeypatch: pytest.MonkeyPatch, call: str) -> None:
    """A client retries (same Idempotency-Key, same body) while its first request is still being
    written: the retry read the keys before the first committed, then finds its record taken,
    moved on or retracted. It answers what the first answered, not 409, 412 or 422."""
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False})
    registry = app.extensions["registry"]
    try:
        seed(registry)
        auth = {"Authorization": f"Bearer {registry.tokens.create('editor', 'editor')}"}
        http = app.test_client()
        _meeting(http, auth, "probe-retry")
        held = _append(http, auth, "probe-retry", {"type": "held", "valid": "2019-01-01"})["id"]
        path, body, headers = {
            "register": ("/v1/agreements", {"id": "probe-retry-agreement", "title": "t"}, {}),
            "batch": ("/v1/batch", {"writes": [{"op": "register", "collection": "agreements",
                                                "body": {"id": "probe-retry-batch", "title": "t"}}]}, {}),
            "append_if_match": ("/v1/meetings/probe-retry/events", {"type": "cancelled", "valid": "2019-02"},
                                {"If-Match": '"2"'}),
            "retract": (f"/v1/events/{held}/retractions", {"reason": "entered in error"}, {}),
        }[call]
        headers = {**auth, **headers, "Idempotency-Key": f"retry-{call}"}
        first = http.post(path, json=body, headers=headers)
        assert first.status_code == 201, first.get_data(as_text=True)
        head = http.get("/v1/audit/head").get_json()["position"]
        seen = registry._idempotency
        monkeypatch.setattr(registry, "_idempotency", lambda actor, key, request: {  # the read before the commit
            k: v for k, v in seen(actor, key, request).items() if k != "replay"})
        retry = http.post(path, json=body, headers=headers)
        assert retry.status_code == 201, retry.get_data(as_text=True)
        assert retry.get_json() == first.get_json()
        assert http.get("/v1/audit/head").get_json()["position"] == head
    finally:
        registry.close()
