"""A real Server-Sent Events client for the feeds' e2e tests."""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
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
