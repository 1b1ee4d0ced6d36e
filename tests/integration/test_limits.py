"""Hostile input over HTTP (SPEC section 11 and the webhook rules of section 4): refused quickly
with a 4xx problem, never a 500; whatever the store holds, every read still answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar

from api import create_app
from registry.seed import seed

AGREEMENT = "/v1/agreements/ru-eu-readmission-agreement"
COMMITTEE = "ru-eu-readmission-joint-committee"


@pytest.fixture
def app(store_url: str) -> Iterator[Flask]:
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False, "BASE_URL": "https://registry.example.org",
                      "RATE_LIMIT": "5 per minute"})
    registry = app.extensions["registry"]
    seed(registry)
    for name, role in (("alice", "editor"), ("bob", "editor"), ("root", "admin"), ("rita", "reader")):
        app.config[name] = {"Authorization": f"Bearer {registry.tokens.create(name, role)}"}
    yield app
    registry.feed.close()
    registry.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.get_json()  # type: ignore[no-any-return]


def head(client: FlaskClient) -> int:
    return client.get("/v1/audit/head").get_json()["position"]  # type: ignore[no-any-return]


def test_a_long_edtf_set_is_refused_in_milliseconds(app: Flask, client: FlaskClient) -> None:
    # Given a `valid` of 3,000 set members, one of 818, and one of 19 in under 100 characters
    huge = "[" + ",".join(["2019-01-01"] * 3000) + "]"
    before = head(client)
    started = time.perf_counter()
    response = client.post(f"{AGREEMENT}/events", json={"type": "terminated", "valid": huge},
                           headers=app.config["alice"])
    elapsed = time.perf_counter() - started
    # Then both are 422 naming `valid`, the long one within a fraction of a second, and nothing is written
    assert any("valid" in field for field in problem(response, 422)["errors"])
    assert elapsed < 0.5, elapsed
    started = time.perf_counter()
    response = client.post(f"{AGREEMENT}/events", json={"type": "terminated", "valid": huge[:9000] + "]"},
                           headers=app.config["alice"])
    assert "valid" in problem(response, 422)["errors"]
    assert time.perf_counter() - started < 0.5
    wide = "[" + ",".join(["2019"] * 19) + "]"
    assert len(wide) <= 100
    response = client.post(f"{AGREEMENT}/events", json={"type": "terminated", "valid": wide},
                           headers=app.config["alice"])
    assert response.status_code == 201, response.get_data(as_text=True)  # 19 members: within the limits
    assert head(client) == before + 1


def test_text_fields_are_bounded(app: Flask, client: FlaskClient) -> None:
    before = head(client)
    response = client.post(f"{AGREEMENT}/events", json={"type": "terminated", "valid": "2030", "note": "x" * 10_001},
                           headers=app.config["alice"])
    problem(response, 422)
    response = client.post(f"{AGREEMENT}/events", json={"type": "terminated", "valid": "2030", "note": "x" * 10_000},
                           headers=app.config["alice"])
    assert response.status_code == 201
    assert head(client) == before + 1


def test_atom_and_icalendar_answer_text_xml_cannot_carry(app: Flask, client: FlaskClient) -> None:
    # Given stored text with non-characters, and a meeting planned for the last day of year 9999
    odd = "agenda \ufffe\uffff \U0001fffe end"
    response = client.post(f"{AGREEMENT}/events", json={"type": "terminated", "valid": "2030", "note": odd},
                           headers=app.config["alice"])
    assert response.status_code == 201
    response = client.post("/v1/meetings", headers=app.config["alice"], json={
        "id": "jc-far-future", "title": f"Far future {odd}", "series": COMMITTEE, "ordinal": 99})
    assert response.status_code == 201
    response = client.post("/v1/meetings/jc-far-future/events", headers=app.config["alice"], json={
        "type": "scheduled", "valid": "2019", "planned": "9999-12-31", "place": f"Brussels {odd}"})
    assert response.status_code == 201
    # Then the Atom feed is well-formed XML with the text replaced, not a 500
    feed = client.get("/v1/feed.atom")
    assert feed.status_code == 200, feed.get_data(as_text=True)
    root = ElementTree.fromstring(feed.data)
    summaries = [e.text or "" for e in root.iter("{http://www.w3.org/2005/Atom}summary")]
    assert any("agenda \ufffd\ufffd \ufffd end" in text for text in summaries), summaries
    # And the calendar answers, the far meeting on its day
    calendar = client.get("/v1/meetings.ics")
    assert calendar.status_code == 200, calendar.get_data(as_text=True)
    events = {str(e["summary"]): e for e in Calendar.from_ical(calendar.data).walk("VEVENT")}
    far = events["Far future agenda \ufffd\ufffd \ufffd end"]
    assert far.decoded("dtstart").isoformat() == "9999-12-31"
    assert "\ufffe" not in calendar.data.decode()


def test_subscriptions_are_visible_to_their_creator_and_admins_only(app: Flask, client: FlaskClient) -> None:
    app.extensions["registry"].webhooks.allow_private = True
    made = client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"}, headers=app.config["alice"])
    assert made.status_code == 201, made.get_data(as_text=True)
    mine = made.get_json()["id"]
    # Bob, another editor, neither sees, lists nor ends Alice's subscription
    problem(client.get(f"/v1/subscriptions/{mine}", headers=app.config["bob"]), 404)
    problem(client.delete(f"/v1/subscriptions/{mine}", headers=app.config["bob"]), 404)
    assert client.get("/v1/subscriptions", headers=app.config["bob"]).get_json()["items"] == []
    # Alice and an admin do
    assert client.get(f"/v1/subscriptions/{mine}", headers=app.config["alice"]).get_json()["status"] == "active"
    assert [s["id"] for s in client.get("/v1/subscriptions", headers=app.config["root"]).get_json()["items"]] == [mine]
    assert client.delete(f"/v1/subscriptions/{mine}", headers=app.config["root"]).status_code == 204
    assert client.get(f"/v1/subscriptions/{mine}", headers=app.config["alice"]).get_json()["status"] == "ended"


@pytest.mark.parametrize("url", [
    "http://[::127.0.0.1]/hook", "http://[64:ff9b::7f00:1]/hook", "http://[2002:7f00:1::]/hook",
    "http://[::ffff:10.0.0.1]/hook", "http://[64:ff9b:1::a00:1]/hook",
    "https://example.org/a hook", "https://example.org/hook\r\nX-Injected: 1", "https://example.org/\x7f",
    "https://example.org/\thook",
])
def test_webhook_targets_that_embed_private_addresses_or_hold_controls_are_refused(
        app: Flask, client: FlaskClient, url: str) -> None:
    response = client.post("/v1/subscriptions", json={"url": url}, headers=app.config["alice"])
    assert "url" in problem(response, 422)["errors"]
    assert client.get("/v1/subscriptions", headers=app.config["root"]).get_json()["items"] == []


@pytest.mark.parametrize("body", [
    b'{"url": "https://example.org/\\ud800"}', b'{"url": "https://example.org/\\u0000"}',
    b'{"url": "https://example.org/", "records": ["\\udfff"]}',
])
def test_odd_unicode_in_a_subscription_is_a_4xx(app: Flask, client: FlaskClient, body: bytes) -> None:
    response = client.post("/v1/subscriptions", data=body, content_type="application/json",
                           headers=app.config["alice"])
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)


def test_odd_ids_and_headers_are_4xx(app: Flask, client: FlaskClient) -> None:
    for path in ("/v1/subscriptions/%00", "/v1/subscriptions/a%00b", "/v1/subscriptions/" + "9" * 5000):
        problem(client.get(path, headers=app.config["alice"]), 404)
    before = head(client)
    response = client.post(f"{AGREEMENT}/events", json={"type": "terminated", "valid": "2030"},
                           headers={**app.config["alice"], "If-Match": '"' + "9" * 5000 + '"'})
    assert "If-Match" in problem(response, 400)["errors"]
    assert head(client) == before


def test_405_names_the_allowed_methods(client: FlaskClient) -> None:
    response = client.put("/v1/agreements")
    problem(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_read_auth_covers_metrics_not_health_and_readyz_tells_no_error_text(store_url: str) -> None:
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False, "READ_AUTH": True})
    registry = app.extensions["registry"]
    try:
        client = app.test_client()
        problem(client.get("/metrics"), 401)
        token = registry.tokens.create("reader", "reader")
        assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200

        def broken() -> Any:
            raise RuntimeError("password=hunter2 at db.internal:5432")

        registry.reader.lag = broken
        response = client.get("/readyz")
        body = problem(response, 503)
        assert "hunter2" not in response.get_data(as_text=True) and "db.internal" not in body["detail"]
        assert response.headers["Retry-After"]
    finally:
        registry.feed.close()
        registry.close()


def test_expensive_reads_are_rate_limited_per_client(app: Flask, client: FlaskClient) -> None:
    # Five expensive reads a minute (as configured here), shared by the snapshot and the timeline
    statuses = [client.get("/v1/snapshot").status_code for _ in range(3)]
    statuses += [client.get("/v1/timeline?from=2000-01-01&to=2030-01-01").status_code for _ in range(2)]
    assert statuses == [200] * 5
    refused = client.get("/v1/timeline?from=2000-01-01&to=2030-01-01")
    assert problem(refused, 429) and int(refused.headers["Retry-After"]) > 0
    # Another client address still has its budget; cheap reads are not counted
    other = client.get("/v1/snapshot", environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert other.status_code == 200
    assert client.get(AGREEMENT).status_code == 200


def test_one_verification_at_a_time(app: Flask, client: FlaskClient) -> None:
    import threading

    from api import limits

    started, release = threading.Event(), threading.Event()

    def slow_view() -> Any:
        started.set()
        release.wait(10)
        return {"ok": True}

    guarded = limits.one_at_a_time(slow_view)
    with app.test_request_context():
        worker = threading.Thread(target=guarded)
        worker.start()
        assert started.wait(5)
        assert guarded().status_code == 429
        release.set()
        worker.join()
        assert guarded() == {"ok": True}
    assert client.get("/v1/audit/verify?projections=false").status_code in (200, 400)


def test_without_a_base_url_the_host_is_checked_and_answers_vary_by_it(store_url: str) -> None:
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False})
    registry = app.extensions["registry"]
    try:
        client = app.test_client()
        for host in ("a b", 'x"><script>', "x/y?z", "evil.example:99999", ""):
            problem(client.get("/v1/feed.atom", headers={"Host": host}), 400)
        answer = client.get("/v1/feed.atom", headers={"Host": "registry.example.org:8443"})
        assert answer.status_code == 200 and "Host" in answer.headers["Vary"]
        assert b"http://registry.example.org:8443/v1/feed.atom" in answer.data
        assert client.get("/healthz", headers={"Host": "[::1]:8000"}).status_code == 200
    finally:
        registry.feed.close()
        registry.close()


LONG_NUMBER, LONG_TEXT = "9" * 5000, "a" * 100_000


@pytest.mark.parametrize("path", [
    f"/v1/agreements?cursor={LONG_TEXT}", f"/v1/agreements?limit={LONG_NUMBER}", f"/v1/agreements/{LONG_TEXT}",
    f"/v1/agreements/{LONG_TEXT}/history", f"/v1/events?after={LONG_NUMBER}", f"/v1/events/{LONG_TEXT}",
    f"/v1/audit/verify?from={LONG_NUMBER}", f"/v1/feed.atom?page={LONG_NUMBER}", f"/v1/meetings.ics?series={LONG_TEXT}",
    f"/v1/audit/export?after={LONG_NUMBER}", f"/v1/stream?after={LONG_NUMBER}", f"/v1/agreements?party={LONG_TEXT}",
    "/v1/agreements?status=%00", "/v1/agreements?known_at=9999-12-31T23:59:59Z",
])
def test_long_ids_numbers_and_cursors_are_refused_not_500(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]


def test_long_keys_and_bodies_are_refused_not_500(app: Flask, client: FlaskClient) -> None:
    before = head(client)
    writer = app.config["alice"]
    answers = [
        client.post(f"{AGREEMENT}/events", headers={**writer, "Idempotency-Key": LONG_TEXT},
                    json={"type": "terminated", "valid": "2030"}),
        client.post("/v1/agreements", headers=writer, json={"id": LONG_TEXT, "title": "Too long an id"}),
        client.post(f"/v1/events/{LONG_TEXT}/corrections", headers=writer, json={"changes": {"a": 1}, "reason": "x"}),
        client.post("/v1/agreements", headers=writer, data=b"[" * 100_000, content_type="application/json"),
        client.post("/v1/agreements", headers=writer, data=b'{"id": ' + LONG_NUMBER.encode() + b"}",
                    content_type="application/json"),
        client.get("/v1/stream", headers={"Last-Event-ID": LONG_NUMBER}),
    ]
    assert all(400 <= answer.status_code < 500 for answer in answers), [a.status_code for a in answers]
    assert head(client) == before
