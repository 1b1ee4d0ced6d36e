"""The API over HTTP, against a real `registry serve`: an editor's day with the registry.

Every write is read back at once (read your writes, across the server's workers),
and each record written here is new, so the tests share one seeded server.
"""

from __future__ import annotations

import re
from typing import Any

import requests
from e2e_harness import Server
from support.metrics import samples, value

from registry.log.chain import GENESIS, envelope_hash

VISA = "ru-eu-visa-facilitation-agreement"
PCA = "ru-eu-partnership-and-cooperation-agreement"
ENVELOPE_KEYS = {"id", "position", "record", "kind", "version", "type", "valid", "valid_lower", "valid_upper",
                 "recorded_at", "data", "sources", "note", "actor", "hash", "prev_hash"}
OJ_2007 = {"title": "Official Journal of the European Union, L 129, 17 May 2007, p. 27",
           "url": "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:22007A0517(01)"}


def written(response: requests.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def view(server: Server, path: str, **params: str) -> dict[str, Any]:
    return written(server.get(path, params=params), 200)


def test_an_editor_registers_an_agreement_and_follows_it_into_force(server: Server) -> None:
    editor = server.tokens["editor"]

    # The editor registers the visa facilitation agreement.
    created = server.post("/v1/agreements", {
        "id": VISA, "title": "Agreement on the facilitation of the issuance of visas to the citizens "
                             "of the Russian Federation and the European Union",
        "short_title": "Visa Facilitation Agreement", "parties": ["RU", "eu"], "sources": [OJ_2007],
    }, token=editor)
    registered = written(created)
    assert created.headers["Location"].endswith(f"/v1/agreements/{VISA}")
    assert created.headers["ETag"] == '"1"'
    assert registered["id"] == VISA and registered["version"] == 1 and registered["status"] is None

    # Read your writes: the Location answers at once, with the same version.
    location = server.get(created.headers["Location"].removeprefix(server.url))
    assert location.status_code == 200 and location.headers["ETag"] == '"1"'
    assert location.json()["parties"] == ["RU", "eu"]

    # It was signed in Sochi on 25 May 2006 ...
    signing = server.post(f"/v1/agreements/{VISA}/events", {
        "type": "signed", "valid": "2006-05-25", "place": "Sochi", "sources": [OJ_2007],
    }, token=editor, headers={"If-Match": '"1"'})
    signed = written(signing)
    assert signing.headers["ETag"] == '"2"'
    assert set(signed) == ENVELOPE_KEYS
    assert (signed["type"], signed["version"], signed["actor"]) == ("signed", 2, "e2e-editor")
    assert (signed["valid_lower"], signed["valid_upper"]) == ("2006-05-25", "2006-05-25")
    now = view(server, f"/v1/agreements/{VISA}")
    assert (now["version"], now["status"], now["signed"]) == (2, "signed", "2006-05-25")

    # ... and entered into force on 1 June 2007.
    in_force = written(server.post(f"/v1/agreements/{VISA}/events",
                                   {"type": "entered_into_force", "valid": "2007-06-01"}, token=editor))
    assert in_force["version"] == 3 and in_force["prev_hash"] == signed["hash"]
    now = view(server, f"/v1/agreements/{VISA}")
    assert (now["version"], now["status"], now["entered_into_force"]) == (3, "in_force", "2007-06-01")

    # Valid time: what was it on a day?
    assert view(server, f"/v1/agreements/{VISA}", as_of="2006-05-24")["status"] is None
    assert view(server, f"/v1/agreements/{VISA}", as_of="2006-12-31")["status"] == "signed"
    assert view(server, f"/v1/agreements/{VISA}", as_of="2007-06-01")["status"] == "in_force"

    # System time: what did the registry say right after the signing was entered?
    then = view(server, f"/v1/agreements/{VISA}", as_of="2008-01-01", known_at=signed["recorded_at"])
    assert (then["version"], then["status"], then["entered_into_force"]) == (2, "signed", None)

    # History lists the events in valid order, with their state and certainty as of the day.
    history = view(server, f"/v1/agreements/{VISA}/history", as_of="2006-12-31")["items"]
    assert [(i["type"], i["state"], i["certainty"]) for i in history] == [
        ("registered", "current", None), ("signed", "current", "certain"),
        ("entered_into_force", "current", "not_yet")]

    # The list of agreements in force on 1 June 2007 holds it beside the readmission agreement.
    listed = view(server, "/v1/agreements", as_of="2007-06-01", status="in_force", party="RU")
    assert {VISA, "ru-eu-readmission-agreement"} <= {item["id"] for item in listed["items"]}


def test_a_mistyped_date_is_corrected_and_a_wrong_event_retracted(server: Server) -> None:
    editor = server.tokens["editor"]
    written(server.post("/v1/agreements", {
        "id": PCA, "title": "Agreement on Partnership and Cooperation", "parties": ["RU", "eu"]}, token=editor))
    events = f"/v1/agreements/{PCA}/events"
    written(server.post(events, {"type": "signed", "valid": "1994-06-24", "place": "Corfu"}, token=editor))
    # Day and month are swapped by mistake, and a termination is entered that never happened.
    mistyped = written(server.post(events, {"type": "entered_into_force", "valid": "1997-01-12"}, token=editor))
    wrong = written(server.post(events, {"type": "terminated", "valid": "2007-12-01"}, token=editor))
    assert view(server, f"/v1/agreements/{PCA}", as_of="1997-06-01")["status"] == "in_force"
    assert view(server, f"/v1/agreements/{PCA}", as_of="2008-01-01")["status"] == "terminated"

    # The entry into force is corrected to 1 December 1997; the view follows at once.
    correction = written(server.post(f"/v1/events/{mistyped['id']}/corrections", {
        "changes": {"valid": "1997-12-01"}, "reason": "day and month were swapped"}, token=editor))
    assert (correction["type"], correction["record"]) == ("corrected", PCA)
    assert correction["data"]["target"] == mistyped["id"]
    assert view(server, f"/v1/agreements/{PCA}", as_of="1997-06-01")["status"] == "signed"
    # Known before the correction, the registry said otherwise.
    before = view(server, f"/v1/agreements/{PCA}", as_of="1997-06-01", known_at=wrong["recorded_at"])
    assert before["status"] == "in_force"

    # The termination is retracted: the agreement stays in force.
    retraction = written(server.post(f"/v1/events/{wrong['id']}/retractions", {
        "reason": "the agreement was extended annually, not terminated"}, token=editor))
    assert (retraction["type"], retraction["data"]["target"]) == ("retracted", wrong["id"])
    after = view(server, f"/v1/agreements/{PCA}", as_of="2008-01-01")
    assert (after["status"], after["entered_into_force"]) == ("in_force", "1997-12-01")

    # History marks both, and each correcting event is in the log under its own id.
    states = {i["id"]: i["state"] for i in view(server, f"/v1/agreements/{PCA}/history")["items"]}
    assert states[mistyped["id"]] == "corrected" and states[wrong["id"]] == "retracted"
    assert view(server, f"/v1/events/{correction['id']}") == correction
    assert view(server, f"/v1/events/{retraction['id']}") == retraction


def test_snapshot_and_timeline_show_the_seed_timeline(server: Server) -> None:
    # The whole registry on 1 January 2009: the readmission agreement in force, no meeting held yet.
    snapshot = view(server, "/v1/snapshot", as_of="2009-01-01")
    assert snapshot["as_of"] == "2009-01-01" and snapshot["position"] == server.head_position()
    assert set(snapshot["records"]) == {"agreements", "bodies", "dialogues", "meetings", "organisations", "channels"}
    agreements = {a["id"]: a for a in snapshot["records"]["agreements"]}
    assert agreements["ru-eu-readmission-agreement"]["status"] == "in_force"
    assert snapshot["records"]["meetings"] == [] and snapshot["records"]["dialogues"] == []

    # On 4 April 2018 the Sofia session is under way.
    meetings = {m["id"]: m for m in view(server, "/v1/snapshot", as_of="2018-04-04")["records"]["meetings"]}
    assert meetings["ru-eu-migration-dialogue-sofia-2018"]["status"] == "in_progress"
    assert meetings["ru-eu-readmission-joint-committee-17"]["status"] == "held"

    # The meetings held from October 2017 to the end of 2018, in valid order.
    timeline = view(server, "/v1/timeline", **{"from": "2017-10-01", "to": "2018-12-31", "kind": "meeting"})
    assert [(i["record"], i["valid"]) for i in timeline["items"]] == [
        ("ru-eu-readmission-joint-committee-17", "2017-10-04"),
        ("ru-eu-migration-dialogue-sofia-2018", "2018-04-04/2018-04-05")]
    everything = view(server, "/v1/timeline", **{"from": "2006-01-01", "to": "2018-12-31"})["items"]
    assert [i["valid_lower"] for i in everything] == sorted(i["valid_lower"] for i in everything)


def test_the_log_pages_by_position_with_link_headers(server: Server) -> None:
    # Page through the whole log seven events at a time, following rel="next".
    url, pages, items = f"{server.url}/v1/events?after=0&limit=7", 0, []
    while url:
        response = server.session.get(url, timeout=30)
        page = written(response, 200)
        items += page["items"]
        pages += 1
        assert len(page["items"]) <= 7
        url = response.links.get("next", {}).get("url")
        if url:
            assert re.search(rf"after={page['next']}(&|$)", url) and "limit=7" in url
    last = page["last_position"]
    assert [e["position"] for e in items] == list(range(1, last + 1)) and pages >= last // 7

    # Each envelope's hash covers it, chained to the one before.
    previous = GENESIS
    for envelope in items:
        assert envelope["prev_hash"] == previous and envelope_hash(envelope) == envelope["hash"]
        previous = envelope["hash"]
    assert view(server, "/v1/audit/head") == {
        "position": last, "hash": items[-1]["hash"], "recorded_at": items[-1]["recorded_at"]}

    # One event by id; the log filtered by type.
    assert view(server, f"/v1/events/{items[5]['id']}") == items[5]
    held = view(server, "/v1/events", type="held")["items"]
    meetings = {"ru-eu-readmission-joint-committee-17", "ru-eu-migration-dialogue-sofia-2018"}
    assert {e["record"] for e in held} >= meetings
    assert {e["type"] for e in held} == {"held"}


def test_writes_need_an_editor_token(server: Server) -> None:
    head = server.head_position()
    body = {"type": "scope_extended", "valid": "2010-06-01", "scope": "stateless persons"}
    path = "/v1/agreements/ru-eu-readmission-agreement/events"

    # A reader may read but not write; no token or an unknown one is unauthorised.
    refused = server.post(path, body, token=server.tokens["reader"])
    assert refused.status_code == 403 and refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["status"] == 403 and "reader" in refused.json()["detail"]
    for token in (None, "reg_not-a-token"):
        anonymous = server.post(path, body, token=token)
        assert anonymous.status_code == 401 and anonymous.json()["title"] == "Unauthorized"
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert server.head_position() == head
    assert server.get("/v1/agreements/ru-eu-readmission-agreement").status_code == 200


def test_if_match_makes_an_append_conditional(server: Server) -> None:
    editor = server.tokens["editor"]
    arrangement = "frontex-fsb-border-guard-service-terms-of-reference"
    written(server.post("/v1/agreements", {
        "id": arrangement, "title": "Terms of reference on operational cooperation between FRONTEX and the "
                                    "Border Guard Service of the FSB of Russia",
        "agreement_type": "working_arrangement", "parties": ["frontex", "fsb-border-guard-service"]}, token=editor))
    head = server.head_position()
    signing = {"type": "signed", "valid": "2006-09-14", "place": "Moscow"}

    # An editor who read version 4 is stale: 412, and nothing is written.
    stale = server.post(f"/v1/agreements/{arrangement}/events", signing, token=editor, headers={"If-Match": '"4"'})
    assert stale.status_code == 412 and stale.json()["title"] == "Precondition failed"
    assert server.head_position() == head

    # Matching the current version, the append goes through.
    matching = server.post(f"/v1/agreements/{arrangement}/events", signing, token=editor, headers={"If-Match": '"1"'})
    assert written(matching)["version"] == 2 and matching.headers["ETag"] == '"2"'
    assert server.head_position() == head + 1
    assert view(server, f"/v1/agreements/{arrangement}", as_of="2007-01-01")["status"] == "signed"


def test_an_idempotency_key_replays_the_first_response(server: Server) -> None:
    editor = server.tokens["editor"]
    record = "ru-eu-readmission-joint-committee"
    adopted = {"type": "recommendation_adopted", "valid": "2017-10-04",
               "subject": "practical implementation of the readmission agreement",
               "meeting": "ru-eu-readmission-joint-committee-17"}
    key = {"Idempotency-Key": "jc17-recommendation"}
    path = f"/v1/bodies/{record}/events"

    # The first request writes; its retry returns the same envelope and writes nothing.
    first = written(server.post(path, adopted, token=editor, headers=key))
    head = server.head_position()
    again = written(server.post(path, adopted, token=editor, headers=key))
    assert again == first and server.head_position() == head
    log = view(server, "/v1/events", record=record, type="recommendation_adopted")["items"]
    assert [e["id"] for e in log] == [first["id"]]

    # The same key with another body is refused.
    other = server.post(path, {**adopted, "subject": "exchange of statistics"}, token=editor, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["errors"]
    assert server.head_position() == head


def test_the_api_describes_itself(server: Server) -> None:
    spec = view(server, "/openapi.json")
    assert spec["openapi"].startswith("3.1")
    for path in ("/v1/agreements", "/v1/agreements/{record_id}", "/v1/agreements/{record_id}/events",
                 "/v1/agreements/{record_id}/history", "/v1/events", "/v1/events/{event_id}",
                 "/v1/events/{event_id}/corrections", "/v1/events/{event_id}/retractions",
                 "/v1/snapshot", "/v1/timeline", "/v1/audit/head"):
        assert path in spec["paths"], path
    docs = server.get("/docs")
    assert docs.status_code == 200 and docs.headers["Content-Type"].startswith("text/html")
    assert "rapidoc-min.js" in docs.text and "/v1/agreements/{record_id}/events" in docs.text


def test_health_readiness_and_metrics(server: Server) -> None:
    assert view(server, "/healthz") == {"status": "ok"}
    head = server.head_position()
    ready = view(server, "/readyz")
    assert (ready["lag"], ready["log_position"], ready["projected_position"]) == (0, head, head)
    metrics = server.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["Content-Type"].startswith("text/plain")
    assert value(metrics.text, "registry_log_position") == head
    assert value(metrics.text, "registry_projection_lag") == 0
    assert ("registry_projection_lag", frozenset()) in samples(metrics.text)


def test_a_retried_registration_replays_the_first_response(server: Server) -> None:
    editor = server.tokens["editor"]
    key = {"Idempotency-Key": "register-ru-eu-road-map-2005"}
    body = {"id": "ru-eu-common-spaces-road-maps", "title": "Road Maps for the four EU-Russia Common Spaces"}
    first = server.post("/v1/agreements", body, token=editor, headers=key)
    assert first.status_code == 201
    written(server.post(f"/v1/agreements/{body['id']}/events", {"type": "signed", "valid": "2005-05-10",
                                                                "place": "Moscow"}, token=editor))

    # The client never saw the first 201 and retries: it must get that response back.
    retry = server.post("/v1/agreements", body, token=editor, headers=key)
    assert retry.status_code == 201 and retry.headers["ETag"] == first.headers["ETag"] == '"1"'
    assert (retry.json()["version"], retry.json()["status"]) == (1, None)


def test_a_retried_retraction_replays_the_first_response(server: Server) -> None:
    editor = server.tokens["editor"]
    record = "ru-eu-migration-dialogue-sofia-2018"
    # A cancellation entered against the Sofia session by mistake.
    wrong = written(server.post(f"/v1/meetings/{record}/events", {"type": "cancelled", "valid": "2018-04-03"},
                                token=editor))
    key = {"Idempotency-Key": "retract-sofia-cancellation"}
    body = {"reason": "entered against the wrong session; the Sofia session was held"}
    first = written(server.post(f"/v1/events/{wrong['id']}/retractions", body, token=editor, headers=key))
    head = server.head_position()

    # The retry with the same key gets the same envelope and writes nothing.
    retry = server.post(f"/v1/events/{wrong['id']}/retractions", body, token=editor, headers=key)
    assert retry.status_code == 201 and retry.json() == first
    assert server.head_position() == head

    # Without the key, retracting it again is refused.
    again = server.post(f"/v1/events/{wrong['id']}/retractions", body, token=editor)
    assert again.status_code == 422 and server.head_position() == head
    assert view(server, f"/v1/meetings/{record}", as_of="2018-04-06")["status"] == "held"
