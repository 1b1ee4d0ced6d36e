"""Operating a real `registry serve --workers 2`: one scrape sees every worker; a stop is quick and clean."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from e2e_harness import Server
from feeds_support import SSEClient
from prometheus_client.multiprocess import MultiProcessCollector
from support.metrics import value

HEAD = {"method": "GET", "endpoint": "/v1/audit/head", "status": "200"}


@pytest.fixture
def served(store_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server whose temporary files (the workers' metrics among them) are under tmp_path/tmp.

    Streams send a heartbeat every half second, so a worker soon learns that a client has gone.
    """
    (tmp_path / "tmp").mkdir()
    env = {"TMPDIR": str(tmp_path / "tmp"), "REGISTRY_SSE_HEARTBEAT": "0.5"}
    running = Server(store_url, tmp_path / "logs", env).start()
    yield running
    running.stop()


def fresh_get(server: Server, path: str) -> requests.Response:
    """A request on a connection of its own, so that either worker may accept it."""
    with requests.Session() as session:
        session.headers["Connection"] = "close"
        response = session.get(server.url + path, timeout=30)
    assert response.status_code == 200, response.text
    return response


def counted_by_each_worker(tmp: Path) -> list[float]:
    """What each worker's own counter file says it answered on /v1/audit/head."""
    files = sorted(tmp.glob("registry-metrics-*/counter_*.db"))
    counts = []
    for file in files:
        for metric in MultiProcessCollector.merge([str(file)]):
            counts += [s.value for s in metric.samples if s.name == "registry_http_requests_total" and s.labels == HEAD]
    return counts


def test_one_scrape_counts_the_requests_of_every_worker(served: Server, tmp_path: Path) -> None:
    # An integrator's monitoring polls the head many times, each on a new connection, four at a time.
    sent = 160
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: fresh_get(served, "/v1/audit/head"), range(sent)))

    # Both workers answered some of them...
    per_worker = counted_by_each_worker(tmp_path / "tmp")
    assert len([n for n in per_worker if n > 0]) == 2, per_worker
    assert sum(per_worker) == sent

    # ...and every scrape, whichever worker answers it, counts them all.
    for _ in range(6):
        assert value(fresh_get(served, "/metrics").text, "registry_http_requests_total", **HEAD) == sent


def test_one_scrape_counts_the_open_streams_of_every_worker(served: Server) -> None:
    streams = [SSEClient(served.url + "/v1/stream") for _ in range(4)]
    for stream in streams:
        stream.wait_for_comment(f"following the log after position {served.head_position()}")
    for _ in range(4):
        assert value(fresh_get(served, "/metrics").text, "registry_sse_streams") == 4

    for stream in streams:
        stream.close()
    deadline = time.monotonic() + 30
    while value(fresh_get(served, "/metrics").text, "registry_sse_streams") != 0:
        assert time.monotonic() < deadline, "closed streams are still counted"
        time.sleep(0.1)


def test_a_server_with_an_open_stream_stops_cleanly_in_under_two_seconds(store_url: str, tmp_path: Path) -> None:
    server = Server(store_url, tmp_path / "logs").start()
    stream = SSEClient(server.url + "/v1/stream")
    stream.wait_for_comment(f"following the log after position {server.head_position()}")
    assert server.get("/v1/events").status_code == 200  # a kept-alive connection too

    started = time.monotonic()
    server.stop()
    took = time.monotonic() - started

    assert server.process is not None and server.process.returncode == 0, server.output()
    assert took < 2.0, f"the server took {took:.1f}s to stop"
    assert "Traceback" not in server.output() and "[ERROR]" not in server.output()
    with pytest.raises(StopIteration):  # the stream ended; the connection is closed
        stream.next_event()
