"""Search: records whose title or name as of a point, or whose events' notes and sources
known at that point, match the words of a query.

The projection keeps each distinct text once, in its `search_texts` table (indexed by
SQLite FTS5 with the porter stemmer, or PostgreSQL full-text search with the english
configuration, without accents and case), and every place it occurs in `search_hits`.
A title matches only while it is the record's title in the view at the point, so a
search finds a renamed organisation by its name as of then.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from events import CATALOGUE
from events.text import folded
from registry.errors import BadQuery
from registry.log.database import Cursor
from registry.views.rows import title_of

if TYPE_CHECKING:
    from registry.views.reader import Point, Reader

WORD = re.compile(r"\w+")
MATCHED = ("title", "note", "source")  # the order items list what matched
MAX_WORDS = 32


def words_of(q: str) -> list[str]:
    """The words a query searches for. Raises BadQuery when there are none."""
    words = WORD.findall(folded(q or ""))
    if not words:
        raise BadQuery("q must hold at least one word", {"q": ["empty"]})
    return words[:MAX_WORDS]


def search(reader: Reader, q: str, *, kind: str | None = None, as_of: dt.date | None = None,
           known_at: dt.datetime | None = None, limit: int = 100, after: tuple[int, str] | None = None,
           ) -> dict[str, Any]:
    """Matching records, title matches first, then by id. `after` is the (group, id) of the last
    item of the previous page (`next` of it). Raises BadQuery for an empty `q` or an unknown kind."""
    words = words_of(q)
    if kind is not None and kind not in CATALOGUE.kinds:
        raise BadQuery(f"no kind {kind!r}", {"kind": [f"one of {', '.join(sorted(CATALOGUE.kinds))}"]})
    with reader._read() as cursor:
        point = reader._point(cursor, as_of, known_at)
        found: dict[str, dict[str, Any]] = {}
        for record_id, record_kind, matched, text, snippet in _matches(cursor, words, kind, point):
            hit = found.setdefault(record_id, {"kind": record_kind, "titles": set(), "snippets": {}})
            if matched == "title":
                hit["titles"].add(text)
            hit["snippets"].setdefault(matched, snippet)
        items = []
        for record_id, hit in found.items():
            view = reader._view(cursor, record_id, hit["kind"], point)
            title = view.get("title") or view.get("name")
            searched = title_of({"view": view})
            matched = [m for m in MATCHED if m in hit["snippets"] and (m != "title" or searched in hit["titles"])]
            if not matched:
                continue  # only a title the record no longer (or not yet) had at the point
            key = (0 if matched[0] == "title" else 1, record_id)
            if after is not None and key <= after:
                continue
            items.append((key, {"id": record_id, "kind": hit["kind"], "title": title, "status": view["status"],
                                "matched": matched, "snippet": hit["snippets"][matched[0]]}))
    items.sort(key=lambda item: item[0])
    page = items[:limit]
    return {
        "items": [item for _, item in page],
        "next": page[-1][0] if len(items) > limit else None,
        "q": q,
        "as_of": point.day.isoformat(),
        "known_at": point.known_at,
    }


def _matches(cursor: Cursor, words: list[str], kind: str | None, point: Point) -> list[tuple[Any, ...]]:
    """(record, kind, matched, text, snippet) of every stored text known at the point that holds every word."""
    by_kind = " AND h.kind = ?" if kind else ""
    if cursor.database.engine == "sqlite":
        query = " ".join('"' + word.replace('"', '""') + '"' for word in words)
        found = ("SELECT t.digest, t.text, snippet({search}, 0, '', '', '…', 16) AS snippet"
                 " FROM {search} JOIN {search_texts} t ON t.id = {search}.rowid WHERE {search} MATCH ?")
    else:
        query = " ".join(words)
        found = ("SELECT digest, text, ts_headline('english', text, query,"
                 " 'StartSel=\"\", StopSel=\"\", MaxWords=16, MinWords=8, ShortWord=2') AS snippet"
                 " FROM {search_texts}, plainto_tsquery('english', ?) AS query WHERE document @@ query")
    rows = cursor.execute(  # each matching text's snippet once, then the places it occurs
        f"WITH found AS MATERIALIZED ({found})"
        " SELECT h.record, h.kind, h.matched, f.text, f.snippet FROM found f"
        f" JOIN {{search_hits}} h ON h.digest = f.digest WHERE h.position <= ?{by_kind}",
        (query, point.position, *([kind] if kind else []))).all()
    return [tuple(row) for row in rows]
