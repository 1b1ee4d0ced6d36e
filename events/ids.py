"""Identifiers: record ids (slugs, unique across kinds) and event ids (UUIDs)."""

from __future__ import annotations

import re

RECORD_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,79}")
EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RECORD_ID_PATTERN = f"^{RECORD_ID.pattern}$"


def is_record_id(value: object) -> bool:
    return isinstance(value, str) and RECORD_ID.fullmatch(value) is not None


def is_event_id(value: object) -> bool:
    return isinstance(value, str) and EVENT_ID.fullmatch(value) is not None
