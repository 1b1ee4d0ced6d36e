"""Writes to a projection version's tables, and its tracking position (the cursor names the version)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from events.text import folded
from registry.log.database import Cursor

NAME = "views"
STORED_KEPT = 10_000  # texts a bulk load remembers having stored
ALIVE = 2**62  # the sys_to of a row that is still the record's knowledge
SEGMENT_COLUMNS = ("record", "valid_from", "sys_from", "sys_to", "state")
TIMELINE_COLUMNS = ("record", "position", "valid_lower", "valid_upper", "state", "effective")
FACET_COLUMNS = ("kind", "facet", "value", "record")
EVIDENCE_COLUMNS = ("record", "position", "certain_day", "valid_lower", "valid_upper", "item", "sys_from", "sys_to")
SEARCH_COLUMNS = ("digest", "text", "record", "kind", "matched", "position")  # a search row
HIT_COLUMNS = ("digest", "record", "kind", "matched", "position")


def tracking_name(cursor: Cursor) -> str:
    return f"{NAME}_v{cursor.version}"


def tracked_position(cursor: Cursor) -> int:
    """The position a projection version has applied."""
    value = cursor.execute(
        "SELECT position FROM {projection_position} WHERE name = ?", (tracking_name(cursor),)).scalar()
    return int(value or 0)


def track(cursor: Cursor, position: int) -> None:
    """Record, in the transaction that applied them, that the version has applied events up to `position`."""
    cursor.execute(
        "INSERT INTO {projection_position} (name, position) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        (tracking_name(cursor), position),
    )


def add_members(cursor: Cursor, rows: list[tuple[Any, ...]]) -> None:
    cursor.executemany(
        "INSERT INTO {series_members} (series, meeting) VALUES (?, ?) ON CONFLICT (series, meeting) DO NOTHING", rows)


def insert_segments(cursor: Cursor, rows: list[tuple[Any, ...]]) -> None:
    cursor.insert_rows("view_segments", SEGMENT_COLUMNS, rows)


def insert_timeline(cursor: Cursor, rows: list[tuple[Any, ...]]) -> None:
    cursor.insert_rows("timeline", TIMELINE_COLUMNS, rows)


def add_facets(cursor: Cursor, rows: Iterable[tuple[str, str, str, str]]) -> None:
    cursor.executemany(
        "INSERT INTO {record_facets} (kind, facet, value, record) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (kind, facet, value, record) DO NOTHING", sorted(set(rows)))
def update_heads(cursor: Cursor, rows: list[tuple[str, str]]) -> None:
    """Set the heads of records, given as (record, head): on PostgreSQL in one statement."""
    if cursor.database.engine == "postgres" and len(rows) > 1:
        cursor.execute("UPDATE {heads} AS h SET head = v.head FROM unnest(?::text[], ?::text[]) AS v (record, head)"
                       " WHERE h.record = v.record", ([record for record, _ in rows], [head for _, head in rows]))
        return
    cursor.executemany("UPDATE {heads} SET head = ? WHERE record = ?", [(head, record) for record, head in rows])


def insert_evidence(cursor: Cursor, rows: list[tuple[Any, ...]]) -> None:
    cursor.insert_rows("evidence", EVIDENCE_COLUMNS, rows)


def end_evidence(cursor: Cursor, record: str, positions: list[int], position: int) -> None:
    """End, at `position`, the alive evidence rows of the record's events at `positions`."""
    cursor.executemany(
        "UPDATE {evidence} SET sys_to = ? WHERE record = ? AND position = ? AND sys_to = ?",
        [(position, record, at, ALIVE) for at in positions])


def insert_search(cursor: Cursor, rows: list[tuple[Any, ...]]) -> None:
    """Store search rows: each text not stored yet once, indexed now, and every row as a hit on it."""
    if not rows:
        return
    texts = {row[0]: row for row in rows}
    if cursor.database.engine == "sqlite":
        fresh = []
        for digest, text, *_ in texts.values():
            cursor.execute("INSERT INTO {search_texts} (digest, text) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING",
                           (digest, text))
            if cursor.raw.rowcount == 1:
                fresh.append((cursor.raw.lastrowid, text))
        cursor.executemany("INSERT INTO {search} (rowid, text) VALUES (?, ?)", fresh)
    else:
        _add_texts(cursor, texts.values())
    cursor.insert_rows("search_hits", HIT_COLUMNS, [(row[0], *row[2:]) for row in rows])


def load_search(cursor: Cursor, rows: list[tuple[Any, ...]], stored: OrderedDict[bytes, None]) -> None:
    """Store search rows in a bulk load, whose words are indexed once it ends (`index_search`).
    `stored`: digests of texts stored lately, which need no second attempt (kept to STORED_KEPT)."""
    texts = {row[0]: row for row in rows if row[0] not in stored}
    _add_texts(cursor, texts.values())
    for digest in texts:
        stored[digest] = None
    while len(stored) > STORED_KEPT:
        stored.popitem(last=False)
    cursor.insert_rows("search_hits", HIT_COLUMNS, [(row[0], *row[2:]) for row in rows])


def index_search(cursor: Cursor) -> None:
    """Index the words of every stored text at once (SQLite; PostgreSQL's index follows its rows)."""
    if cursor.database.engine == "sqlite":
        cursor.execute("INSERT INTO {search} ({search}) VALUES ('rebuild')")


def clear_search_index(cursor: Cursor) -> None:
    """Empty the word index (SQLite: it keeps no rows of its own to delete)."""
    if cursor.database.engine == "sqlite":
        cursor.execute("INSERT INTO {search} ({search}) VALUES ('delete-all')")


def _add_texts(cursor: Cursor, rows: Iterable[tuple[Any, ...]]) -> None:
    if cursor.database.engine == "sqlite":
        cursor.executemany("INSERT INTO {search_texts} (digest, text) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING",
                           [row[:2] for row in rows])
    else:  # one statement, whatever the number of texts
        texts = [(row[0], row[1]) for row in rows]
        if texts:
            cursor.execute(
                "INSERT INTO {search_texts} (digest, text, folded)"
                " SELECT * FROM unnest(?::bytea[], ?::text[], ?::text[]) ON CONFLICT (digest) DO NOTHING",
                ([digest for digest, _ in texts], [text for _, text in texts], [folded(text) for _, text in texts]))
