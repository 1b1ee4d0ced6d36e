"""Every error, in one place, as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError

from api.auth import Forbidden, Unauthorized
from api.common import UnsupportedBody
from api.outages import disk_full, outage
from api.schemas import Problem
from registry.errors import (
    BadQuery,
    Conflict,
    Invalid,
    NotFound,
    PreconditionFailed,
    RegistryError,
    StoreBusy,
)

STATUS = {
    NotFound: 404,
    Invalid: 422,
    BadQuery: 400,
    Conflict: 409,
    PreconditionFailed: 412,
    StoreBusy: 503,
    Unauthorized: 401,
    Forbidden: 403,
    UnsupportedBody: 415,
}
log = logging.getLogger(__name__)


def problem(status: int, title: str, detail: str, errors: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_registry_error(error: RegistryError) -> Response:
    if isinstance(error, StoreBusy) and disk_full(error):
        return outage(error) or problem(507, "Insufficient Storage", "the store has no room left")
    status = next((STATUS[cls] for cls in type(error).__mro__ if cls in STATUS), 400)
    headers = {"Retry-After": "1"} if status == 503 else None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="registry"'}
    return problem(status, error.title, error.detail, error.errors, headers)


def from_http_exception(error: HTTPException) -> Response:
    code = error.code or 500
    if isinstance(error, InternalServerError) and error.original_exception is not None:
        answer = outage(error.original_exception)
        if answer is not None:
            return answer
        log.exception("unhandled error", exc_info=error.original_exception)
        return problem(500, "Internal Server Error", "the server failed; the error is logged")
    data = getattr(error, "data", None) or {}
    errors = data.get("messages") or data.get("errors")
    if isinstance(errors, dict) and set(errors) <= {"query", "json", "headers"}:
        errors = {k: v for part in errors.values() for k, v in part.items()}
    detail = error.description or error.name
    if errors:
        detail = "invalid parameters: " + ", ".join(sorted(errors))
    headers = dict(data.get("headers") or {})
    if getattr(error, "valid_methods", None):  # 405 names the methods that work (RFC 9110 section 15.5.6)
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return problem(code, error.name, detail, errors, headers)


class ProblemApi(Api):
    """flask-smorest's Api, documenting no error shape of its own: every error is a Problem."""

    ERROR_SCHEMA = Problem
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_pagination_header(self) -> None:
        """No flask-smorest pagination here: pages carry their own `next`."""


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(RegistryError, from_registry_error)
    app.register_error_handler(HTTPException, from_http_exception)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        answer = outage(error)
        if answer is not None:
            return answer
        log.exception("unhandled error", exc_info=error)
        return problem(500, "Internal Server Error", "the server failed; the error is logged")
