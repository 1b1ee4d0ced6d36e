"""What every blueprint shares: the parser, the JSON body, responses and headers."""

from __future__ import annotations

import re
from typing import Any

import flask_smorest
from flask import Response, current_app, json, request
from webargs.flaskparser import FlaskParser

from registry.errors import BadQuery, Invalid
from registry.service import Registry


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400
    # Let the schemas' own `unknown = RAISE` apply: an unknown query parameter is a 400.
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()


def registry() -> Registry:
    return current_app.extensions["registry"]  # type: ignore[no-any-return]


def json_body() -> Any:
    """The request's JSON body. Raises UnsupportedBody (415) or BadQuery (400)."""
    if not request.is_json:
        raise UnsupportedBody("send the body as application/json", {"Content-Type": ["not JSON"]})
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw)
    except ValueError as error:
        raise BadQuery(f"the body is not valid JSON: {error}", {"body": ["not JSON"]}) from error
    except RecursionError as error:
        raise BadQuery("the body is nested too deeply", {"body": ["too deep"]}) from error


class UnsupportedBody(BadQuery):
    title = "Unsupported Media Type"


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def etag(version: int) -> str:
    return f'"{version}"'


IF_MATCH = re.compile(r'^\s*(?:W/)?"(\d{1,18})"\s*$')


def if_match() -> int | None:
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    found = IF_MATCH.match(header)
    if not found:
        raise BadQuery('If-Match must be a version in quotes, e.g. If-Match: "3"', {"If-Match": ["malformed"]})
    return int(found.group(1))


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key.strip()):
        raise Invalid("Idempotency-Key must be 1-200 printable ASCII characters", {"Idempotency-Key": ["invalid"]})
    return key.strip()
