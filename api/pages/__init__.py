"""The pages for people: server-rendered HTML beside the JSON API, in the same process.

Every page reads through the registry's reader (no HTTP round trips), takes the query
parameters of its API counterpart plus `as_of` and `known_at`, and keeps those two in
every link. JavaScript only enhances (the timeline's zoom and pan; RapiDoc on
/docs); every page works without it. All assets are vendored under static/.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, render_template, request, url_for
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as NotFoundPath

from api.auth import check_reader
from api.common import registry
from api.errors import STATUS, from_http_exception
from registry.errors import RegistryError

blp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
                static_url_path="/assets")
log = logging.getLogger(__name__)
HINTS = {
    "as_of": "a day, YYYY-MM-DD, e.g. 2008-01-01",
    "known_at": "an instant, e.g. 2026-01-01T00:00:00Z (a date-time picker's value counts as UTC)",
    "from": "a day, YYYY-MM-DD",
    "to": "a day, YYYY-MM-DD",
    "known_from": "an instant, e.g. 2026-01-01T00:00:00Z",
    "known_to": "an instant, e.g. 2026-01-01T00:00:00Z",
}


def install(app: Flask) -> None:
    """Serve the pages (and /docs from vendored RapiDoc) in this app; an unknown path (or a
    method a path does not take) asked for by a browser is a 404 (405) page in the site's layout."""
    from api.pages import answers, views  # noqa: F401  (routes)

    app.register_blueprint(blp)
    app.register_error_handler(NotFoundPath, _unknown_path)
    app.register_error_handler(MethodNotAllowed, _method_not_allowed)


def wants_a_page() -> bool:
    """A person's browser asking, not an API client: a path outside /v1, and HTML preferred to JSON
    (a browser sends `text/html,…,*/*;q=0.8`; curl sends `*/*`, which gets JSON)."""
    if request.path == "/v1" or request.path.startswith("/v1/"):
        return False
    accept = request.accept_mimetypes
    return accept.quality("text/html") > max(accept.quality("application/json"),
                                             accept.quality("application/problem+json"))


def _unknown_path(error: NotFoundPath) -> Response:
    if request.blueprint == blp.name:  # a page's own 404 (a missing asset): as before, the blueprint's
        return _http_error(error)
    if not wants_a_page():
        return from_http_exception(error)
    return error_page(404, error.name, f"there is no page at {request.path}")


def _method_not_allowed(error: MethodNotAllowed) -> Response:
    if not wants_a_page():
        return from_http_exception(error)
    allowed = ", ".join(error.valid_methods or ())
    return error_page(405, error.name, f"{request.path} does not take {request.method}; it takes {allowed}",
                      headers={"Allow": allowed})


@blp.before_request
def _reader_only() -> None:
    check_reader()


@blp.context_processor
def _site() -> dict[str, Any]:
    from api.pages import words
    from events import CATALOGUE

    functions = current_app.view_functions
    return {"collections": [kind.collection for kind in CATALOGUE], "words": words,
            "has_search": "pages.search" in functions, "has_changes": "pages.changes" in functions,
            "kind_of": registry().reader.record_kind}


@blp.app_template_global()
def link(endpoint: str, **params: Any) -> str:
    """A URL on this site that keeps the chosen `as_of` and `known_at` (a permalink)."""
    query = getattr(g, "page_query", None)
    kept = query.point() if query is not None else {}
    merged = {**kept, **params}
    return url_for(endpoint, **{k: v for k, v in merged.items() if v not in (None, "")})


def error_page(status: int, title: str, detail: str, errors: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None) -> Response:
    hints = {name: HINTS[name] for name in (errors or {}) if name in HINTS}
    from api.pages.params import PageQuery

    query = getattr(g, "page_query", None) or PageQuery()
    site = _site() if request.blueprint != blp.name else {}  # outside the blueprint (an unknown path)
    body = render_template("pages/error.html", status=status, title=title, detail=detail,
                           errors=errors or {}, hints=hints, args=request.args, query=query, **site)
    response = Response(body, status=status, mimetype="text/html")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@blp.errorhandler(RegistryError)
def _registry_error(error: RegistryError) -> Response:
    status = next((STATUS[cls] for cls in type(error).__mro__ if cls in STATUS), 400)
    headers = {"WWW-Authenticate": 'Bearer realm="registry"'} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "1"}
    return error_page(status, error.title, error.detail, error.errors, headers)


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    return error_page(error.code or 500, error.name, error.description or error.name)


@blp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error on a page", exc_info=error)
    return error_page(500, "Internal Server Error", "the server failed; the error is logged")
