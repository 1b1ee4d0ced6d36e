"""What every blueprint shares: the parser, the JSON body, responses and headers, and their documentation."""

from __future__ import annotations

import math
import re
from typing import Any

import flask_smorest
import orjson
from flask import Response, current_app, json, request
from marshmallow import Schema
from webargs.flaskparser import FlaskParser

from api.schemas import Problem
from registry.errors import BadQuery, Invalid
from registry.service import Registry

PROBLEM_JSON = "application/problem+json"
CAUSES = {
    400: "a query parameter or header is malformed, or the body is not JSON",
    401: "no valid bearer token (writes; reads too when REGISTRY_READ_AUTH is on)",
    403: "the token's role may not write (reader)",
    404: "no such record, event or subscription",
    409: "the record exists already, or kept changing",
    412: "If-Match names another version than the record's",
    413: "the body is larger than REGISTRY_MAX_BODY",
    415: "the body is not application/json",
    422: "the body is invalid; `errors` names each offending field",
    503: "the store is busy or not ready; retry later",
}
READ = (401,)
QUERIES_KEPT = 1024  # parsed query strings remembered per process
WRITE = (400, 401, 403, 413, 415, 422, 503)


class Parser(FlaskParser):
    """Parses query strings, remembering the last QUERIES_KEPT it parsed well: a query schema's
    answer depends on the query string alone, and reads repeat theirs."""

    DEFAULT_VALIDATION_STATUS = 400
    # Let the schemas' own `unknown = RAISE` apply: an unknown query parameter is a 400.
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parsed: dict[tuple[int, bytes], dict[str, Any]] = {}

    def parse(self, argmap: Any, req: Any = None, *, location: str | None = None, **kwargs: Any) -> Any:
        if location != "query" or not isinstance(argmap, Schema) or kwargs.get("validate"):
            return super().parse(argmap, req, location=location, **kwargs)
        key = (id(argmap), request.query_string)
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = super().parse(argmap, req, location=location, **kwargs)
            if len(self._parsed) >= QUERIES_KEPT:
                self._parsed.clear()
            self._parsed[key] = parsed
        return dict(parsed)


class Blueprint(flask_smorest.Blueprint):
    """Every error an operation documents is a problem+json answer, none flask-smorest's own; every
    operation that may refuse a request for its token names the bearer scheme as its `security`;
    the `parameters` given to `doc` (headers) join those `arguments` documents."""

    ARGUMENTS_PARSER = Parser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks += [self._errors_as_problems, self._bearer_where_refused_without,
                                   self._documented_parameters_join_arguments]

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        # One instance for every request: webargs would build a schema class afresh each time.
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)

    @staticmethod
    def _errors_as_problems(doc: dict[str, Any], doc_info: Any, **kwargs: Any) -> dict[str, Any]:
        responses = doc.get("responses", {})
        responses.pop("default", None)
        for status, response in list(responses.items()):
            if isinstance(response, str):  # a reference to flask-smorest's error response, e.g. for a bad query
                responses[status] = problems(int(status))[int(status)]
        return doc

    @staticmethod
    def _documented_parameters_join_arguments(doc: dict[str, Any], doc_info: Any, **kwargs: Any) -> dict[str, Any]:
        """flask-smorest puts `doc(parameters=...)` in place of the query parameters `arguments`
        documents; here they are added to them instead (the manual doc is merged after this)."""
        added = doc_info.get("manual_doc", {}).pop("parameters", None)
        if added:
            doc["parameters"] = [*doc.get("parameters", []), *added]
        return doc

    @staticmethod
    def _bearer_where_refused_without(doc: dict[str, Any], doc_info: Any, **kwargs: Any) -> dict[str, Any]:
        """403 documented: an editor's or admin's token is needed; 401 alone: a token is taken, and
        needed only when reads are closed. So /docs sends the token given with each try."""
        statuses = {int(status) for status in doc_info.get("manual_doc", {}).get("responses", {})}
        if 403 in statuses:
            doc["security"] = [{"bearer": []}]
        elif 401 in statuses:
            doc["security"] = [{}, {"bearer": []}]
        return doc


def problems(*statuses: int) -> dict[int, dict[str, Any]]:
    """The documentation of error answers: RFC 9457 problems."""
    return {status: {"description": CAUSES[status], "content": {PROBLEM_JSON: {"schema": Problem}}}
            for status in statuses}


IDEMPOTENCY_HEADER = {"in": "header", "name": "Idempotency-Key", "required": False,
                      "description": "a retry with the same key and body returns the first answer and writes nothing",
                      "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"}}
IF_MATCH_HEADER = {"in": "header", "name": "If-Match", "required": False,
                   "description": 'append only if the record is at this version, e.g. "3"',
                   "schema": {"type": "string", "pattern": '^(W/)?"[0-9]{1,18}"$'}}


def answer(description: str, schema: Any = None, media_type: str = "application/json",
           headers: dict[str, str] | None = None, csv: bool = False) -> dict[str, Any]:
    """The documentation of a successful answer; `headers` maps each header to its description;
    `csv`: the items are also given as CSV (`format=csv` or `Accept: text/csv`)."""
    documented: dict[str, Any] = {"description": description,
                                  "content": {media_type: {"schema": schema} if schema is not None else {}}}
    if csv:
        documented["content"]["text/csv"] = {"schema": {"type": "string", "description": "a header row, then "
                                                        "one row per item; lists joined with '; '"}}
    if headers:
        documented["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                                 for name, text in headers.items()}
    return documented


def registry() -> Registry:
    return current_app.extensions["registry"]  # type: ignore[no-any-return]


def json_body() -> Any:
    """The request's JSON body. Raises UnsupportedBody (415) or BadQuery (400)."""
    if not request.is_json:
        raise UnsupportedBody("send the body as application/json", {"Content-Type": ["not JSON"]})
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("", "identity"):
        raise UnsupportedBody(f"a body in Content-Encoding {coding!r} is not read: send it uncompressed",
                              {"Content-Encoding": ["not supported"]})
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw, parse_constant=_not_a_number, parse_float=_finite, object_pairs_hook=_unique_keys)
    except RepeatedKey as error:
        raise BadQuery(f"the body is ambiguous: {error}", {"body": ["repeated key"]}) from error
    except ValueError as error:
        raise BadQuery(f"the body is not valid JSON: {error}", {"body": ["not JSON"]}) from error
    except RecursionError as error:
        raise BadQuery("the body is nested too deeply", {"body": ["too deep"]}) from error


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class RepeatedKey(ValueError):
    """An object of the body names a key twice: which value is meant is not said."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise RepeatedKey(f"an object names the key {repeated[:100]!r} twice")
    return found


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text[:40]} is too large a number")
    return number


class UnsupportedBody(BadQuery):
    title = "Unsupported Media Type"


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(orjson.dumps(body), status=status, mimetype="application/json")
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
