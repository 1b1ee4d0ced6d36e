"""The `registry` command line, run as a user runs it: one subprocess per command."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import Server, cli, create_token

from registry.bootstrap import bootstrap
from registry.settings import Settings
from registry.tokens import TRUSTED_FOR

READMISSION = "ru-eu-readmission-agreement"
SEED_WRITES = 22
EVERYTHING_KNOWN = "2100-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def seeded_store(served_store: str) -> str:
    """One store per module, seeded once through the command line; tests here leave its views as they were."""
    assert seeded(served_store) == SEED_WRITES
    return served_store


def seeded(store: str) -> int:
    """Seed the store with the migration timeline; returns the log position it reports."""
    done = cli("seed", "--quiet", database=store)
    assert done.returncode == 0, done.stderr
    found = re.fullmatch(r"seeded: log at position (\d+)\n", done.stdout)
    assert found, done.stdout
    return int(found.group(1))


def snapshot(store: str, as_of: str, known_at: str = EVERYTHING_KNOWN) -> dict[str, Any]:
    done = cli("snapshot", "--as-of", as_of, "--known-at", known_at, database=store)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def one_line_error(done: Any) -> str:
    """A failed command: non-zero exit, nothing on stdout, one line on stderr."""
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return str(lines[0])


def test_token_create_prints_the_token_alone_and_list_shows_it(seeded_store: str) -> None:
    # The token is the whole of stdout, so TOKEN=$(registry token create ...) works.
    done = cli("token", "create", "--name", "analyst", "--role", "reader", database=seeded_store)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and done.stdout.endswith("\n")
    assert re.fullmatch(r"\S{20,}", done.stdout.strip())

    # The list names it, with its role, as active; the token itself is never shown again.
    listed = cli("token", "list", database=seeded_store)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert ("analyst", "reader", "active") in [(r[0], r[1], r[-1]) for r in rows]
    assert done.stdout.strip() not in listed.stdout

    # A second token of that name is refused in one line.
    again = cli("token", "create", "--name", "analyst", "--role", "editor", database=seeded_store)
    assert "analyst" in one_line_error(again)


def test_a_revoked_token_is_refused_by_the_server(store_url: str, launch: Callable[[str], Server]) -> None:
    token = create_token(store_url, "desk-officer", "editor")
    server = launch(store_url)
    session = {"type": "held", "valid": "2019-06-19", "place": "Moscow"}
    meeting = {"id": "ru-eu-migration-dialogue-moscow-2019", "title": "Expert session of the Dialogue on Migration",
               "series": "ru-eu-migration-dialogue"}

    # The desk officer writes ...
    assert server.post("/v1/meetings", meeting, token=token).status_code == 201

    # ... until the token is revoked; then, within the second a server process trusts a token
    # it has looked up, the server answers 401.
    revoked = cli("token", "revoke", "desk-officer", database=store_url)
    assert revoked.returncode == 0 and revoked.stdout == "revoked desk-officer\n"
    time.sleep(TRUSTED_FOR)
    refused = server.post(f"/v1/meetings/{meeting['id']}/events", session, token=token)
    assert refused.status_code == 401 and refused.headers["Content-Type"] == "application/problem+json"
    listed = cli("token", "list", database=store_url).stdout
    assert re.search(r"^desk-officer\teditor\t\S+\trevoked \S+$", listed, re.MULTILINE)

    # Revoking it twice says so in one line.
    assert "desk-officer" in one_line_error(cli("token", "revoke", "desk-officer", database=store_url))


def test_seeding_twice_leaves_the_log_where_it_was(store_url: str) -> None:
    first = seeded(store_url)
    assert first == SEED_WRITES
    assert seeded(store_url) == first


def test_snapshot_shows_the_readmission_agreement_in_force_in_2009(seeded_store: str) -> None:

    done = cli("snapshot", "--as-of", "2009-01-01", database=seeded_store)
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert state["as_of"] == "2009-01-01" and state["position"] == SEED_WRITES
    agreement = {a["id"]: a for a in state["records"]["agreements"]}[READMISSION]
    assert (agreement["status"], agreement["signed"], agreement["entered_into_force"]) == (
        "in_force", "2006", "2007-06-01")
    assert agreement["scope"] == []  # extended only from 1 June 2010

    # Known in 2000, before anything was recorded, the registry held nothing.
    empty = snapshot(seeded_store, "2009-01-01", known_at="2000-01-01T00:00:00Z")
    assert empty["position"] == 0 and all(views == [] for views in empty["records"].values())


@pytest.mark.parametrize("option", [["--as-of", "2009-13-01"], ["--known-at", "yesterday"]])
def test_a_bad_snapshot_date_fails_in_one_line(seeded_store: str, option: list[str]) -> None:
    line = one_line_error(cli("snapshot", *option, database=seeded_store))
    assert line.startswith("registry snapshot:") and option[0] in line


def test_rebuild_reproduces_the_views(seeded_store: str) -> None:
    days = ("2009-01-01", "2018-04-04")
    before = [snapshot(seeded_store, day) for day in days]

    done = cli("rebuild", "--quiet", database=seeded_store)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and done.stdout.startswith(f"rebuilt views from {SEED_WRITES} events")
    assert [snapshot(seeded_store, day) for day in days] == before


def test_project_once_catches_a_lagging_store_up(seeded_store: str) -> None:
    before = snapshot(seeded_store, "2018-04-04")
    registry = bootstrap(Settings(database=seeded_store))
    try:
        # The views are dropped, as after a restore of the log alone.
        registry.projection.reset()
        assert registry.reader.lag() == (SEED_WRITES, 0)

        done = cli("project", "--once", database=seeded_store)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"projected to position {SEED_WRITES}\n"
        assert registry.reader.lag() == (SEED_WRITES, SEED_WRITES)
    finally:
        registry.close()
    assert snapshot(seeded_store, "2018-04-04") == before


@pytest.mark.parametrize("command", [["seed"], ["token", "list"], ["snapshot", "--as-of", "2009-01-01"],
                                     ["rebuild"], ["project", "--once"]])
def test_an_unsupported_database_fails_in_one_line(command: list[str], tmp_path: Path) -> None:
    line = one_line_error(cli(*command, database="ftp://x", cwd=tmp_path))
    assert line.startswith(f"registry {command[0]}:") and "ftp://x" in line
    assert list(tmp_path.iterdir()) == []


def test_the_database_may_come_before_the_token_action(store_url: str, tmp_path: Path) -> None:
    create_token(store_url, "analyst", "reader")
    listed = cli("token", "--database", store_url, "list", database=None, cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout.startswith("analyst\treader\t")
