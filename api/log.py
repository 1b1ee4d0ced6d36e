"""The global log: events, corrections, retractions, timeline, snapshot."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, request

from api.auth import check_reader, require_writer
from api.common import Blueprint, idempotency_key, json_body, registry, respond
from api.csv_answers import answer
from api.schemas import CorrectionBody, LogQuery, PointQuery, RetractionBody, TimelineQuery
from registry.errors import BadQuery

blp = Blueprint("log", __name__, url_prefix="/v1", description="The global log and views across records")


@blp.route("/events", methods=["GET"])
@blp.arguments(LogQuery, location="query", as_kwargs=True)
@blp.doc(summary="Events in log order after a position (the cursor of every feed)")
def events(after: int, limit: int, format: str | None = None, **filters: Any) -> Response:
    check_reader()
    page = registry().reader.events(after, limit, **filters)
    headers = {}
    if page.pop("full"):
        query = {"after": page["next"], "limit": limit, **filters, **({"format": format} if format else {})}
        headers["Link"] = f'<{request.base_url}?{urlencode(query)}>; rel="next"'
    return answer(page, "events", format, headers)


@blp.route("/events/<event_id>", methods=["GET"])
@blp.doc(summary="One event envelope")
def event(event_id: str) -> Response:
    check_reader()
    return respond(registry().reader.event(event_id))


@blp.route("/events/<event_id>/corrections", methods=["POST"])
@blp.doc(summary="Correct an event (fields or valid time)",
         requestBody={"content": {"application/json": {"schema": CorrectionBody}}})
def correct(event_id: str) -> Response:
    who = require_writer()
    envelope = registry().correct(event_id, json_body(), who.name, idempotency_key())
    return respond(envelope, 201)


@blp.route("/events/<event_id>/retractions", methods=["POST"])
@blp.doc(summary="Retract an event from the registry's knowledge",
         requestBody={"content": {"application/json": {"schema": RetractionBody}}})
def retract(event_id: str) -> Response:
    who = require_writer()
    envelope = registry().retract(event_id, json_body(), who.name, idempotency_key())
    return respond(envelope, 201)


@blp.route("/snapshot", methods=["GET"])
@blp.arguments(PointQuery, location="query", as_kwargs=True)
@blp.doc(summary="The whole registry as of a day, as known at an instant")
def snapshot(**query: Any) -> Response:
    check_reader()
    return respond(registry().reader.snapshot(query.get("as_of"), query.get("known_at")))


@blp.route("/timeline", methods=["GET"])
@blp.arguments(TimelineQuery, location="query", as_kwargs=True)
@blp.doc(summary="World events whose valid interval meets [from, to], in valid order")
def timeline(from_: Any = None, to: Any = None, format: str | None = None, **filters: Any) -> Response:
    check_reader()
    if from_ and to and to < from_:
        raise BadQuery("'to' is before 'from'", {"to": ["before from"]})
    return answer(registry().reader.timeline(from_, to, **filters), "timeline", format)

