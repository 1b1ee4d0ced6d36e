"""The Merkle tree over the log, on both stores, checked against RFC 9162 written out here.

A 1,000-event log (the seed timeline, then 980 agencies registered one by one) is
exported once, then imported into each store in uneven parts, so the tree grows by
batches that start at every kind of size. Every inclusion proof of every position at
several tree sizes, and every consistency proof into those sizes, must be exactly what
RFC 9162's recursive definitions give over the same leaves, and must verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from api import create_app
from registry.audit.checkpoints import consistency, inclusion
from registry.audit.proofs import leaf_hash, node_hash, verify_consistency, verify_inclusion
from registry.audit.transfer import export_lines, import_lines
from registry.bootstrap import bootstrap, upgrade
from registry.errors import BadQuery
from registry.log import merkle
from registry.seed import seed
from registry.service import Registry
from registry.settings import Settings

EVENTS = 1000
SIZES = (1, 2, 3, 7, 8, 9, 255, 256, 257, 640, 999, 1000)
PARTS = (1, 2, 5, 248, 1, 383, 360)  # how the file is imported: batches that start at odd sizes


# RFC 9162 section 2.1, as written there: MTH, PATH and PROOF over a list of leaf inputs

class Rfc9162:
    def __init__(self, inputs: list[bytes]) -> None:
        self.leaves = [leaf_hash(data) for data in inputs]

    @staticmethod
    def split(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    @cache  # noqa: B019 - one instance per test module
    def mth(self, start: int, end: int) -> bytes:
        if end - start == 1:
            return self.leaves[start]
        k = self.split(end - start)
        return node_hash(self.mth(start, start + k), self.mth(start + k, end))

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        if end - start == 1:
            return []
        k = self.split(end - start)
        if m < k:
            return self.path(m, start, start + k) + [self.mth(start + k, end)]
        return self.path(m - k, start + k, end) + [self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True)

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = self.split(n)
        if m <= k:
            return self.subproof(m, start, start + k, b) + [self.mth(start + k, end)]
        return self.subproof(m - k, start + k, end, False) + [self.mth(start, start + k)]


@pytest.fixture(scope="module")
def export_file(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A 1,000-event export, written by real commands."""
    source = bootstrap(Settings(database=str(tmp_path_factory.mktemp("source") / "registry.sqlite")))
    seed(source)
    for i in range(EVENTS - source.reader.head()["position"]):
        source.register("organisations", {"id": f"migration-agency-{i:04d}", "name": f"Migration agency {i}"},
                        "registry-editor")
    lines = list(export_lines(source.database))
    source.close()
    assert len(lines) == EVENTS
    return lines


@pytest.fixture
def thousand(registry: Registry, export_file: list[str]) -> Registry:
    done = 0
    for part in PARTS:
        chunk = export_file[done:done + part]
        import_lines(registry.store, lambda chunk=chunk: iter(chunk))  # type: ignore[misc]
        done += part
    assert done == EVENTS and registry.reader.head()["position"] == EVENTS
    return registry


@pytest.fixture(scope="module")
def rfc(export_file: list[str]) -> Rfc9162:
    return Rfc9162([bytes.fromhex(json.loads(line)["data"]["hash"]) for line in export_file])


def root(registry: Registry, size: int) -> bytes:
    with registry.database.read() as cursor:
        return merkle.root(cursor, size)


def test_every_inclusion_proof_at_several_sizes_is_rfc_9162s(thousand: Registry, rfc: Rfc9162) -> None:
    for size in SIZES:
        assert root(thousand, size) == rfc.mth(0, size)
        for position in range(1, size + 1):
            proof = inclusion(thousand.database, position, size)
            hashes = [bytes.fromhex(h) for h in proof["hashes"]]
            assert (proof["position"], proof["size"]) == (position, size)
            assert proof["leaf_hash"] == rfc.leaves[position - 1].hex()
            assert hashes == rfc.path(position - 1, 0, size)
            verify_inclusion(position - 1, size, rfc.leaves[position - 1], hashes, rfc.mth(0, size))


def test_every_consistency_proof_into_several_sizes_is_rfc_9162s(thousand: Registry, rfc: Rfc9162) -> None:
    for new in SIZES:
        for old in range(1, new + 1):
            proof = consistency(thousand.database, old, new)
            hashes = [bytes.fromhex(h) for h in proof["hashes"]]
            assert (proof["from"], proof["to"]) == (old, new)
            assert hashes == rfc.proof(old, new)
            verify_consistency(old, new, rfc.mth(0, old), rfc.mth(0, new), hashes)


def test_proofs_default_to_the_current_tree(thousand: Registry, rfc: Rfc9162) -> None:
    assert inclusion(thousand.database, 500, None)["size"] == EVENTS
    assert consistency(thousand.database, 500, None)["to"] == EVENTS
    assert root(thousand, EVENTS) == rfc.mth(0, EVENTS)


def test_appends_through_the_commands_grow_the_same_tree(registry: Registry) -> None:
    # The seed writes its events one command at a time.
    seed(registry)
    seeded = registry.reader.head()["position"]
    with registry.database.read() as cursor:
        hashes = [bytes.fromhex(r[0]) for r in cursor.execute("SELECT hash FROM {event_log} ORDER BY position").all()]
        assert merkle.tree_size(cursor) == len(hashes) == seeded > 1
    model = Rfc9162(hashes)
    for size in range(1, seeded + 1):
        assert root(registry, size) == model.mth(0, size)


# Stores that logged events before the tree existed

def drop_tree(registry: Registry) -> None:
    with registry.database.write() as cursor:
        cursor.execute("DELETE FROM {merkle_nodes}")


def test_backfill_builds_the_tree_of_an_existing_log(thousand: Registry, rfc: Rfc9162) -> None:
    drop_tree(thousand)
    with pytest.raises(BadQuery):  # no tree yet: the proof is refused, not made up
        inclusion(thousand.database, 1, 1)
    assert merkle.backfill(thousand.database) == EVENTS
    assert merkle.backfill(thousand.database) == 0  # once is enough
    for size in SIZES:
        assert root(thousand, size) == rfc.mth(0, size)
    # The upgrade step that `serve` and `project` run does it too.
    drop_tree(thousand)
    upgrade(thousand)
    assert root(thousand, EVENTS) == rfc.mth(0, EVENTS)


def test_an_append_to_a_log_without_a_tree_builds_it_first(registry: Registry) -> None:
    seed(registry)
    size = registry.reader.head()["position"] + 1
    drop_tree(registry)
    registry.register("organisations", {"id": "frontex-successor", "name": "A new agency"}, "registry-editor")
    with registry.database.read() as cursor:
        hashes = [bytes.fromhex(r[0]) for r in cursor.execute("SELECT hash FROM {event_log} ORDER BY position").all()]
        assert merkle.tree_size(cursor) == len(hashes) == size
    assert root(registry, size) == Rfc9162(hashes).mth(0, size)


# The endpoints

@pytest.fixture
def client(thousand: Registry, store_url: str, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    monkeypatch.setenv("REGISTRY_SIGNING_KEY", str(tmp_path / "signing.key"))
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False})
    yield app.test_client()
    app.extensions["registry"].close()


@pytest.mark.parametrize("query", [
    "/v1/audit/proof/inclusion?position=0",
    "/v1/audit/proof/inclusion?position=-3",
    "/v1/audit/proof/inclusion?position=x",
    "/v1/audit/proof/inclusion",
    "/v1/audit/proof/inclusion?position=1001",
    "/v1/audit/proof/inclusion?position=11&size=10",
    "/v1/audit/proof/inclusion?position=1&size=1001",
    "/v1/audit/proof/inclusion?position=1&size=0",
    "/v1/audit/proof/inclusion?position=1&extra=1",
    "/v1/audit/proof/consistency?from=0",
    "/v1/audit/proof/consistency",
    "/v1/audit/proof/consistency?from=11&to=10",
    "/v1/audit/proof/consistency?from=1&to=1001",
    "/v1/audit/proof/consistency?from=1001",
    "/v1/audit/proof/consistency?from=1&to=99999999999999999999999",
])
def test_bad_positions_and_sizes_are_400_and_touch_nothing(client: FlaskClient, thousand: Registry,
                                                          query: str, tmp_path: Path) -> None:
    response = client.get(query)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = response.get_json()
    assert problem["status"] == 400 and problem["errors"]
    assert thousand.reader.head()["position"] == EVENTS
    with thousand.database.read() as cursor:
        assert merkle.tree_size(cursor) == EVENTS
    assert not (tmp_path / "signing.key").exists()  # proofs need no key: none was made


def test_the_endpoints_answer_what_an_auditor_checks(client: FlaskClient, rfc: Rfc9162) -> None:
    from registry.audit.proofs import open_checkpoint, parse_vkey

    key = client.get("/v1/audit/key")
    assert key.status_code == 200 and key.content_type == "text/plain; charset=utf-8"
    verifier = parse_vkey(key.get_data(as_text=True))
    assert verifier.name == "cooperation-registry/log"
    note = client.get("/v1/audit/checkpoint")
    assert note.status_code == 200 and note.content_type == "text/plain; charset=utf-8"
    checkpoint = open_checkpoint(note.get_data(), verifier)
    assert (checkpoint.size, checkpoint.root) == (EVENTS, rfc.mth(0, EVENTS))
    proof = client.get("/v1/audit/proof/inclusion?position=700&size=900").get_json()
    assert proof["hashes"] == [h.hex() for h in rfc.path(699, 0, 900)]
    proof = client.get("/v1/audit/proof/consistency?from=300").get_json()
    assert proof == {"from": 300, "to": EVENTS, "hashes": [h.hex() for h in rfc.proof(300, EVENTS)]}
