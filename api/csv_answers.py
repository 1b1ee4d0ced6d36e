"""List-shaped answers as CSV, for `Accept: text/csv` or `format=csv`.

One header row (the items' keys, in the order they first appear), UTF-8, one row per
item; lists are joined with `; `, objects and lists of objects are written as JSON,
null as an empty cell.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Response, request

from api.common import respond

SEPARATOR = "; "


def wants_csv(format: str | None) -> bool:
    """True when the request asks for CSV: `format=csv`, or an Accept header preferring text/csv."""
    if format is not None:
        return format == "csv"
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return SEPARATOR.join(cell(item) if not isinstance(item, Mapping | list) else _json(item)
                              for item in value)
    if isinstance(value, Mapping):
        return _json(value)
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def csv_text(items: Iterable[Mapping[str, Any]]) -> str:
    rows = list(items)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(columns))
    for row in rows:
        writer.writerow([cell(row.get(name)) for name in columns])
    return out.getvalue()


def answer(page: dict[str, Any], name: str, format: str | None, headers: dict[str, str] | None = None,
           rows: Iterable[Mapping[str, Any]] | None = None) -> Response:
    """The page as JSON, or its items (or `rows`) as a CSV attachment `name`.csv."""
    if not wants_csv(format):
        return respond(page, headers=headers)
    response = Response(csv_text(page["items"] if rows is None else rows), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    for key, value in (headers or {}).items():
        response.headers[key] = value
    response.headers["Vary"] = "Accept"
    return response
