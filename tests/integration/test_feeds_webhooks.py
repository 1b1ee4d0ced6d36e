"""Webhooks: subscriptions, the SSRF guard, and delivery to a real local HTTP receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from support.receiver import Receiver

from api import create_app
from registry.errors import Invalid
from registry.feeds.delivery import DeliverySettings, WebhookDelivery
from registry.feeds.targets import check_target, is_public
from registry.seed import seed
from registry.service import Registry

FAST = DeliverySettings(timeout=5.0, backoff=0.05, backoff_max=0.2, lease=30.0, tick=0.05, allow_private=True)
COMMITTEE = "ru-eu-readmission-joint-committee"
WAIT = 30.0


@pytest.fixture
def seeded(registry: Registry) -> Registry:
    seed(registry)  # 22 events; the meetings' are at positions 13, 14, 17, 18
    return registry


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(script=(500, 503))
    yield running
    running.close()


def deliver_until(delivery: WebhookDelivery, done: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, "deliveries did not finish in time"
        delivery.run_once()
        time.sleep(0.05)


def adopt(registry: Registry, subject: str) -> dict[str, Any]:
    return registry.append("bodies", COMMITTEE, {"type": "recommendation_adopted", "valid": "2017-10-04",
                                                 "subject": subject, "meeting": f"{COMMITTEE}-17"}, "editor")


def test_a_failing_receiver_is_retried_then_gets_every_event_in_order_signed(seeded: Registry,
                                                                            receiver: Receiver) -> None:
    made = seeded.webhooks.subscribe({"url": receiver.url, "kinds": ["meeting"], "after": 0}, "editor",
                                     "https://registry.example.org", allow_private=True)
    assert made["secret"].startswith("whsec_") and made["status"] == "active" and made["position"] == 0
    delivery = WebhookDelivery(seeded.database, settings=FAST)

    # The first attempt meets a 500: the error is visible, the position stops before the first meeting event.
    delivery.run_once()
    failing = seeded.webhooks.get(made["id"])
    assert (failing["status"], failing["failures"], failing["position"]) == ("retrying", 1, 12)
    assert "HTTP 500" in failing["last_error"] and failing["next_attempt_at"]

    deliver_until(delivery, lambda: len(receiver.acknowledged()) == 4)
    statuses = [status for status, _, _ in receiver.requests]
    assert statuses == [500, 503, 200, 200, 200, 200]
    # Every request, retries included, carries a valid Standard Webhooks signature; retries keep their id.
    for _, headers, body in receiver.requests:
        Webhook(made["secret"]).verify(body, headers)
    assert len({headers["webhook-id"] for _, headers, _ in receiver.requests[:3]}) == 1
    events = receiver.acknowledged()
    assert [e["data"]["position"] for e in events] == [13, 14, 17, 18]
    held = events[1]
    assert held["specversion"] == "1.0" and held["type"] == "registry.meeting.held"
    assert held["source"] == "https://registry.example.org"
    assert held["id"] == held["data"]["id"] and held["time"] == held["data"]["recorded_at"]
    assert held["data"]["data"] == {"place": "Brussels"}

    done = seeded.webhooks.get(made["id"])
    assert (done["status"], done["failures"], done["position"], done["delivered"]) == ("active", 0, 22, 4)
    assert "HTTP 503" in done["last_error"]  # the last failure stays visible


def test_a_restarted_worker_sends_nothing_already_acknowledged(seeded: Registry, receiver: Receiver) -> None:
    receiver.script = []
    made = seeded.webhooks.subscribe({"url": receiver.url, "types": ["recommendation_adopted"]}, "editor",
                                     "https://registry.example.org", allow_private=True)
    first = WebhookDelivery(seeded.database, settings=FAST)
    adopted = adopt(seeded, "exchange of contact points")
    deliver_until(first, lambda: len(receiver.acknowledged()) == 1)
    first.stop()

    # A new worker (after a restart) picks up from the stored position: only the new event goes out.
    again = adopt(seeded, "statistics on readmission applications")
    second = WebhookDelivery(seeded.database, settings=FAST)
    deliver_until(second, lambda: seeded.webhooks.get(made["id"])["position"] == again["position"])
    assert [e["id"] for e in receiver.acknowledged()] == [adopted["id"], again["id"]]
    assert len(receiver.requests) == 2
    second.stop()


def test_a_stuck_receiver_does_not_hold_back_another_subscription(seeded: Registry) -> None:
    release = threading.Event()
    stuck, healthy = Receiver(hold=release), Receiver()
    for target in (stuck, healthy):
        seeded.webhooks.subscribe({"url": target.url}, "editor", "https://registry.example.org", allow_private=True)
    delivery = WebhookDelivery(seeded.database, settings=FAST).start()
    adopted = [adopt(seeded, f"recommendation {n}") for n in (1, 2)]

    # The healthy receiver gets both events while the stuck one has not answered its first request.
    deadline = time.monotonic() + WAIT
    while len(healthy.acknowledged()) < 2:
        assert time.monotonic() < deadline, "the healthy receiver was held back"
        time.sleep(0.05)
    assert stuck.requests == []
    release.set()
    while len(stuck.acknowledged()) < 2:
        assert time.monotonic() < deadline, "the stuck receiver never caught up"
        time.sleep(0.05)
    assert [e["id"] for e in stuck.acknowledged()] == [e["id"] for e in adopted]
    delivery.stop()
    stuck.close()
    healthy.close()


def test_an_ended_subscription_gets_nothing_more(seeded: Registry, receiver: Receiver) -> None:
    made = seeded.webhooks.subscribe({"url": receiver.url}, "editor", "https://x.example", allow_private=True)
    assert seeded.webhooks.end(made["id"])["status"] == "ended"
    assert seeded.webhooks.end(made["id"])["status"] == "ended"
    adopt(seeded, "joint training for border officials")
    assert WebhookDelivery(seeded.database, settings=FAST).run_once() == 0
    assert receiver.requests == []


def test_a_target_that_turned_private_is_refused_at_delivery_time(seeded: Registry, receiver: Receiver) -> None:
    # Subscribed while private targets were allowed; the worker does not allow them.
    made = seeded.webhooks.subscribe({"url": receiver.url}, "editor", "https://x.example", allow_private=True)
    adopt(seeded, "exchange of liaison officers")
    guarded = DeliverySettings(backoff=0.05, tick=0.05, allow_private=False)
    WebhookDelivery(seeded.database, settings=guarded).run_once()
    refused = seeded.webhooks.get(made["id"])
    assert refused["status"] == "retrying" and "loopback, private or reserved" in refused["last_error"]
    assert receiver.requests == []


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook", "http://100.64.0.1/hook",
])
def test_loopback_and_private_targets_are_refused(seeded: Registry, url: str) -> None:
    with pytest.raises(Invalid) as refused:
        seeded.webhooks.subscribe({"url": url}, "editor", "https://x.example", allow_private=False)
    assert "url" in refused.value.errors
    assert seeded.webhooks.list() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://files.example.org/hook"}, "url"),
    ({"url": "/relative/hook"}, "url"),
    ({"url": "https://user:pass@hooks.example.org/"}, "url"),
    ({"url": "http://[not-an-address/hook"}, "url"),
    ({}, "url"),
    ({"url": "http://127.0.0.1/hook", "kinds": ["treaty"]}, "kinds"),
    ({"url": "http://127.0.0.1/hook", "types": ["signed", "invented"]}, "types"),
    ({"url": "http://127.0.0.1/hook", "records": ["Not A Slug"]}, "records"),
    ({"url": "http://127.0.0.1/hook", "after": -1}, "after"),
    ({"url": "http://127.0.0.1/hook", "after": 23}, "after"),  # beyond the 22 seed events
    ({"url": "http://127.0.0.1/hook", "secret": "mine"}, "secret"),
])
def test_invalid_subscriptions_are_refused_and_write_nothing(seeded: Registry, body: dict[str, Any],
                                                             field: str) -> None:
    with pytest.raises(Invalid) as refused:
        seeded.webhooks.subscribe(body, "editor", "https://x.example", allow_private=True)
    assert field in refused.value.errors
    assert seeded.webhooks.list() == []


def test_a_public_address_passes_the_guard() -> None:
    assert is_public("93.184.215.14") and is_public("2606:4700::6810:84e5")
    assert check_target("http://93.184.215.14:8443/hooks?x=1", allow_private=False).path == "/hooks?x=1"


def test_the_subscriptions_api_needs_an_editor_and_hides_the_secret_after_creation(store_url: str) -> None:
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False, "BASE_URL": "https://registry.example.org"})
    registry: Registry = app.extensions["registry"]
    editor, reader = registry.tokens.create("hooks-editor", "editor"), registry.tokens.create("hooks-reader", "reader")
    client = app.test_client()
    body = {"url": "http://127.0.0.1:9/hook", "kinds": ["meeting"]}
    assert client.post("/v1/subscriptions", json=body).status_code == 401
    assert client.post("/v1/subscriptions", json=body,
                       headers={"Authorization": f"Bearer {reader}"}).status_code == 403
    refused = client.post("/v1/subscriptions", json=body, headers={"Authorization": f"Bearer {editor}"})
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"

    # With private targets allowed (as in a test or an intranet deployment) it is made; a retry with the
    # same Idempotency-Key returns the same subscription, and another body under that key is refused.
    app.config["TESTING"] = True
    auth = {"Authorization": f"Bearer {editor}", "Idempotency-Key": "hook-1"}
    private = create_app({"DATABASE": store_url, "FOLLOW_LOG": False, "BASE_URL": "https://registry.example.org",
                          "WEBHOOK_ALLOW_PRIVATE": True, "TESTING": True})
    client = private.test_client()
    made = client.post("/v1/subscriptions", json=body, headers=auth)
    again = client.post("/v1/subscriptions", json=body, headers=auth)
    other = client.post("/v1/subscriptions", json={**body, "kinds": ["body"]}, headers=auth)
    assert made.status_code == again.status_code == 201 and made.get_json() == again.get_json()
    assert other.status_code == 422
    created = made.get_json()
    assert made.headers["Location"] == f"/v1/subscriptions/{created['id']}"

    shown = client.get(made.headers["Location"], headers={"Authorization": f"Bearer {editor}"}).get_json()
    assert "secret" not in shown and shown["status"] == "active" and shown["failures"] == 0
    assert client.get(made.headers["Location"]).status_code == 401
    # A read refused says it is a read that needs the role (not "writes need …")
    for path in ("/v1/subscriptions", made.headers["Location"]):
        anonymous = client.get(path)
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert anonymous.get_json()["detail"].startswith("reading subscriptions needs 'Authorization: Bearer"), path
        as_reader = client.get(path, headers={"Authorization": f"Bearer {reader}"})
        assert as_reader.status_code == 403
        assert as_reader.get_json()["detail"].endswith("reading subscriptions needs editor or admin"), path
    assert client.post("/v1/subscriptions", json=body).get_json()["detail"].startswith("writes need")
    assert client.delete(made.headers["Location"]).get_json()["detail"].startswith("writes need")
    assert client.delete(made.headers["Location"], headers={"Authorization": f"Bearer {editor}"}).status_code == 204
    listed = client.get("/v1/subscriptions", headers={"Authorization": f"Bearer {editor}"}).get_json()["items"]
    assert [(s["id"], s["status"]) for s in listed] == [(created["id"], "ended")]
    assert client.get("/v1/subscriptions/no-such", headers={"Authorization": f"Bearer {editor}"}).status_code == 404
    private.extensions["registry"].close()
    registry.close()
