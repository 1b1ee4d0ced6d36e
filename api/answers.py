"""Answers across records: changes between two points, and search."""

from __future__ import annotations

from typing import Any

from flask import Response

from api.auth import check_reader
from api.common import READ, Blueprint, answer, problems, registry
from api.csv_answers import answer as list_answer
from api.schemas import Changes, ChangesQuery, SearchPage, SearchQuery, encode_cursor, encode_search_cursor
from registry.views.changes import Between

blp = Blueprint("answers", __name__, url_prefix="/v1", description="Changes between two points, and search")


@blp.route("/changes", methods=["GET"])
@blp.arguments(ChangesQuery, location="query", as_kwargs=True)
@blp.doc(summary="Records whose view differs between two days (from, to) or two instants (known_from, known_to)",
         responses={200: answer("a page of changes; `next` is the next page's cursor", Changes, csv=True),
                    **problems(400, *READ)})
def changes(from_: Any = None, to: Any = None, known_from: Any = None, known_to: Any = None,
            format: str | None = None, cursor: str | None = None, **options: Any) -> Response:
    check_reader()
    page = registry().reader.changes(Between(from_, to, known_from, known_to), cursor_id=cursor, **options)
    if page["next"]:
        page["next"] = encode_cursor(page["next"])
    return list_answer(page, "changes", format)


@blp.route("/search", methods=["GET"])
@blp.arguments(SearchQuery, location="query", as_kwargs=True)
@blp.doc(summary="Records whose title or name, or whose events' notes and sources, match the words of q",
         responses={200: answer("a page of matches, title matches first; `next` is the next page's cursor",
                                SearchPage, csv=True),
                    **problems(400, *READ)})
def search(q: str, format: str | None = None, cursor: Any = None, **options: Any) -> Response:
    check_reader()
    page = registry().reader.search(q, after=cursor, **options)
    if page["next"]:
        page["next"] = encode_search_cursor(page["next"])
    return list_answer(page, "search", format)
