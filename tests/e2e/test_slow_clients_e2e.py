"""Slow and hostile clients against a real `registry serve`: they hold no worker thread.

All traffic stays on the loopback interface, every loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from e2e_harness import Server

SLOW = 200
TIMEOUT = 3.0  # REGISTRY_REQUEST_TIMEOUT of the server under test


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[Server]:
    server = Server(store_url, tmp_path / "logs", env={"REGISTRY_REQUEST_TIMEOUT": str(TIMEOUT)}).start()
    yield server
    server.stop()


def connect(server: Server) -> socket.socket:
    parts = urlsplit(server.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    return sock


def exchange(server: Server, raw: bytes) -> bytes:
    """Send one raw request and read the answer until the server closes or 5 s pass."""
    with connect(server) as sock:
        sock.sendall(raw)
        answer = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break
        return answer


def healthz_seconds(server: Server) -> float:
    with connect(server) as sock:
        started = time.perf_counter()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n")
        answer = sock.recv(65536)
        elapsed = time.perf_counter() - started
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return elapsed


def test_slow_headers_and_bodies_hold_no_thread_and_are_dropped(server: Server) -> None:
    # Given 200 clients: half send their headers a few bytes at a time, half a body slowly
    slow: list[socket.socket] = []
    try:
        for number in range(SLOW):
            sock = connect(server)
            if number % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: regi")
            else:
                sock.sendall(b"POST /v1/agreements HTTP/1.1\r\nHost: registry\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 5000\r\n\r\n{\"id\": ")
            slow.append(sock)
        # While they trickle (bounded: 4 rounds), /healthz answers in under 100 ms every time
        timings = []
        for _ in range(4):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"x")
            timings += [healthz_seconds(server) for _ in range(5)]
            time.sleep(0.2)
        # (a busy shared machine may delay one or two samples; a stalled server delays all of them)
        assert sorted(timings)[-3] < 0.1 and max(timings) < 1.0, timings
        # Past REGISTRY_REQUEST_TIMEOUT the slow requests are dropped: the server closes them
        time.sleep(TIMEOUT + 1.5)
        closed = 0
        for sock in slow:
            sock.settimeout(0.5)
            try:
                closed += sock.recv(1024) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass
        assert closed == SLOW
    finally:
        for sock in slow:
            sock.close()
    assert healthz_seconds(server) < 0.5


def test_idle_connections_take_no_stream_slot(server: Server) -> None:
    idle = [connect(server) for _ in range(96)]
    try:
        with connect(server) as stream:
            stream.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: registry\r\n\r\n")
            stream.settimeout(5)
            first = stream.recv(65536)
            while b"retry:" not in first:
                first += stream.recv(65536)
            assert first.startswith(b"HTTP/1.1 200") and b"text/event-stream" in first
        assert healthz_seconds(server) < 0.5
    finally:
        for sock in idle:
            sock.close()


def test_chunked_bodies_over_the_limit_are_413_and_malformed_ones_400(server: Server) -> None:
    token = server.admin_token
    assert token
    before = server.head_position()
    head = (b"POST /v1/agreements HTTP/1.1\r\nHost: registry\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    # A valid JSON prefix within the limit, then more chunks past 256 KiB
    body = b'{"id": "big-chunked", "title": "' + b"x" * 1000 + b'"}'
    filler = b" " * 65536
    chunks = b"%x\r\n%s\r\n" % (len(body), body) + b"".join(b"%x\r\n%s\r\n" % (len(filler), filler)
                                                            for _ in range(5)) + b"0\r\n\r\n"
    answer = exchange(server, head + chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"application/problem+json" in answer
    # Malformed framing: a chunk size that is not hexadecimal
    answer = exchange(server, head + b"zz\r\n{}\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    # A small chunked body is read whole and accepted
    small = b'{"id": "small-chunked", "title": "Chunked"}'
    answer = exchange(server, head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small))
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert server.head_position() == before + 1


def test_a_vanished_stream_client_frees_its_slot_promptly(store_url: str, tmp_path: Path) -> None:
    # One stream per worker, heartbeats only every 15 s: a slot must free without waiting for one
    server = Server(store_url, tmp_path / "logs", env={"REGISTRY_MAX_STREAMS": "1"}).start()
    try:
        for _ in range(6):
            with connect(server) as stream:
                stream.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: registry\r\n\r\n")
                first = b""
                while b"\r\n\r\n" not in first:
                    first += stream.recv(65536)
                assert first.startswith(b"HTTP/1.1 200"), first  # 503 while a gone client's slot is held
            time.sleep(2.0)  # the client has gone; its slot frees within about a second
    finally:
        server.stop()
