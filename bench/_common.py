"""What the benchmarks share: fresh stores, a real server process, percentiles and tables.

A store is a file in a temporary directory (SQLite, the default) or, given
`--database postgresql://...`, a schema `bench_<run>_<name>` of its own that is
dropped afterwards.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import requests


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database", default=None,
        help="a postgresql:// URL to run on PostgreSQL (each store gets its own schema bench_*, dropped"
             " afterwards); default: SQLite files in a temporary directory",
    )


def engine_name(database: str | None) -> str:
    return "PostgreSQL" if database else "SQLite"


def _server_url(database: str) -> str:
    """The URL without its query: the server and database, not a schema."""
    parts = urlparse(database)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SystemExit(f"--database must be a postgresql:// URL, not {database!r}")
    return urlunparse(parts._replace(query="", fragment=""))


@contextmanager
def fresh_stores(database: str | None, names: Sequence[str]) -> Iterator[dict[str, str]]:
    """A store URL per name, each empty; removed on exit."""
    if database is None:
        with tempfile.TemporaryDirectory(prefix="registry-bench-") as folder:
            yield {name: str(Path(folder) / f"{name}.sqlite") for name in names}
        return
    import psycopg

    base = _server_url(database)
    run = uuid.uuid4().hex[:8]
    schemas = {name: f"bench_{run}_{name}" for name in names}
    with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
        for schema in schemas.values():
            conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield {name: f"{base}?schema={schema}" for name, schema in schemas.items()}
    finally:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            for schema in schemas.values():
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def registry_command() -> list[str]:
    """The `registry` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("registry")
    return [str(script)] if script.exists() else [sys.executable, "-m", "commandline"]


def create_token(database: str, name: str, role: str) -> str:
    done = subprocess.run(
        [*registry_command(), "token", "create", "--name", name, "--role", role, "--database", database],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"registry token create failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(database: str, workers: int = 2, threads: int = 8, timeout: float = 60.0) -> Iterator[str]:
    """`registry serve` on the store, in a process group of its own; yields its base URL."""
    port = _free_port()
    with tempfile.NamedTemporaryFile("w+", prefix="registry-serve-", suffix=".log") as log:
        process = subprocess.Popen(
            [*registry_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--database", database,
             "--workers", str(workers), "--threads", str(threads)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(process, base, timeout, log.name)
            _wait_until_idle(process.pid, timeout)
            yield base
        finally:
            _stop(process)


def _wait_until_up(process: subprocess.Popen[bytes], base: str, timeout: float, log: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"registry serve exited ({process.returncode}):\n{Path(log).read_text()[-3000:]}")
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still booting
            pass
        time.sleep(0.2)
    raise SystemExit(f"registry serve did not become ready in {timeout:.0f}s:\n{Path(log).read_text()[-3000:]}")


def _wait_until_idle(pid: int, timeout: float) -> None:
    """Until every worker has booted: /readyz answers once one has, and a run started then is
    served by that worker alone. Booted workers sit idle: wait for half a second of that."""
    tick = os.sysconf("SC_CLK_TCK")
    deadline, quiet, last = time.monotonic() + timeout, 0, _cpu_ticks(pid)
    while time.monotonic() < deadline and quiet < 2:
        time.sleep(0.25)
        now = _cpu_ticks(pid)
        quiet = quiet + 1 if (now - last) / tick < 0.025 else 0
        last = now


def _cpu_ticks(pid: int) -> int:
    """CPU time of a process and its children (clock ticks); 0 where /proc cannot tell."""
    total = 0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0
    for member in (str(pid), *children):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to gunicorn's master (it stops its workers); SIGKILL its process group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table: text left-aligned, numbers right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric, strict=True))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _is_number(text: str) -> bool:
    """A number, a ratio such as 1.25x, or a range of them such as 0.90-1.10x."""
    return re.fullmatch(r"-|[\d.,]+x?(-[\d.,]+x?)?", text) is not None
