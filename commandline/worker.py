"""A gunicorn threaded worker that reads each request whole before a thread takes it.

gunicorn's `gthread` worker hands a connection to a thread as soon as its first
byte arrives; a client that then sends its headers or body slowly holds that
thread until it finishes, and a few hundred such clients stall the server. Here
the worker's event loop reads requests into a buffer without blocking, and a
thread takes the connection only once the headers and the whole body are in (or
the body is too large, or malformed, which the app answers at once). A request
that has not arrived whole within `request_timeout` seconds of its first byte
(of the connection, for a new one) is dropped. The app is unchanged. What gunicorn's
parser refuses before the app runs is answered as problem+json (commandline/server_problems.py).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from commandline.server_problems import answer_problems

HEADER_LIMIT = 96 * 1024  # past this without the end of the headers, gunicorn's parser refuses it


class BufferingThreadWorker(ThreadWorker):  # type: ignore[misc]
    request_timeout = 10.0  # set by `serve` from REGISTRY_REQUEST_TIMEOUT
    max_body = 256 * 1024  # REGISTRY_MAX_BODY: a larger body goes to the app, which answers 413

    def init_process(self) -> None:
        self.arriving: dict[TConn, tuple[bytearray, float]] = {}
        answer_problems()
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError:
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())
        self._read_request(conn)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection sends its next request: read it whole first, too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_request(conn)

    def _read_request(self, conn: TConn) -> None:
        if self.cfg.is_ssl:  # TLS is read by the thread (terminate it in front of the registry)
            self.enqueue_req(conn)
            return
        conn.sock.setblocking(False)
        self.arriving[conn] = (bytearray(), time.monotonic() + self.request_timeout)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_bytes, conn))

    def _on_bytes(self, conn: TConn, client: socket.socket) -> None:
        buffer, deadline = self.arriving[conn]
        try:
            chunk = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away
            self._drop(conn)
            return
        expect_continue = not buffer or b"\r\n\r\n" not in buffer
        buffer += chunk
        state = request_state(bytes(buffer), self.max_body)
        if state == "incomplete":
            if expect_continue and wants_continue(bytes(buffer)):
                try:
                    conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                except OSError:
                    self._drop(conn)
            return
        self.poller.unregister(conn.sock)
        del self.arriving[conn]
        conn.sock.setblocking(True)
        conn.init()  # the HTTP/1 parser over this socket; what arrived is put back in front of it
        conn.parser.unreader.unread(bytes(buffer))
        conn.data_ready = True
        self.enqueue_req(conn)

    def _drop(self, conn: TConn) -> None:
        self.arriving.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn in [conn for conn, (_, deadline) in self.arriving.items() if deadline <= now]:
            self._drop(conn)  # too slow: dropped, no thread was ever held


def wants_continue(data: bytes) -> bool:
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return b"\r\nexpect: 100-continue" in head or b"\r\nexpect:100-continue" in head


def request_state(data: bytes, max_body: int) -> str:
    """`incomplete` while more bytes must come before a thread can answer; else `ready`
    (whole, or bound to be refused: too long, too large, malformed)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return "ready" if len(data) > HEADER_LIMIT else "incomplete"
    headers: dict[str, str] = {}
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length" and name in headers:
            return "ready"  # gunicorn's parser refuses a second Content-Length (400): no body to wait for
        headers[name] = value.strip().lower()
    body = data[end + 4:]
    if "chunked" in headers.get("transfer-encoding", ""):
        return chunked_state(body, max_body)
    length_text = headers.get("content-length")
    if length_text is None:
        return "ready"
    try:
        length = int(length_text)
    except ValueError:
        return "ready"
    if length < 0 or length > max_body or len(body) >= length:
        return "ready"
    return "incomplete"


def chunked_state(body: bytes, max_body: int) -> str:
    position, total = 0, 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            return "ready" if len(body) - position > 1024 else "incomplete"
        size_text = body[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return "ready"  # malformed: the app answers 400
        if size == 0:
            rest = body[line_end + 2:]
            return "ready" if rest.startswith(b"\r\n") or b"\r\n\r\n" in rest else "incomplete"
        total += size
        if total > max_body:
            return "ready"  # the app answers 413
        position = line_end + 2 + size + 2
        if position > len(body):
            return "incomplete"


def worker_class(request_timeout: float, max_body: int) -> Any:
    return type("RegistryWorker", (BufferingThreadWorker,),
                {"request_timeout": request_timeout, "max_body": max_body, "__module__": __name__})
