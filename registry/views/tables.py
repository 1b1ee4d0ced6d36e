"""Writes to a projection version's tables, and its tracking position (the cursor names the version)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registry.log.database import Cursor

NAME = "views"
SEGMENT_COLUMNS = ("record", "valid_from", "sys_from", "sys_to", "state")
TIMELINE_COLUMNS = ("record", "position", "valid_lower", "valid_upper", "state", "effective")
FACET_COLUMNS = ("kind", "facet", "value", "record")


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
