"""The command line as a new user meets it: a mistyped store, a bad receipt, a busy port,
an unreachable database — each one clear line and exit 2, and nothing created."""

from __future__ import annotations

import fcntl
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path

import psycopg
import pytest
from e2e_harness import cli, free_port

from registry.bootstrap import bootstrap
from registry.settings import Settings


def schema_tables(url: str) -> int:
    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base) as conn:
        return int(conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                                (schema,)).fetchone()[0])  # type: ignore[index]


@pytest.mark.parametrize("command", [["verify"], ["snapshot"], ["rebuild"], ["export"], ["project", "--once"]])
def test_commands_refuse_a_store_that_does_not_exist_and_create_nothing(
        store_url: str, tmp_path: Path, command: list[str]) -> None:
    done = cli(*command, database=store_url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1 and "no store" in done.stderr, done.stderr
    assert "ok" not in done.stdout
    if store_url.startswith("postgresql"):
        assert schema_tables(store_url) == 0
    else:
        assert not Path(store_url).exists() and list(Path(store_url).parent.iterdir()) == []


def test_serve_seed_import_and_token_may_create_the_store(store_url: str) -> None:
    done = cli("token", "create", "--name", "first", "--role", "admin", database=store_url)
    assert done.returncode == 0, done.stderr
    assert cli("verify", "--quiet", database=store_url).stdout.startswith("ok: 0 events")


@pytest.fixture
def seeded(store_url: str) -> str:
    done = cli("seed", "--quiet", database=store_url)
    assert done.returncode == 0, done.stderr
    return store_url


def test_a_malformed_receipt_or_one_without_from_is_a_usage_error(seeded: str) -> None:
    registry = bootstrap(Settings(database=seeded))
    head = registry.reader.head()
    kept, at = str(head["hash"]), str(head["position"])
    registry.close()
    for args in (["--hash", kept], ["--from", at, "--hash", kept[:10]], ["--from", at, "--hash", kept + "0"],
                 ["--from", at, "--hash", kept.upper().replace("A", "G")]):
        done = cli("verify", *args, "--quiet", database=seeded)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1 and "--hash" in done.stderr
    assert cli("verify", "--from", at, "--hash", kept, "--quiet", database=seeded).returncode == 0


def test_a_range_that_is_no_range_of_positions_is_a_usage_error_not_a_finding(seeded: str) -> None:
    """As over HTTP (400): --from 0 is no position (it was taken for the default, 1), and --to
    before --from is no range, with or without a kept hash."""
    registry = bootstrap(Settings(database=seeded))
    fifth = registry.reader.events(4, 1)["items"][0]["hash"]
    registry.close()
    for args, named in ((["--from", "0", "--hash", fifth], "--from"), (["--from", "0"], "--from"),
                        (["--from", "-3"], "--from"), (["--from", "5", "--to", "4"], "--to"),
                        (["--from", "5", "--to", "3", "--hash", fifth], "--to"), (["--to", "0"], "--to")):
        done = cli("verify", *args, "--quiet", database=seeded)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1 and named in done.stderr, (args, done.stderr)
    done = cli("verify", "--from", "5", "--to", "5", "--hash", fifth, "--quiet", database=seeded)
    assert done.returncode == 0 and done.stdout.startswith("ok: 5 events verified up to position 5"), done.stdout


def test_export_after_a_position_that_is_none_is_a_usage_error(seeded: str, tmp_path: Path) -> None:
    """As over HTTP (400 for a negative or overlong `after`): one line, exit 2, no file written."""
    for after in ("-5", "-1", str(2**63)):
        output = tmp_path / f"after{after}.ndjson"
        done = cli("export", "--after", after, "-o", str(output), "--quiet", database=seeded)
        assert done.returncode == 2, (after, done.stdout, done.stderr)
        assert len(done.stderr.splitlines()) == 1 and "--after" in done.stderr, done.stderr
        assert not output.exists()
    done = cli("export", "--after", "20", database=seeded)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 2, done.stderr


def run_on_a_terminal(args: list[str]) -> str:
    """Run `registry ARGS` with standard error on a pseudo-terminal; return what it wrote there."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 wide
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    process = subprocess.Popen([sys.executable, "-m", "commandline", *args], stdout=subprocess.DEVNULL,
                               stderr=terminal, env=env)
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=120)
    os.close(controller)
    return output.decode(errors="replace")


def test_progress_bars_show_on_a_terminal_only_with_the_right_total(seeded: str) -> None:
    # Not a terminal: no bar
    assert cli("verify", "--from", "5", database=seeded).stderr == ""
    registry = bootstrap(Settings(database=seeded))
    head = registry.reader.head()
    kept, at = str(head["hash"]), int(head["position"])
    registry.close()
    # A terminal: a bar over the events from position 5 to the head
    shown = run_on_a_terminal(["verify", "--from", "5", "--database", seeded])
    assert f"{at - 4}/{at - 4}" in shown, shown
    shown = run_on_a_terminal(["verify", "--from", str(at), "--hash", kept, "--database", seeded])
    assert f"{at}/{at}" in shown, shown  # a receipt checks the log from position 1


def test_unusable_stores_are_one_line_and_exit_2(tmp_path: Path) -> None:
    not_a_store = tmp_path / "notes.sqlite"
    not_a_store.write_text("these are my notes, not a registry\n" * 100)
    cases = {
        "postgresql://postgres@127.0.0.1:1/test": "PostgreSQL",
        str(not_a_store): "SQLite",
        str(tmp_path): "no store",  # a folder
    }
    for database, expected in cases.items():
        done = cli("verify", "--quiet", database=database, timeout=60)
        assert done.returncode == 2, (database, done.stderr)
        assert len(done.stderr.splitlines()) == 1 and expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not_a_store.read_text().startswith("these are my notes")
    done = cli("seed", "--quiet", database="postgresql://postgres@127.0.0.1:1/test", timeout=60)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "PostgreSQL" in done.stderr


def test_serve_on_a_busy_port_fails_before_its_success_line(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = cli("serve", "--host", "127.0.0.1", "--port", str(port), database=str(tmp_path / "r.sqlite"),
                   timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Cooperation Registry at" not in done.stdout and "token" not in done.stdout
    assert len(done.stderr.splitlines()) == 1 and str(port) in done.stderr
