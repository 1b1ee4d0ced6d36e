"""Webhooks end to end: a real server, a real receiver, and a delivery worker that is restarted mid-stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import ProjectWorker, Server, create_token
from standardwebhooks.webhooks import Webhook
from support.receiver import Receiver

FAST = {"REGISTRY_WEBHOOK_ALLOW_PRIVATE": "1", "REGISTRY_WEBHOOK_BACKOFF": "0.2", "REGISTRY_WEBHOOK_TICK": "0.1"}
SERVER_ENV = FAST  # the module's server delivers in a thread of each worker
COMMITTEE = "ru-eu-readmission-joint-committee"


def subscribe(server: Server, token: str, receiver: Receiver, **filters: Any) -> dict[str, Any]:
    response = server.post("/v1/subscriptions", {"url": receiver.url, "after": server.head_position(), **filters},
                           token=token)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def meeting_events(server: Server, token: str, ordinal: int) -> list[dict[str, Any]]:
    """The Joint Committee's next meeting: registered, scheduled, held. Returns the three envelopes."""
    record = f"{COMMITTEE}-{ordinal}"
    assert server.post("/v1/meetings", {"id": record, "title": f"Meeting {ordinal} of the Joint Committee",
                                        "series": COMMITTEE, "ordinal": ordinal}, token=token).status_code == 201
    events = server.get("/v1/events", params={"record": record}).json()["items"]
    for body in ({"type": "scheduled", "valid": "2018-01-15", "planned": "2018-06-04", "place": "Moscow"},
                 {"type": "held", "valid": "2018-06-04", "place": "Moscow"}):
        response = server.post(f"/v1/meetings/{record}/events", body, token=token)
        assert response.status_code == 201
        events.append(response.json())
    return events  # type: ignore[no-any-return]


def test_a_receiver_failing_twice_gets_every_event_signed_and_in_order(server: Server) -> None:
    receiver = Receiver(script=(500, 500))
    editor = server.tokens["editor"]
    made = subscribe(server, editor, receiver, kinds=["meeting"])
    recommendation = server.post(f"/v1/bodies/{COMMITTEE}/events", {
        "type": "recommendation_adopted", "valid": "2017-10-04", "subject": "not a meeting event",
        "meeting": f"{COMMITTEE}-17"}, token=editor)
    assert recommendation.status_code == 201
    appended = meeting_events(server, editor, 18)

    delivered = receiver.wait_for(3)
    assert [e["data"] for e in delivered] == appended
    assert [e["type"] for e in delivered] == ["registry.meeting.registered", "registry.meeting.scheduled",
                                              "registry.meeting.held"]
    assert delivered[0]["source"] == server.url
    assert [status for status, _, _ in receiver.requests] == [500, 500, 200, 200, 200]
    for _, headers, body in receiver.requests:
        assert Webhook(made["secret"]).verify(body, headers)["id"] == headers["webhook-id"]

    shown = server.get(f"/v1/subscriptions/{made['id']}", token=editor).json()
    assert (shown["status"], shown["failures"], shown["position"]) == ("active", 0, appended[-1]["position"])
    assert "HTTP 500" in shown["last_error"]
    assert server.request("DELETE", f"/v1/subscriptions/{made['id']}", token=editor).status_code == 204
    assert server.get(f"/v1/subscriptions/{made['id']}", token=editor).json()["status"] == "ended"
    receiver.close()


def test_private_targets_are_refused_without_the_setting(store_url: str, tmp_path: Path) -> None:
    plain = Server(store_url, tmp_path / "logs").start()
    try:
        response = plain.post("/v1/subscriptions", {"url": "http://127.0.0.1:9/hook"}, token=plain.admin_token)
        assert response.status_code == 422
        assert "url" in response.json()["errors"]
    finally:
        plain.stop()


@pytest.fixture
def quiet_server(store_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server that does not deliver: the `registry project` worker under test does."""
    running = Server(store_url, tmp_path / "logs", {**FAST, "REGISTRY_DELIVER_WEBHOOKS": "off"}).start()
    running.tokens = {"editor": create_token(store_url, "e2e-editor", "editor")}
    yield running
    running.stop()


def test_restarting_the_delivery_worker_mid_stream_loses_and_doubles_nothing(
        quiet_server: Server, store_url: str, tmp_path: Path) -> None:
    server, editor = quiet_server, quiet_server.tokens["editor"]
    receiver = Receiver(delay=0.05)
    made = subscribe(server, editor, receiver, types=["recommendation_adopted"])
    worker = ProjectWorker(store_url, tmp_path / "logs", {**FAST, "REGISTRY_WEBHOOK_LEASE": "3",
                                                          "REGISTRY_WEBHOOK_TIMEOUT": "2"}).start()
    adopted = []
    for number in range(1, 31):
        response = server.post(f"/v1/bodies/{COMMITTEE}/events", {
            "type": "recommendation_adopted", "valid": "2017-10-04", "subject": f"recommendation {number}",
            "meeting": f"{COMMITTEE}-17"}, token=editor)
        adopted.append(response.json())
    ids = [e["id"] for e in adopted]

    # A clean stop (SIGTERM) mid-stream: the delivery under way is finished and stored, then the worker exits.
    receiver.wait_for(5)
    assert worker.stop() == 0
    stored = server.get(f"/v1/subscriptions/{made['id']}", token=editor).json()["position"]
    acknowledged = [e["id"] for e in receiver.acknowledged()]
    assert acknowledged == ids[:len(acknowledged)]
    assert stored == adopted[len(acknowledged) - 1]["position"]

    # Restarted, it goes on from there; then it crashes (SIGKILL) mid-stream and is restarted again.
    worker.start()
    receiver.wait_for(len(acknowledged) + 5)
    worker.kill()
    stored_at_crash = server.get(f"/v1/subscriptions/{made['id']}", token=editor).json()["position"]
    sent_before_crash = len(receiver.requests)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not set(ids) <= {e["id"] for e in receiver.acknowledged()}:
            assert time.monotonic() < deadline, "the restarted worker did not deliver every event"
            time.sleep(0.05)
    finally:
        worker.stop()

    # Nothing lost, everything in position order; after the crash only deliveries that were not yet stored
    # could be sent again (at least once), and after the clean stop none at all.
    delivered = receiver.acknowledged()
    positions = [e["data"]["position"] for e in delivered]
    assert positions == sorted(positions)
    assert {e["id"] for e in delivered} == set(ids)
    resent = [e for e in delivered[sent_before_crash:] if e["data"]["position"] <= stored_at_crash]
    assert resent == []
    assert len(delivered) - len(ids) <= 1  # at most the one in flight when the worker was killed
    assert server.get(f"/v1/subscriptions/{made['id']}", token=editor).json()["position"] == adopted[-1]["position"]
    for _, headers, body in receiver.requests:
        Webhook(made["secret"]).verify(body, headers)
    receiver.close()
