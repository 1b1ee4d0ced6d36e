"""An auditor's tools, as an auditor runs them: `registry verify/export/import/rebuild`, and the audit endpoints.

The commands run as subprocesses against stores seeded with the migration timeline;
the endpoints are asked of a real `registry serve`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_harness import Server, cli

from registry.bootstrap import bootstrap
from registry.service import Registry
from registry.settings import Settings

SIGNED = 6  # the readmission agreement's signature, valid 2006


@pytest.fixture
def seeded(store_url: str) -> str:
    done = cli("seed", "--quiet", database=store_url)
    assert done.returncode == 0, done.stderr
    return store_url


@pytest.fixture
def other_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty store on the same engine."""
    base, _, schema = store_url.partition("?schema=")
    (tmp_path / "other").mkdir()
    yield f"{base}?schema={schema}_other" if schema else str(tmp_path / "other" / "registry.sqlite")
    if schema:
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_other" CASCADE')


def in_process(url: str) -> Registry:
    return bootstrap(Settings(database=url))


def head_of(url: str) -> dict[str, object]:
    registry = in_process(url)
    try:
        return registry.reader.head()
    finally:
        registry.close()


def move_signature_to_2005(url: str) -> None:
    """Someone with database access edits the stored signature event."""
    registry = in_process(url)
    try:
        with registry.database.write() as cursor:
            text = cursor.execute("SELECT envelope FROM {event_log} WHERE position = ?", (SIGNED,)).scalar()
            cursor.execute("UPDATE {event_log} SET envelope = ? WHERE position = ?",
                           (re.sub(r'"valid": ?"2006"', '"valid":"2005"', text), SIGNED))
    finally:
        registry.close()


def import_from_stdin(path: Path, database: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    with path.open() as stdin:
        return subprocess.run([sys.executable, "-m", "commandline", "import", "-", "--quiet", "--database", database],
                              stdin=stdin, capture_output=True, text=True, timeout=120, env=env)


# registry verify

def test_verify_prints_a_one_line_summary_and_exits_0(seeded: str) -> None:
    done = cli("verify", database=seeded)

    assert done.returncode == 0, done.stderr
    head = head_of(seeded)
    assert done.stdout.splitlines() == [
        f"ok: 22 events verified up to position 22 (head hash {head['hash']}); projections verified"]
    assert "verify" not in done.stderr  # no progress bar when standard error is not a terminal
    # A range, or without the replay of the views.
    assert cli("verify", "--from", "5", "--to", "8", "--quiet", database=seeded).stdout.startswith("ok: 4 events")
    assert cli("verify", "--no-projections", "--quiet", database=seeded).stdout.endswith("projections skipped\n")


def test_verify_after_tampering_exits_1_naming_the_position(seeded: str) -> None:
    kept = head_of(seeded)
    move_signature_to_2005(seeded)

    done = cli("verify", "--quiet", database=seeded)

    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "NOT OK: first bad position 6: the hash does not match the envelope's content (edited)"]
    assert cli("verify", "--no-projections", "--quiet", database=seeded).returncode == 1
    # Checking the head the auditor kept covers all the history up to it: the edit at 6 is found too.
    receipt = cli("verify", "--from", "22", "--hash", str(kept["hash"]), "--quiet", database=seeded)
    assert receipt.returncode == 1
    assert receipt.stdout.startswith("NOT OK: first bad position 6:")


def test_verify_from_beyond_the_head_is_a_usage_error(seeded: str) -> None:
    done = cli("verify", "--from", "23", "--quiet", database=seeded)

    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["registry verify: 'from' 23 is beyond the head at position 22"]


# registry export / import

def test_an_export_imported_elsewhere_is_the_same_log(seeded: str, other_url: str, tmp_path: Path) -> None:
    exported = tmp_path / "registry.ndjson"
    assert cli("export", "-o", str(exported), "--quiet", database=seeded).returncode == 0
    assert len(exported.read_text().splitlines()) == 22

    done = cli("import", str(exported), "--quiet", database=other_url)

    assert done.returncode == 0, done.stderr
    assert done.stdout == "imported 22 events, skipped 0 already present\n"
    assert cli("verify", "--quiet", database=other_url).stdout == cli("verify", "--quiet", database=seeded).stdout
    # The copy exports the very same bytes; importing again, here from standard input, adds nothing.
    assert cli("export", database=other_url).stdout == exported.read_text()
    again = import_from_stdin(exported, other_url)
    assert again.returncode == 0 and again.stdout == "imported 0 events, skipped 22 already present\n"


def truncated(lines: list[str]) -> str:
    return "".join(lines[:-1]) + lines[-1][:100]


def edited(lines: list[str]) -> str:
    return "".join(lines).replace('"valid": "2006"', '"valid": "2005"', 1)


@pytest.mark.parametrize("damage", [truncated, edited])
@pytest.mark.parametrize("filled", [0, 8])
def test_importing_a_bad_file_exits_nonzero_with_one_line_and_writes_nothing(
        seeded: str, other_url: str, tmp_path: Path, damage: Callable[[list[str]], str], filled: int) -> None:
    lines = cli("export", database=seeded).stdout.splitlines(keepends=True)
    if filled:  # an earlier import stopped after the scope extension (position 8)
        (tmp_path / "first.ndjson").write_text("".join(lines[:filled]))
        assert cli("import", str(tmp_path / "first.ndjson"), "--quiet", database=other_url).returncode == 0
    bad = tmp_path / "bad.ndjson"
    bad.write_text(damage(lines))

    done = cli("import", str(bad), database=other_url)

    assert done.returncode != 0 and done.stdout == ""
    line = {"truncated": 22, "edited": SIGNED}[damage.__name__]
    assert len(done.stderr.splitlines()) == 1 and re.match(rf"registry import: line {line}\b", done.stderr)
    assert head_of(other_url)["position"] == filled


def test_importing_a_missing_file_is_a_usage_error(other_url: str, tmp_path: Path) -> None:
    done = cli("import", str(tmp_path / "nowhere.ndjson"), database=other_url)

    assert done.returncode == 2 and done.stderr.startswith("registry import: no file")


# registry rebuild

def test_rebuild_switches_to_a_new_projection_version(seeded: str) -> None:
    done = cli("rebuild", "--quiet", database=seeded)

    assert done.returncode == 0, done.stderr
    assert done.stdout == "rebuilt views from 22 events; projection version 2 is active\n"
    assert cli("verify", "--quiet", database=seeded).returncode == 0
    snapshot = json.loads(cli("snapshot", "--as-of", "2010-06-01", database=seeded).stdout)
    [agreement] = [a for a in snapshot["records"]["agreements"] if a["id"] == "ru-eu-readmission-agreement"]
    assert agreement["status"] == "in_force"


# The audit endpoints

def test_the_audit_endpoints_report_the_head_verify_and_export(server: Server) -> None:
    head = server.get("/v1/audit/head").json()
    events = server.all_events()
    assert head == {key: events[-1][key] for key in ("position", "hash", "recorded_at")}

    report = server.get("/v1/audit/verify").json()
    assert report == {"ok": True, "checked": head["position"], "head": head, "first_bad": None,
                      "projections": "verified"}
    # An auditor who kept the head of position 5 checks that today's log holds that history and extends it.
    kept = events[4]
    extends = server.get("/v1/audit/verify", params={"from": 5, "hash": kept["hash"]}).json()
    assert (extends["ok"], extends["checked"]) == (True, head["position"])
    other = server.get("/v1/audit/verify", params={"from": 5, "hash": events[5]["hash"]}).json()
    assert other["ok"] is False and other["first_bad"]["position"] == 5
    assert server.get("/v1/audit/verify", params={"from": head["position"] + 1}).status_code == 400

    exported = server.get("/v1/audit/export", params={"after": 15})
    assert exported.status_code == 200 and exported.headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [line["data"] for line in lines] == events[15:]
    assert {line["source"] for line in lines} == {server.url}


def test_the_verify_endpoint_names_a_tampered_position(store_url: str, launch: Callable[[str], Server]) -> None:
    server = launch(store_url)
    move_signature_to_2005(store_url)

    report = server.get("/v1/audit/verify").json()

    assert report["ok"] is False
    assert report["first_bad"] == {"position": SIGNED,
                                   "reason": "the hash does not match the envelope's content (edited)"}
