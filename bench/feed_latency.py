"""Append -> SSE receipt latency, and 200 concurrent subscribers on one process.

1. Latency: `registry serve` on a fresh seeded store; one SSE subscriber; appends
   over HTTP one at a time, each waiting for its receipt. Latency = from sending
   the append to reading its event on the stream (so it includes the append's own
   round trip, printed beside it). Once with the append and the stream on one
   process (the follower is woken by the write), once with the stream on a second
   server on the same store (PostgreSQL: LISTEN/NOTIFY; SQLite: the follower's poll).
2. Fan-out: one worker, 200 open streams; every append is timed to its receipt on
   every stream; the worker's resident memory before and with the streams open.

Runs on SQLite, and also on PostgreSQL when given `--database postgresql://...`.
Bar (SPEC section 7): p99 <= 50 ms on PostgreSQL. Prints; never asserts timings.

    python bench/feed_latency.py [--appends 200] [--subscribers 200] [--database postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from _common import add_database_argument, create_token, fresh_stores, percentile, registry_command, table

from commandline.serve import max_streams

BODY = "ru-eu-readmission-joint-committee"
TARGET_MS = 50.0


@contextmanager
def serve(database: str, workers: int, threads: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`registry serve` with the given workers and threads; yields its URL and the master process."""
    with socket_port() as port, tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        env = {**os.environ, "REGISTRY_SSE_HEARTBEAT": "5"}
        process = subprocess.Popen(
            [*registry_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--database", database,
             "--workers", str(workers), "--threads", str(threads)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"registry serve did not start:\n{Path(log.name).read_text()[-3000:]}")
                try:
                    if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            yield url, process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def socket_port() -> Iterator[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


class Subscriber(threading.Thread):
    """One SSE stream read in a thread; records when each event id arrived."""

    def __init__(self, url: str, after: int, board: Board) -> None:
        super().__init__(daemon=True)
        self.response = requests.get(f"{url}/v1/stream", params={"after": after}, stream=True, timeout=(5, 60))
        if self.response.status_code != 200:
            raise SystemExit(f"stream refused: {self.response.status_code} {self.response.text}")
        self.board = board

    def run(self) -> None:
        buffer = b""
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                now = time.perf_counter()
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    for line in block.split(b"\n"):
                        if line.startswith(b"id: "):
                            self.board.arrived(int(line[4:]), now)
        except (requests.RequestException, OSError, AttributeError):
            pass  # closed by the benchmark

    def close(self) -> None:
        self.response.close()


class Board:
    """When each position arrived at each subscriber."""

    def __init__(self, subscribers: int) -> None:
        self.subscribers = subscribers
        self.times: dict[int, list[float]] = {}
        self.cond = threading.Condition()

    def arrived(self, position: int, at: float) -> None:
        with self.cond:
            self.times.setdefault(position, []).append(at)
            self.cond.notify_all()

    def wait_all(self, position: int, timeout: float = 30.0) -> list[float]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.times.get(position, [])) >= self.subscribers, timeout):
                raise SystemExit(f"position {position} did not reach every subscriber in {timeout}s")
            return list(self.times[position])


def append_and_time(url: str, token: str, board: Board, count: int) -> tuple[list[float], list[float]]:
    """Append `count` events one by one; (receipt latencies in ms, append round trips in ms)."""
    session = requests.Session()
    latencies, round_trips = [], []
    for number in range(count):
        started = time.perf_counter()
        response = session.post(f"{url}/v1/bodies/{BODY}/events", json={
            "type": "recommendation_adopted", "valid": "2017-10-04", "subject": f"recommendation {number}",
            "meeting": f"{BODY}-17"}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        answered = time.perf_counter()
        if response.status_code != 201:
            raise SystemExit(f"append failed: {response.status_code} {response.text}")
        arrivals = board.wait_all(response.json()["position"])
        latencies += [(at - started) * 1000 for at in arrivals]
        round_trips.append((answered - started) * 1000)
    return latencies, round_trips


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def workers_of(master: subprocess.Popen[bytes]) -> list[int]:
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def head(url: str) -> int:
    return int(requests.get(f"{url}/v1/audit/head", timeout=10).json()["position"])


def latency(database: str, appends: int) -> list[list[Any]]:
    """Rows for one process (append and stream on one worker) and across two servers on the store."""
    token = create_token(database, "bench-editor", "editor")
    rows = []
    with serve(database, workers=1, threads=16) as (url, _):
        rows.append(["one process", *_timed(url, url, token, appends)])
        with serve(database, workers=1, threads=16) as (other, _):
            rows.append(["two processes", *_timed(url, other, token, appends)])
    return rows


def _timed(append_url: str, stream_url: str, token: str, appends: int) -> list[Any]:
    board = Board(1)
    subscriber = Subscriber(stream_url, head(stream_url), board)
    subscriber.start()
    append_and_time(append_url, token, board, 10)  # warm up
    got, trips = append_and_time(append_url, token, board, appends)
    subscriber.close()
    return [appends, f"{percentile(got, 0.5):.1f}", f"{percentile(got, 0.99):.1f}", f"{max(got):.1f}",
            f"{percentile(trips, 0.5):.1f}"]


def fan_out(database: str, subscribers: int, appends: int) -> list[Any]:
    token = create_token(database, "bench-fanout", "editor")
    threads = subscribers + subscribers // 3 + 8
    assert max_streams(threads) >= subscribers
    with serve(database, workers=1, threads=threads) as (url, master):
        [worker] = workers_of(master)
        warm = Board(1)
        one = Subscriber(url, head(url), warm)
        one.start()
        append_and_time(url, token, warm, 10)
        one.close()
        time.sleep(6)  # the server notices the closed stream at its next heartbeat
        before = rss_mib(worker)
        board = Board(subscribers)
        start = head(url)
        streams = [Subscriber(url, start, board) for _ in range(subscribers)]
        for stream in streams:
            stream.start()
        got, _ = append_and_time(url, token, board, appends)
        with_streams = rss_mib(worker)
        # The streams end with the server (it ends them on SIGTERM); closing 200 sockets under their
        # reading threads would wait for each one's next heartbeat.
    return [subscribers, appends, f"{percentile(got, 0.5):.1f}", f"{percentile(got, 0.99):.1f}",
            f"{before:.0f}", f"{with_streams:.0f}", f"{(with_streams - before) * 1024 / subscribers:.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_argument(parser)
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--fanout-appends", type=int, default=30)
    args = parser.parse_args()
    engines: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.database:
        engines.append(("PostgreSQL", args.database))

    latency_rows, fan_rows = [], []
    for name, database in engines:
        with fresh_stores(database, ["latency", "fanout"]) as stores:
            print(f"{name}: append -> SSE receipt, {args.appends} appends ...", flush=True)
            latency_rows += [[name, *row] for row in latency(stores["latency"], args.appends)]
            print(f"{name}: {args.subscribers} subscribers on one process ...", flush=True)
            fan_rows.append([name, *fan_out(stores["fanout"], args.subscribers, args.fanout_appends)])

    print()
    print("Append -> SSE receipt, ms (appends one at a time, each timed from sending it to reading it)")
    print(table(["store", "append and stream", "appends", "p50", "p99", "max", "append p50"], latency_rows))
    print()
    print("Many subscribers on one worker process (latency over every stream and append, ms; RSS in MiB)")
    print(table(["store", "streams", "appends", "p50", "p99", "RSS before", "RSS with", "KiB/stream"], fan_rows))
    print()
    for row in latency_rows:
        if row[0] == "PostgreSQL":
            verdict = "meets" if float(row[4]) <= TARGET_MS else "misses"
            print(f"PostgreSQL, {row[1]}: p99 {row[4]} ms {verdict} the {TARGET_MS:.0f} ms bar (SPEC section 7).")


if __name__ == "__main__":
    main()
