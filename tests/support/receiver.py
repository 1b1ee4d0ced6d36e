"""A real webhook receiver on 127.0.0.1, for integration and e2e tests alike."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WAIT = 30.0  # seconds any one expected delivery may take before a test fails


class Receiver:
    """Answers `script` statuses first, then `status` (200 unless told to fail).

    `delay` seconds pass before each answer; with `hold`, answers wait until the event is set.
    """

    def __init__(self, script: tuple[int, ...] = (), *, status: int = 200, delay: float = 0.0,
                 hold: threading.Event | None = None) -> None:
        self.script = list(script)
        self.status = status
        self.delay = delay
        self.hold = hold
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                if receiver.hold is not None:
                    receiver.hold.wait(WAIT)
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else receiver.status
                    receiver.requests.append((status, dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/registry"

    def statuses(self) -> list[int]:
        with self.lock:
            return [status for status, _, _ in self.requests]

    def acknowledged(self) -> list[dict[str, Any]]:
        """The CloudEvents answered with a 2xx, in the order they came."""
        with self.lock:
            return [json.loads(body) for status, _, body in self.requests if 200 <= status < 300]

    def wait_for(self, count: int, timeout: float = WAIT * 2) -> list[dict[str, Any]]:
        """Wait until `count` deliveries were acknowledged; returns them."""
        deadline = time.monotonic() + timeout
        while len(self.acknowledged()) < count:
            assert time.monotonic() < deadline, f"{len(self.acknowledged())} of {count} deliveries arrived"
            time.sleep(0.05)
        return self.acknowledged()

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()  # a held answer must not keep shutdown() waiting
        self.server.shutdown()
        self.server.server_close()
