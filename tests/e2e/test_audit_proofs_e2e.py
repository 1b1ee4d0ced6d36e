"""An outside auditor against real servers: the verifier key, `audit watch` from cron,
`audit check` of one event, and `verify --file` of an export offline.

Each story runs `registry serve` (gunicorn, two workers) on a store seeded with the
migration timeline, and the auditor's commands as separate processes. Then someone with
write access to the database rewrites history, or forks the log, and the kept
checkpoint catches it.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import Server, _env, free_port

from registry.audit.proofs import envelope_hash
from registry.bootstrap import bootstrap
from registry.log import merkle
from registry.seed import WRITES
from registry.settings import Settings

SIGNED = 6  # the readmission agreement's signature, valid 2006
SEEDED = WRITES  # the seed's events


def registry_cli(*args: str, key_file: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commandline", *args], capture_output=True, text=True,
                          timeout=timeout, env=_env({"REGISTRY_SIGNING_KEY": str(key_file)}))


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "signing.key"


@pytest.fixture
def served(store_url: str, key_file: Path, tmp_path: Path) -> Iterator[Server]:
    key_file.parent.mkdir()
    server = Server(store_url, tmp_path / "logs", {"REGISTRY_SIGNING_KEY": str(key_file)}).start()
    yield server
    server.stop()


@pytest.fixture
def copy_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty store on the same engine: the forker's copy."""
    base, _, schema = store_url.partition("?schema=")
    yield f"{base}?schema={schema}_fork" if schema else str(tmp_path / "fork.sqlite")
    if schema:
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_fork" CASCADE')


def register_agency(server: Server, slug: str, name: str) -> dict[str, Any]:
    created = server.post("/v1/organisations", {"id": slug, "name": name}, token=server.admin_token)
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def watch(server: Server, vkey: str, state: Path, key_file: Path) -> subprocess.CompletedProcess[str]:
    return registry_cli("audit", "watch", "--url", server.url, "--key", vkey, "--state", str(state),
                        key_file=key_file)


def test_an_auditor_keeps_checkpoints_checks_an_event_and_an_export(served: Server, key_file: Path,
                                                                    tmp_path: Path) -> None:
    # The auditor fetches the key once, out of band; every worker and the command line sign with it.
    keys = {served.get("/v1/audit/key").text for _ in range(12)}
    assert len(keys) == 1
    vkey = keys.pop().strip()
    local = registry_cli("audit", "key", key_file=key_file)
    assert (local.returncode, local.stdout.strip()) == (0, vkey)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert vkey.startswith("cooperation-registry/log+")

    # First run from cron: nothing kept yet, so the checkpoint is trusted and kept.
    state = tmp_path / "checkpoint.state"
    first = watch(served, vkey, state, key_file)
    assert first.returncode == 0, first.stdout + first.stderr
    assert state.read_text().splitlines()[:2] == ["cooperation-registry/log", str(SEEDED)]

    # The registry learns of a new agency; after the 201, the checkpoint covers it.
    created = register_agency(served, "eu-asylum-agency", "European Union Agency for Asylum")
    position = served.head_position()
    assert served.get("/v1/audit/checkpoint").text.splitlines()[1] == str(position) == str(SEEDED + 1)
    later = watch(served, vkey, state, key_file)
    assert later.returncode == 0, later.stdout + later.stderr
    assert f"size {SEEDED + 1} extends the kept checkpoint of size {SEEDED}" in later.stdout
    assert state.read_text().splitlines()[1] == str(SEEDED + 1)

    # One event, checked on its own: its hash and its inclusion in the signed tree.
    event_id = served.all_events()[SIGNED - 1]["id"]
    for checked in (event_id, served.all_events()[-1]["id"]):
        done = registry_cli("audit", "check", "--url", served.url, "--key", vkey, "--event", checked,
                            key_file=key_file)
        assert done.returncode == 0, done.stdout + done.stderr
    assert created["id"] == "eu-asylum-agency"

    # An export, verified offline against the checkpoint kept for its size.
    export = tmp_path / "export.ndjson"
    exported = registry_cli("export", "--database", served.database, "-o", str(export), "--quiet",
                            key_file=key_file)
    assert exported.returncode == 0, exported.stderr
    offline = registry_cli("verify", "--file", str(export), "--checkpoint", str(state), "--key", vkey,
                           key_file=key_file)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert f"{SEEDED + 1} events verified" in offline.stdout

    # An export edited in one event is named by position; a shorter one is refused.
    lines = export.read_text().splitlines(keepends=True)
    edited = json.loads(lines[SIGNED - 1])
    edited["data"]["data"]["place"] = "Moscow"
    (tmp_path / "edited.ndjson").write_text("".join([*lines[:SIGNED - 1], json.dumps(edited) + "\n",
                                                     *lines[SIGNED:]]))
    (tmp_path / "short.ndjson").write_text("".join(lines[:-1]))
    for name, words in (("edited.ndjson", f"first bad position {SIGNED}"), ("short.ndjson", f"{SEEDED} events")):
        bad = registry_cli("verify", "--file", str(tmp_path / name), "--checkpoint", str(state), "--key", vkey,
                           key_file=key_file)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert words in bad.stdout


def test_usage_errors_and_an_unreachable_registry_exit_2(served: Server, key_file: Path, tmp_path: Path) -> None:
    vkey = served.get("/v1/audit/key").text.strip()
    state = tmp_path / "state"
    closed = f"http://127.0.0.1:{free_port()}"
    for args in (
        ("audit", "watch", "--url", closed, "--key", vkey, "--state", str(state)),
        ("audit", "watch", "--url", served.url, "--key", "not-a-key", "--state", str(state)),
        ("audit", "check", "--url", served.url, "--key", vkey, "--event", "00000000-0000-4000-8000-000000000000"),
        ("verify", "--file", str(tmp_path / "absent.ndjson"), "--checkpoint", str(state), "--key", vkey),
        ("verify", "--file", str(tmp_path / "absent.ndjson")),
        ("verify", "--checkpoint", str(state), "--key", vkey, "--database", served.database),
    ):
        done = registry_cli(*args, key_file=key_file)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not state.exists()
    missing = registry_cli("audit", "key", key_file=tmp_path / "no-such-dir" / "signing.key")
    assert missing.returncode == 2 and "no-such-dir does not exist" in missing.stderr


def forge(url: str, position: int) -> None:
    """What a careful forger with database access does: edit one event, recompute every hash
    from there on so the chain links up, and rebuild the tree so the registry signs the new log."""
    registry = bootstrap(Settings(database=url))
    try:
        with registry.database.write() as cursor:
            rows = cursor.execute("SELECT position, envelope FROM {event_log} WHERE position >= ? ORDER BY position",
                                  (position - 1,)).all()
            prev_hash = json.loads(rows[0][1])["hash"]
            for row in rows[1:]:
                envelope = json.loads(row[1])
                if envelope["position"] == position:
                    envelope["data"]["place"] = "Moscow"
                envelope["prev_hash"] = prev_hash
                envelope["hash"] = prev_hash = envelope_hash(envelope)
                cursor.execute("UPDATE {event_log} SET hash = ?, envelope = ? WHERE position = ?",
                               (envelope["hash"], json.dumps(envelope), envelope["position"]))
            cursor.execute("DELETE FROM {merkle_nodes}")
        merkle.backfill(registry.database)
    finally:
        registry.close()


def test_a_rewritten_event_is_named_by_verify_and_caught_by_watch(served: Server, key_file: Path,
                                                                  tmp_path: Path) -> None:
    vkey = served.get("/v1/audit/key").text.strip()
    state = tmp_path / "checkpoint.state"
    assert watch(served, vkey, state, key_file).returncode == 0
    kept = state.read_text()

    # A careless edit of the stored event alone: checking that one event shows it.
    signed = served.all_events()[SIGNED - 1]
    registry = bootstrap(Settings(database=served.database))
    with registry.database.write() as cursor:
        cursor.execute("UPDATE {event_log} SET envelope = ? WHERE position = ?",
                       (json.dumps({**signed, "data": {**signed["data"], "place": "Moscow"}}), SIGNED))
    registry.close()
    checked = registry_cli("audit", "check", "--url", served.url, "--key", vkey, "--event", signed["id"],
                           key_file=key_file)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"position {SIGNED}) does not match its hash" in checked.stdout

    # A careful forger rewrites the chain and the tree from there on.
    forge(served.database, SIGNED)

    # The forged log is self-consistent and signed, but does not extend the kept checkpoint.
    caught = watch(served, vkey, state, key_file)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert f"size {SEEDED} does not extend the kept checkpoint of size {SEEDED}" in caught.stdout
    assert state.read_text() == kept  # the evidence is kept
    verified = registry_cli("verify", "--database", served.database, "--quiet", key_file=key_file)
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert f"first bad position {SIGNED}" in verified.stdout


def test_a_forked_log_is_caught_by_watch(served: Server, copy_url: str, key_file: Path, tmp_path: Path) -> None:
    # An older copy of the store: its log as it stood after the seed.
    export = tmp_path / "at-20.ndjson"
    assert registry_cli("export", "--database", served.database, "-o", str(export), "--quiet",
                        key_file=key_file).returncode == 0
    imported = registry_cli("import", "--database", copy_url, str(export), "--quiet", key_file=key_file)
    assert imported.returncode == 0, imported.stderr
    copy = Server(copy_url, tmp_path / "copy-logs", {"REGISTRY_SIGNING_KEY": str(key_file)}).start()
    try:
        copy.admin_token = registry_cli("token", "create", "--name", "forker", "--role", "admin",
                                        "--database", copy_url, key_file=key_file).stdout.strip()
        vkey = served.get("/v1/audit/key").text.strip()
        assert copy.get("/v1/audit/key").text.strip() == vkey  # the forker holds the key too

        # The original goes on, and the auditor keeps its checkpoint one event further.
        register_agency(served, "eu-asylum-agency", "European Union Agency for Asylum")
        state = tmp_path / "checkpoint.state"
        assert watch(served, vkey, state, key_file).returncode == 0
        # The copy goes on differently, and is shown to the auditor later.
        register_agency(copy, "shadow-agency", "An agency that never was")
        register_agency(copy, "second-shadow", "Another agency that never was")

        caught = watch(copy, vkey, state, key_file)
        assert caught.returncode == 1, caught.stdout + caught.stderr
        assert f"size {SEEDED + 2} does not extend the kept checkpoint of size {SEEDED + 1}" in caught.stdout
        # The same auditor, against the original, is fine.
        assert watch(served, vkey, state, key_file).returncode == 0
    finally:
        copy.stop()
