"""SSE against a real `registry serve` (gunicorn, 2 workers): live events, resume, filters, limits."""

from __future__ import annotations

import time
from typing import Any

from e2e_harness import Server
from feeds_support import SSEClient

SERVER_ENV = {"REGISTRY_SSE_HEARTBEAT": "0.5"}
COMMITTEE = "ru-eu-readmission-joint-committee"


def recommend(server: Server, subject: str) -> dict[str, Any]:
    response = server.post(f"/v1/bodies/{COMMITTEE}/events", {
        "type": "recommendation_adopted", "valid": "2017-10-04", "subject": subject,
        "meeting": f"{COMMITTEE}-17"}, token=server.tokens["editor"])
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_an_appended_event_reaches_a_live_subscriber(server: Server) -> None:
    stream = SSEClient(f"{server.url}/v1/stream")
    assert stream.status == 200
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    stream.wait_for_comment("heartbeat")  # subscribed: the stream is live

    adopted = recommend(server, "exchange of contact points")
    [event] = stream.take(1)
    assert (event.id, event.event, event.data) == (adopted["position"], "recommendation_adopted", adopted)
    stream.close()


def test_a_reconnecting_client_gets_what_was_appended_meanwhile_then_live(server: Server) -> None:
    stream = SSEClient(f"{server.url}/v1/stream", params={"after": server.head_position()})
    first = recommend(server, "statistics on readmission applications")
    [seen] = stream.take(1)
    assert seen.id == first["position"]
    stream.close()

    # While the client is away, two more recommendations are adopted.
    missed = [recommend(server, "joint training for border officials"),
              recommend(server, "readmission of stateless persons")]

    # It reconnects as EventSource does, with Last-Event-ID (the URL still says its first `after`).
    again = SSEClient(f"{server.url}/v1/stream", params={"after": 0}, last_event_id=seen.id)
    assert [e.data for e in again.take(2)] == missed
    live = recommend(server, "exchange of liaison officers")
    assert again.take(1)[0].data == live
    again.close()


def test_a_filtered_stream_skips_what_does_not_match(server: Server) -> None:
    stream = SSEClient(f"{server.url}/v1/stream",
                       params={"after": server.head_position(), "kind": "meeting", "type": "scheduled"})
    recommend(server, "a recommendation no meeting filter wants")
    registered = server.post("/v1/meetings", {"id": f"{COMMITTEE}-18", "title": "18th meeting of the Joint Committee",
                                              "series": COMMITTEE, "ordinal": 18}, token=server.tokens["editor"])
    assert registered.status_code == 201
    scheduled = server.post(f"/v1/meetings/{COMMITTEE}-18/events",
                            {"type": "scheduled", "valid": "2018-01-15", "planned": "2018-06-04", "place": "Moscow"},
                            token=server.tokens["editor"]).json()
    [event] = stream.take(1)
    assert event.data == scheduled
    stream.close()


def test_bad_cursors_are_400_problems(server: Server) -> None:
    for headers, params in (({"Last-Event-ID": "3.5"}, {}), ({}, {"after": 10**9}), ({}, {"type": "invented"})):
        response = server.get("/v1/stream", headers=headers, params=params)
        assert response.status_code == 400
        assert response.headers["Content-Type"] == "application/problem+json"


def test_streams_never_take_the_last_threads_and_a_closed_stream_frees_its_own(server: Server) -> None:
    # Open streams until the server refuses one (each worker keeps threads for other requests).
    streams: list[SSEClient] = []
    for _ in range(40):
        stream = SSEClient(f"{server.url}/v1/stream")
        if stream.status == 503:
            assert stream.response.headers["Content-Type"] == "application/problem+json"
            stream.close()
            break
        assert stream.status == 200
        streams.append(stream)
    else:
        raise AssertionError("40 streams were accepted; the limit did not hold")

    # Ordinary requests are still served meanwhile.
    assert server.get("/healthz").status_code == 200
    assert server.get("/v1/events", params={"limit": 1}).status_code == 200

    # Clients hang up; the server notices at its next heartbeat and the slots can be used again.
    for stream in streams:
        stream.close()
    reopened: list[SSEClient] = []
    for _ in range(200):
        stream = SSEClient(f"{server.url}/v1/stream")
        if stream.status == 200:
            reopened.append(stream)
            if len(reopened) == len(streams):
                break
        else:
            stream.close()
            time.sleep(0.05)
    assert len(reopened) == len(streams)
    for stream in reopened:
        stream.close()
