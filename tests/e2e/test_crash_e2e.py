"""A power cut mid-write: SIGKILL the server while editors append, restart, and lose nothing acknowledged."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests
from e2e_harness import Server, create_token

from registry.log.chain import GENESIS, envelope_hash

# Bilateral implementing protocols to the readmission agreement, one per editor thread.
PROTOCOLS = {
    "ru-bg-readmission-implementing-protocol": "BG",
    "ru-hu-readmission-implementing-protocol": "HU",
    "ru-lt-readmission-implementing-protocol": "LT",
    "ru-mt-readmission-implementing-protocol": "MT",
}
ACKNOWLEDGED_BEFORE_THE_CUT = 40
ENVELOPE_KEYS = {"id", "position", "record", "kind", "version", "type", "valid", "valid_lower", "valid_upper",
                 "recorded_at", "data", "sources", "note", "actor", "hash", "prev_hash"}


class Editor(threading.Thread):
    """Appends conclusions to one protocol until the server goes away, keeping every 201."""

    def __init__(self, url: str, token: str, record: str, party: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.record, self.party = url, token, record, party
        self.acknowledged: list[dict[str, Any]] = []
        self.unexpected: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        number = 0
        while not self.stop.is_set():
            number += 1
            body = {"type": "concluded", "valid": "2011-06-01", "party": self.party,
                    "act": f"diplomatic note No. {number}"}
            try:
                response = session.post(f"{self.url}/v1/agreements/{self.record}/events", json=body, timeout=30,
                                        headers={"Authorization": f"Bearer {self.token}"})
            except requests.RequestException:
                return  # the server is gone; this write was never acknowledged
            if response.status_code == 201:
                self.acknowledged.append(response.json())
            elif response.status_code not in (409, 503):  # contention is retried
                self.unexpected.append(f"{response.status_code} {response.text}")


def test_every_acknowledged_write_survives_a_kill_9(store_url: str, launch: Callable[[str], Server]) -> None:
    # An editor token, a seeded server, and the protocols registered.
    token = create_token(store_url, "e2e-editor", "editor")
    server = launch(store_url)
    for record, party in PROTOCOLS.items():
        registered = server.post("/v1/agreements", {
            "id": record, "title": f"Implementing Protocol between Russia and {party} to the Agreement on Readmission",
            "agreement_type": "implementing_protocol", "parent": "ru-eu-readmission-agreement",
            "parties": ["RU", party]}, token=token)
        assert registered.status_code == 201, registered.text

    # Four editors append in a loop; the power goes while their writes are in flight.
    editors = [Editor(server.url, token, record, party) for record, party in PROTOCOLS.items()]
    for editor in editors:
        editor.start()
    deadline = time.monotonic() + 60
    while sum(len(e.acknowledged) for e in editors) < ACKNOWLEDGED_BEFORE_THE_CUT and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sum(len(e.acknowledged) for e in editors) >= ACKNOWLEDGED_BEFORE_THE_CUT
    server.kill()
    for editor in editors:
        editor.stop.set()
        editor.join(timeout=60)
        assert not editor.is_alive() and editor.unexpected == []
    acknowledged = [envelope for editor in editors for envelope in editor.acknowledged]

    # The server comes back on the same store; its views have caught up.
    server = launch(store_url)
    ready = server.get("/readyz").json()
    assert ready["lag"] == 0

    # The log is whole: gap-free positions, an unbroken hash chain, no half-written envelope.
    log = server.all_events()
    assert [e["position"] for e in log] == list(range(1, len(log) + 1))
    assert ready["log_position"] == len(log) == server.head_position()
    previous = GENESIS
    for envelope in log:
        assert set(envelope) == ENVELOPE_KEYS
        assert envelope["prev_hash"] == previous and envelope_hash(envelope) == envelope["hash"]
        previous = envelope["hash"]

    # Every acknowledged event is there as it was acknowledged.
    for envelope in acknowledged:
        found = server.get(f"/v1/events/{envelope['id']}")
        assert found.status_code == 200 and found.json() == envelope

    # Beyond those, at most the one write each editor had in flight was kept.
    kept = Counter(e["record"] for e in log if e["type"] == "concluded")
    for editor in editors:
        assert len(editor.acknowledged) <= kept[editor.record] <= len(editor.acknowledged) + 1

    # Each protocol's versions run 1..k, its view holds every conclusion, and the next append follows on.
    for record in PROTOCOLS:
        versions = [e["version"] for e in log if e["record"] == record]
        assert versions == list(range(1, len(versions) + 1))
        view = server.get(f"/v1/agreements/{record}").json()
        assert view["version"] == len(versions) and len(view["conclusions"]) == kept[record]
        after = server.post(f"/v1/agreements/{record}/events",
                            {"type": "entered_into_force", "valid": "2011-06-01"}, token=token)
        assert after.status_code == 201, after.text
        assert after.json()["version"] == len(versions) + 1 and after.json()["prev_hash"] == previous
        previous = after.json()["hash"]
