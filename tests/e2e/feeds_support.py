"""What the feeds' e2e tests drive: a real SSE client, a real webhook receiver, and `registry project` workers."""

from __future__ import annotations

import codecs
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

WAIT = 30.0  # seconds any one expected thing may take before a test fails


@dataclass(frozen=True)
class SSEEvent:
    id: int
    event: str
    data: dict[str, Any]


class SSEClient:
    """An EventSource-like client over a streamed `requests` response."""

    def __init__(self, url: str, *, params: Mapping[str, Any] | None = None, last_event_id: int | None = None,
                 read_timeout: float = WAIT) -> None:
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = requests.get(url, params=params, headers=headers, stream=True, timeout=(5, read_timeout))
        self.status = self.response.status_code
        self._chunks = self.response.iter_content(chunk_size=None)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self.comments: list[str] = []

    def _block(self) -> str:
        while "\n\n" not in self._buffer:
            self._buffer += self._decoder.decode(next(self._chunks))
        block, self._buffer = self._buffer.split("\n\n", 1)
        return block

    def next_event(self) -> SSEEvent:
        """The next event; comments (heartbeats) on the way are kept in `comments`."""
        while True:
            fields: dict[str, str] = {}
            for line in self._block().split("\n"):
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
            if "data" in fields:
                return SSEEvent(int(fields["id"]), fields["event"], json.loads(fields["data"]))

    def take(self, count: int) -> list[SSEEvent]:
        return [self.next_event() for _ in range(count)]

    def wait_for_comment(self, text: str) -> None:
        deadline = time.monotonic() + WAIT
        while text not in self.comments:
            assert time.monotonic() < deadline, f"no {text!r} comment in {WAIT}s"
            fields = self._block()
            self.comments += [line[1:].strip() for line in fields.split("\n") if line.startswith(":")]

    def close(self) -> None:
        self.response.close()


class Receiver:
    """A webhook receiver on 127.0.0.1: answers `script` statuses first, then 200, each after `delay` seconds."""

    def __init__(self, script: tuple[int, ...] = (), delay: float = 0.0) -> None:
        self.script = list(script)
        self.delay = delay
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.requests.append((status, dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/registry"

    def acknowledged(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for status, _, body in self.requests if status == 200]

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        """Wait until `count` deliveries were acknowledged; returns them."""
        deadline = time.monotonic() + WAIT * 2
        while len(self.acknowledged()) < count:
            assert time.monotonic() < deadline, f"{len(self.acknowledged())} of {count} deliveries arrived"
            time.sleep(0.05)
        return self.acknowledged()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def registry_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    return {**env, **extra}


class ProjectWorker:
    """`registry project`: the projector and, here, the webhook delivery worker."""

    def __init__(self, database: str, logs: Path, env: Mapping[str, str]) -> None:
        self.database = database
        self.logs = logs
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> ProjectWorker:
        self.runs += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"project-{self.runs}.err").open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "commandline", "project", "--interval", "0.2", "--database", self.database],
                stdout=subprocess.DEVNULL, stderr=err, env=registry_env(self.env), start_new_session=True,
            )
        return self

    def stop(self) -> int:
        """SIGTERM: the worker finishes the delivery under way, stores it and exits."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
