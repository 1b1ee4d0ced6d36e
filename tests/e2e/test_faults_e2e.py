"""Faults a real `registry serve` survives: the store's disk fills up; PostgreSQL stops and
comes back under write load. Answers meanwhile are 507/503 with Retry-After, never 500;
nothing acknowledged is lost; the service recovers by itself.

The PostgreSQL test runs its own private server (initdb into a temporary folder, its own
port), never the shared one other tests use. All traffic stays on the loopback interface.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from e2e_harness import Server, cli, free_port
from support.receiver import Receiver

from registry.seed import WRITES

AGREEMENT = "/v1/agreements/ru-eu-readmission-agreement/events"
OUTAGE = 8.0  # seconds PostgreSQL stays down


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB filesystem (tmpfs) for the store. Not smaller: while the seed is written, the
    checkpointer may copy pages into the store file before the write-ahead log restarts, so
    the two together may briefly hold the seed twice (about 3 MiB)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"no size-limited filesystem can be mounted here: {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_is_507_the_store_stays_intact(small_disk: Path, tmp_path: Path) -> None:
    store = small_disk / "registry.sqlite"
    server = Server(str(store), tmp_path / "logs").start()
    acknowledged: list[str] = []
    refused: list[requests.Response] = []
    try:
        token = server.admin_token
        # Given writes of 10,000-character notes until the disk has no room (bounded: 600 writes)
        for number in range(600):
            response = server.post(AGREEMENT, {"type": "scope_extended", "valid": "2030", "scope": f"scope {number}",
                                               "note": f"{number} " + "n" * 9990}, token=token)
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])
                continue
            refused.append(response)
            if len(refused) >= 5:
                break
        # Then the refusals are a clear 507 (or 503) with Retry-After, never a 500
        assert refused, "the disk never filled"
        for response in refused:
            assert response.status_code == 507, response.text
            assert response.headers["Content-Type"] == "application/problem+json"
            assert int(response.headers["Retry-After"]) > 0
        # And reads still answer
        assert server.get("/healthz").status_code == 200
        assert server.get("/v1/agreements/ru-eu-readmission-agreement").status_code == 200
    finally:
        server.stop()
    # The store is intact: every acknowledged event is in it and `verify` is ok (on a copy with room)
    roomy = tmp_path / "copy"
    roomy.mkdir()
    for path in glob.glob(f"{store}*"):
        shutil.copy(path, roomy)
    done = cli("verify", "--quiet", database=str(roomy / "registry.sqlite"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"ok: {WRITES + len(acknowledged)} events")


# PostgreSQL stopped and restarted under write load

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class PrivatePostgres:
    """A PostgreSQL server of this test's own: its own folder, port and process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.bin = Path(PG_BIN[-1])

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    def init(self) -> PrivatePostgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        assert done.returncode == 0, done.stderr
        return self.start()

    def start(self) -> PrivatePostgres:
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "-o",
                         f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", "start")
        assert done.returncode == 0, done.stdout + done.stderr + (self.folder / "server.log").read_text()
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not PG_BIN:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    folder = Path(tempfile.mkdtemp(prefix="registry-pg-"))  # outside pytest's folders, which only root may enter
    os.chmod(folder, 0o755)
    try:
        postgres = PrivatePostgres(folder / "cluster").init()
        yield postgres
        postgres.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Writer(threading.Thread):
    """Appends events one after another until told to stop (bounded by `limit`), keeping every answer."""

    def __init__(self, server: Server, token: str, limit: int = 3000) -> None:
        super().__init__(daemon=True)
        self.server, self.token, self.limit = server, token, limit
        self.stopping = threading.Event()
        self.answers: list[tuple[float, int, dict[str, str], Any]] = []
        self.session = requests.Session()

    def run(self) -> None:
        for number in range(self.limit):
            if self.stopping.is_set():
                return
            try:
                response = self.session.post(self.server.url + AGREEMENT, timeout=10,
                                             headers={"Authorization": f"Bearer {self.token}"},
                                             json={"type": "scope_extended", "valid": "2030", "scope": f"s{number}"})
            except requests.RequestException as error:
                self.answers.append((time.monotonic(), 0, {}, str(error)))
                time.sleep(0.05)
                continue
            body = response.json() if response.headers.get("Content-Type", "").endswith("json") else response.text
            self.answers.append((time.monotonic(), response.status_code, dict(response.headers), body))
            if response.status_code != 201:
                time.sleep(0.05)


def test_postgresql_stopped_and_restarted_under_write_load(private_postgres: PrivatePostgres, tmp_path: Path) -> None:
    server = Server(private_postgres.url, tmp_path / "logs",
                    env={"REGISTRY_WEBHOOK_ALLOW_PRIVATE": "1"}).start()
    try:
        token = server.admin_token
        assert token
        start = server.head_position()
        receiver = Receiver()
        subscribed = server.post("/v1/subscriptions", {"url": receiver.url, "after": start}, token=token)
        assert subscribed.status_code == 201, subscribed.text
        stream = requests.get(server.url + "/v1/stream", params={"after": start}, stream=True, timeout=60)
        assert stream.status_code == 200
        writer = Writer(server, token)
        writer.start()
        time.sleep(1.5)
        # PostgreSQL stops under load, stays down for 3 s, and comes back on the same port
        private_postgres.stop()
        stopped_at = time.monotonic()
        reads = [requests.get(server.url + path, timeout=10)
                 for path in ("/v1/agreements/ru-eu-readmission-agreement", "/v1/events", "/readyz")]
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped_at)))
        private_postgres.start()
        restarted_at = time.monotonic()
        # The service recovers by itself: appends succeed again within 30 s
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            recent = [a for a in writer.answers if a[0] > restarted_at]
            if sum(1 for a in recent if a[1] == 201) >= 5:
                break
            time.sleep(0.2)
        writer.stopping.set()
        writer.join(timeout=30)
        statuses = [status for _, status, _, _ in writer.answers]
        (tmp_path / "answers.txt").write_text("\n".join(f"{a[0] - stopped_at:.2f} {a[1]} {str(a[3])[:200]}"
                                                       for a in writer.answers))
        for read in reads:  # reads meanwhile: 503, Retry-After, and no driver text
            assert read.status_code == 503, read.text
            assert int(read.headers["Retry-After"]) > 0 and "5432" not in read.text and "refused" not in read.text
        assert 500 not in statuses, [a for a in writer.answers if a[1] == 500][:3]
        during = [a for a in writer.answers if stopped_at <= a[0] <= restarted_at and a[1] != 201]
        assert during, "no request was refused while PostgreSQL was down (see answers.txt)"
        for _, status, headers, _ in during:
            assert status == 503, (status, headers)
            assert int(headers["Retry-After"]) > 0
        assert sum(1 for a in writer.answers if a[0] > restarted_at and a[1] == 201) >= 5, statuses[-20:]
        # No acknowledged event is lost
        acknowledged = {body["id"] for _, status, _, body in writer.answers if status == 201}
        logged = {event["id"] for event in server.all_events()}
        assert acknowledged <= logged
        # The stream opened before the outage delivers events appended after it
        last = max(body["position"] for _, status, _, body in writer.answers if status == 201)
        seen = 0
        with contextlib.closing(stream):
            for line in stream.iter_lines(decode_unicode=True):
                if line.startswith("id: "):
                    seen = int(line[4:])
                    if seen >= last:
                        break
        assert seen >= last
        # And the webhook subscription made before the outage delivers every acknowledged event
        deadline = time.monotonic() + 60
        while not acknowledged <= {event["id"] for event in receiver.acknowledged()}:
            assert time.monotonic() < deadline, "webhook deliveries did not resume"
            time.sleep(0.2)
        receiver.close()
    finally:
        server.stop()
