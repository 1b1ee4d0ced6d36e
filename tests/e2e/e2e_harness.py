"""The processes the e2e tests drive: `registry serve`, `registry project` and the command line.

The server runs in its own process group (gunicorn's arbiter and its workers), so
stopping or killing it reaches every worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

STARTUP_SECONDS = 60
REQUEST_SECONDS = 30


def cli(*args: str, database: str | None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `registry ARGS --database DATABASE` (or just `registry ARGS`) and return what it printed."""
    where = ["--database", database] if database is not None else []
    return subprocess.run(
        [sys.executable, "-m", "commandline", *args, *where],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=_env(),
    )


def create_token(database: str, name: str, role: str) -> str:
    done = cli("token", "create", "--name", name, "--role", role, database=database)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(extra or {})
    return env


class Server:
    """`registry serve` on a free port, against one store."""

    def __init__(self, database: str, logs: Path, env: Mapping[str, str] | None = None) -> None:
        self.database = database
        self.logs = logs
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.admin_token: str | None = None
        self.tokens: dict[str, str] = {}
        self.session = requests.Session()

    def start(self) -> Server:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.stdout = self.logs / f"serve-{port}.out"
        self.stderr = self.logs / f"serve-{port}.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "commandline", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "2", "--threads", "8", "--database", self.database],
                stdout=out, stderr=err, env=_env(self.env), start_new_session=True,
            )
        self._wait_until_up()
        for line in self.stdout.read_text().splitlines():
            if line.startswith("First admin token"):
                self.admin_token = line.rsplit(" ", 1)[1]
        return self

    def _wait_until_up(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"registry serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still booting
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"registry serve did not answer /healthz in {STARTUP_SECONDS}s:\n{self.output()}")

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def stop(self) -> None:
        """A graceful stop: SIGTERM to gunicorn's arbiter, which stops its workers; kill them all if they linger."""
        self.session.close()  # idle keep-alive connections would hold up a graceful stop
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group, as a power cut would."""
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=15)  # type: ignore[union-attr]

    def _signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # it died just now
            os.killpg(self.process.pid, signum)

    # HTTP

    def request(self, method: str, path: str, *, token: str | None = None, json: Any = None,
                headers: Mapping[str, str] | None = None, **kwargs: Any) -> requests.Response:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.url + path, json=json, headers=sent,
                                    timeout=REQUEST_SECONDS, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def head_position(self) -> int:
        return int(self.get("/v1/audit/head").json()["position"])

    def all_events(self) -> list[dict[str, Any]]:
        """The whole log, page by page."""
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.get("/v1/events", params={"after": after, "limit": 1000}).json()
            if not page["items"]:
                return events
            events += page["items"]
            after = page["next"]


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
                stdout=subprocess.DEVNULL, stderr=err, env=_env(self.env), start_new_session=True,
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
