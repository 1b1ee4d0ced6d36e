"""The pages over issue-11 answers: changes between two points, and search."""

from __future__ import annotations

from typing import Any

from flask import request

from api.common import registry
from api.pages import blp, params, views
from api.schemas import Cursor, SearchCursor, encode_cursor, encode_search_cursor
from registry.errors import BadQuery, NotFound
from registry.views.changes import Between

PAIRS = ("from", "to", "known_from", "known_to")


@blp.route("/changes")
def changes() -> str:
    query = views._query(*PAIRS, "kind", "party", "limit", "cursor")
    page = None
    events: dict[str, dict[str, Any] | None] = {}
    replaced: dict[str, None] = {}  # the point the pair replaces, left out of the API's links
    if any(name in query.values for name in PAIRS):
        between = Between(query.get("from"), query.get("to"), query.get("known_from"), query.get("known_to"))
        # The site keeps as_of and known_at in every link; here the pair replaces one of them
        # (the API refuses both), and the page says which it compared.
        replaced = {"as_of": None} if between.check() == "valid" else {"known_at": None}
        page = registry().reader.changes(
            between, as_of=None if "as_of" in replaced else query.as_of,
            known_at=None if "known_at" in replaced else query.known_at, kind=query.get("kind"),
            party=query.get("party"), limit=query.get("limit", views.PAGE_SIZE),
            cursor_id=params.decode_cursor(Cursor(), query.get("cursor")))
        for item in page["items"]:
            for event_id in item["events"]:
                events[event_id] = _event(event_id)
        page["next"] = encode_cursor(page["next"]) if page["next"] else None
    filters = {k: v for k, v in query.raw.items() if k not in ("as_of", "known_at", "cursor")}
    return views._render("changes.html", query, page=page, events=events, filters=filters,
                         api_filters={**filters, **replaced})


@blp.route("/search")
def search() -> str:
    query = views._query("q", "kind", "limit", "cursor")
    page = None
    if query.get("q"):
        page = registry().reader.search(query.get("q"), kind=query.get("kind"), as_of=query.as_of,
                                        known_at=query.known_at, limit=query.get("limit", views.PAGE_SIZE),
                                        after=params.decode_cursor(SearchCursor(), query.get("cursor")))
        page["next"] = encode_search_cursor(page["next"]) if page["next"] else None
    elif "q" in request.args:
        raise BadQuery("give some words to search for", {"q": ["empty"]})
    return views._render("search.html", query, page=page,
                         filters={k: v for k, v in query.raw.items() if k not in ("as_of", "known_at", "cursor")})


def _event(event_id: str) -> dict[str, Any] | None:
    try:
        return registry().reader.event(event_id)
    except NotFound:
        return None
