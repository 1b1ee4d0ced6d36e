"""The log's events as CloudEvents 1.0: the shape of export lines and webhook bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def cloud_event(envelope: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A CloudEvents 1.0 object carrying the envelope: the shape of export lines and webhook bodies."""
    return {
        "specversion": "1.0",
        "id": envelope["id"],
        "source": source,
        "type": f"registry.{envelope['kind']}.{envelope['type']}",
        "subject": envelope["record"],
        "time": envelope["recorded_at"],
        "datacontenttype": "application/json",
        "data": dict(envelope),
    }
