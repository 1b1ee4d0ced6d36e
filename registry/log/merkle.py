"""The Merkle tree over the global log (RFC 9162 section 2.1), stored as events commit.

Leaf i is the event at position i + 1; its input is the 32 bytes of the event's `hash`.
The table `{merkle_nodes}` holds every perfect subtree the log has completed: the node
(level, index) is the hash of leaves index·2^level up to (index+1)·2^level - 1. Appending
n leaves writes about 2n rows; any root or proof is put together from O(log n) of them,
read in one statement.

Row keys keep nodes that proofs read together close together: the tree is cut into
tiles of TILE levels (a tile of the bottom layer spans 64 leaves and their 126 nodes);
a node's key is its layer, its tile, then its place in the tile, with the lowest level
last, so a proof's nodes lie in a few pages of the table, and the greatest key of the
bottom layer is the last leaf.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from registry.log.database import Cursor, Database

EMPTY_ROOT = hashlib.sha256(b"").digest()
CATCH_UP_BATCH = 10_000  # log rows read at a time when the tree is behind the log

Key = tuple[int, int]  # (level, index) of a perfect subtree
TILE = 6  # levels per tile
LAYER = 1 << 58  # the first row key of the second layer of tiles
CACHED_LEVEL = 10  # nodes this high (over 1,024 leaves or more) are kept in memory once read
CACHE_LIMIT = 100_000  # per store: about 10 MB
_high_nodes: weakref.WeakKeyDictionary[Database, dict[Key, bytes]] = weakref.WeakKeyDictionary()


class TreeBehind(Exception):
    """The tree does not reach the requested size (the log has not been indexed that far)."""


def _leaf(entry_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(entry_hash)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


# Writing

def add_leaves(cursor: Cursor, envelopes: Sequence[Mapping[str, Any]]) -> None:
    """Add the leaves of envelopes just stored at consecutive positions, in their transaction.

    If the tree is behind the log (a store logged before it kept a tree), the missing
    leaves are added first, from the log itself.
    """
    if not envelopes:
        return
    size = int(envelopes[0]["position"]) - 1
    frontier = _frontier(cursor, size)
    if frontier is None:
        _catch_up(cursor, size)
        frontier = _frontier(cursor, size)
        assert frontier is not None
    _grow(cursor, frontier, size, [_leaf(e["hash"]) for e in envelopes])


def backfill(database: Database) -> int:
    """Bring the tree up to the head of the log; returns the number of leaves added.

    For stores that logged events before the tree existed: run once at upgrade, before
    serving proofs. Holds the log's write lock meanwhile (appends wait).
    """
    with database.write() as cursor:
        if database.engine == "postgres":  # appends insert into the log: they wait for this
            cursor.execute("LOCK TABLE {event_log} IN EXCLUSIVE MODE")
        head = int(cursor.execute("SELECT COALESCE(MAX(position), 0) FROM {event_log}").scalar())
        before = tree_size(cursor)
        if before < head:
            _catch_up(cursor, head)
        return max(head - before, 0)


def _catch_up(cursor: Cursor, until: int) -> None:
    size = tree_size(cursor)
    frontier = _frontier(cursor, size)
    if frontier is None or size > until:
        raise TreeBehind(f"the tree (size {size}) does not match the log at position {until}")
    while size < until:
        upto = min(size + CATCH_UP_BATCH, until)
        rows = cursor.execute("SELECT position, hash FROM {event_log} WHERE position > ? AND position <= ?"
                              " ORDER BY position", (size, upto)).all()
        if [int(row[0]) for row in rows] != list(range(size + 1, upto + 1)):
            raise TreeBehind(f"the log has a gap between positions {size + 1} and {upto}")
        size = _grow(cursor, frontier, size, [_leaf(row[1]) for row in rows])


def _grow(cursor: Cursor, frontier: dict[int, bytes], size: int, leaves: Sequence[bytes]) -> int:
    """Append leaves to a tree of `size` whose right-edge perfect subtrees are `frontier`
    (level: hash, updated in place); store every completed node. Returns the new size."""
    rows: list[tuple[int, bytes]] = []
    for leaf in leaves:
        level, index, value = 0, size, leaf
        rows.append((_row_key(0, index), value))
        while index % 2 == 1:
            value = _node(frontier.pop(level), value)
            level, index = level + 1, index >> 1
            rows.append((_row_key(level, index), value))
        frontier[level] = value
        size += 1
    cursor.insert_rows("merkle_nodes", ("id", "hash"), rows)
    return size


def _frontier(cursor: Cursor, size: int) -> dict[int, bytes] | None:
    """The perfect subtrees that make up a tree of `size`, by level; None if any is missing."""
    keys = [(level, (size >> level) - 1) for level in range(size.bit_length()) if size >> level & 1]
    found = _nodes(cursor, keys)
    if len(found) != len(keys):
        return None
    return {level: found[(level, index)] for level, index in keys}


# Reading

def tree_size(cursor: Cursor) -> int:
    last = cursor.execute("SELECT MAX(id) FROM {merkle_nodes} WHERE id < ?", (LAYER,)).scalar()
    if last is None:
        return 0
    tile, place = int(last) >> 9, int(last) & 511
    return (tile << TILE | place & ((1 << TILE) - 1)) + 1


def root(cursor: Cursor, size: int) -> bytes:
    """The root hash of the tree of the first `size` leaves. Raises TreeBehind."""
    if size == 0:
        return EMPTY_ROOT
    return _range_hashes(cursor, [(0, size)])[1][0]


def inclusion_proof(cursor: Cursor, index: int, size: int) -> tuple[bytes, list[bytes]]:
    """`(leaf hash, proof)`: RFC 9162 PATH(index, D[0:size]), innermost sibling first.
    Raises TreeBehind.

    Bottom up: at each level the sibling of the leaf's ancestor is a stored perfect subtree,
    or the partly filled subtree at the right edge (at most once, made of the tree's
    frontier below that level), or missing (the ancestor is carried up as it is).
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is outside a tree of size {size}")
    siblings: list[Key | None] = []  # None: the right edge's partial subtree
    edge = 0
    level = 0
    while (size - 1) >> level:
        sibling = (index >> level) ^ 1
        if (sibling + 1) << level <= size:
            siblings.append((level, sibling))
        elif sibling << level < size:
            siblings.append(None)
            edge = level
        level += 1
    parts = [(b, (size >> b) - 1) for b in range(edge - 1, -1, -1) if size >> b & 1]
    nodes = _fetch(cursor, [(0, index), *(key for key in siblings if key), *parts])
    proof = []
    for key in siblings:
        if key:
            proof.append(nodes[key])
        else:
            value = nodes[parts[-1]]
            for part in reversed(parts[:-1]):
                value = _node(nodes[part], value)
            proof.append(value)
    return nodes[(0, index)], proof


def consistency_proof(cursor: Cursor, old: int, new: int) -> list[bytes]:
    """RFC 9162 PROOF(old, D[0:new]) for 0 < old <= new. Raises TreeBehind."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from size {old} to {new}")
    ranges: list[tuple[int, int]] = []
    start, end, mark, whole = 0, new, old, True
    while mark != end - start:
        k = _split(end - start)
        if mark <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, mark, whole = start + k, mark - k, False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return _range_hashes(cursor, ranges)[1]


def _split(width: int) -> int:
    """The largest power of two smaller than `width` (>= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def _perfect_parts(start: int, end: int) -> list[Key]:
    """The perfect subtrees, left to right, that a subtree [start, end) of the tree is made of."""
    parts = []
    while start < end:
        level = (end - start).bit_length() - 1
        parts.append((level, start >> level))
        start += 1 << level
    return parts


def _range_hashes(cursor: Cursor, ranges: Sequence[tuple[int, int]],
                  also: Key | None = None) -> tuple[dict[Key, bytes], list[bytes]]:
    """The hashes of subtrees [start, end) of the tree, from one read of their perfect parts
    (and of the node `also`)."""
    parts = [_perfect_parts(start, end) for start, end in ranges]
    nodes = _fetch(cursor, [*([also] if also else []), *(key for keys in parts for key in keys)])
    hashes = []
    for keys in parts:
        value = nodes[keys[-1]]
        for key in reversed(keys[:-1]):
            value = _node(nodes[key], value)
        hashes.append(value)
    return nodes, hashes


def _fetch(cursor: Cursor, keys: Sequence[Key]) -> dict[Key, bytes]:
    """The nodes `keys`. Nodes never change once committed: this process keeps the high ones
    (few: one per 2^CACHED_LEVEL leaves), so a proof reads about as many rows at any size."""
    cache = _high_nodes.setdefault(cursor.database, {})
    wanted = [key for key in dict.fromkeys(keys) if key not in cache]
    found = _nodes(cursor, wanted)
    if len(found) != len(wanted):
        raise TreeBehind("the tree does not reach that size yet")
    if len(cache) > CACHE_LIMIT:
        cache.clear()
    cache.update((key, value) for key, value in found.items() if key[0] >= CACHED_LEVEL)
    found.update((key, cache[key]) for key in keys if key not in found)
    return found


def _nodes(cursor: Cursor, keys: Sequence[Key]) -> dict[Key, bytes]:
    if not keys:
        return {}
    by_row = {_row_key(level, index): (level, index) for level, index in keys}
    rows = cursor.execute(f"SELECT id, hash FROM {{merkle_nodes}} WHERE id IN ({','.join('?' * len(by_row))})",
                          list(by_row)).all()
    return {by_row[int(row[0])]: bytes(row[1]) for row in rows}


def _row_key(level: int, index: int) -> int:
    """Layer (6 bits) | tile (49 bits) | place in the tile (9 bits: its level, lowest last, and index)."""
    layer, local = divmod(level, TILE)
    width = TILE - local  # the tile holds 2^width nodes of this level
    place = (TILE - 1 - local) << TILE | index & ((1 << width) - 1)
    return layer * LAYER | (index >> width) << 9 | place
