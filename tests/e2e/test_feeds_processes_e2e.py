"""Two API servers on one store: an event appended through one reaches subscribers of the other.

On PostgreSQL the other server's follower wakes on NOTIFY; on SQLite it polls.
"""

from __future__ import annotations

from collections.abc import Callable

from e2e_harness import Server
from feeds_support import SSEClient

COMMITTEE = "ru-eu-readmission-joint-committee"


def test_an_event_appended_through_one_server_reaches_a_stream_of_another(
        store_url: str, launch: Callable[[str], Server]) -> None:
    first = launch(store_url)  # seeds the store and prints the admin token
    second = launch(store_url)
    assert first.admin_token
    head = second.head_position()
    on_second = SSEClient(f"{second.url}/v1/stream", params={"after": head})
    on_first = SSEClient(f"{first.url}/v1/stream", params={"after": head})

    # The Joint Committee's recommendation is recorded through the first server...
    adopted = first.post(f"/v1/bodies/{COMMITTEE}/events", {
        "type": "recommendation_adopted", "valid": "2017-10-04", "subject": "exchange of contact points",
        "meeting": f"{COMMITTEE}-17"}, token=first.admin_token).json()
    # ...and a correction of it through the second.
    corrected = second.post(f"/v1/events/{adopted['id']}/corrections", {
        "changes": {"subject": "exchange of contact points of the competent authorities"},
        "reason": "the minutes give the full subject"}, token=first.admin_token).json()

    # Both servers' subscribers get both, in log order.
    for stream in (on_second, on_first):
        assert [e.data for e in stream.take(2)] == [adopted, corrected]
        stream.close()
