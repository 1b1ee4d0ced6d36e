"""The global log: events, corrections, retractions, timeline, snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
from flask import Response, request, stream_with_context

from api.auth import check_reader, require_writer
from api.common import (
    IDEMPOTENCY_HEADER,
    READ,
    WRITE,
    Blueprint,
    answer,
    idempotency_key,
    json_body,
    problems,
    registry,
    respond,
)
from api.schemas import (
    Envelope,
    EventPage,
    LogQuery,
    PointQuery,
    Snapshot,
    Timeline,
    TimelineQuery,
    body,
    encode_timeline_cursor,
)
from events import CorrectionInput, RetractionInput
from registry.errors import BadQuery

blp = Blueprint("log", __name__, url_prefix="/v1", description="The global log and views across records")


@blp.route("/events", methods=["GET"])
@blp.arguments(LogQuery, location="query", as_kwargs=True)
@blp.doc(summary="Events in log order after a position (the cursor of every feed)",
         responses={200: answer("a page of events; `next` is the `after` of the next page", EventPage,
                                headers={"Link": 'the next page, rel="next", while pages are full'}),
                    **problems(400, *READ)})
def events(after: int, limit: int, **filters: Any) -> Response:
    check_reader()
    page = registry().reader.events(after, limit, **filters)
    headers = {}
    if page.pop("full"):
        query = {"after": page["next"], "limit": limit, **filters}
        headers["Link"] = f'<{request.base_url}?{urlencode(query)}>; rel="next"'
    return respond(page, headers=headers)


@blp.route("/events/<event_id>", methods=["GET"])
@blp.doc(summary="One event envelope", responses={200: answer("the envelope", Envelope), **problems(*READ, 404)})
def event(event_id: str) -> Response:
    check_reader()
    return respond(registry().reader.event(event_id))


@blp.route("/events/<event_id>/corrections", methods=["POST"])
@blp.doc(summary="Correct an event (fields or valid time)", requestBody=body(CorrectionInput),
         parameters=[IDEMPOTENCY_HEADER],
         responses={201: answer("the envelope of the `corrected` event", Envelope), **problems(*WRITE, 404, 409)})
def correct(event_id: str) -> Response:
    who = require_writer()
    envelope = registry().correct(event_id, json_body(), who.name, idempotency_key())
    return respond(envelope, 201)


@blp.route("/events/<event_id>/retractions", methods=["POST"])
@blp.doc(summary="Retract an event from the registry's knowledge", requestBody=body(RetractionInput),
         parameters=[IDEMPOTENCY_HEADER],
         responses={201: answer("the envelope of the `retracted` event", Envelope), **problems(*WRITE, 404, 409)})
def retract(event_id: str) -> Response:
    who = require_writer()
    envelope = registry().retract(event_id, json_body(), who.name, idempotency_key())
    return respond(envelope, 201)


@blp.route("/snapshot", methods=["GET"])
@blp.arguments(PointQuery, location="query", as_kwargs=True)
@blp.doc(summary="The whole registry as of a day, as known at an instant",
         responses={200: answer("every collection's list at that point", Snapshot), **problems(400, *READ)})
def snapshot(**query: Any) -> Response:
    check_reader()
    head, collections = registry().reader.snapshot_views(query.get("as_of"), query.get("known_at"))

    def chunks() -> Iterator[bytes]:  # streamed: a page of views at a time, never the whole registry
        yield orjson.dumps(head)[:-1] + b',"records":{'
        for number, (collection, views) in enumerate(collections):
            yield (b"," if number else b"") + orjson.dumps(collection) + b":["
            for index, view in enumerate(views):
                yield (b"," if index else b"") + orjson.dumps(view)
            yield b"]"
        yield b"}}"

    return Response(stream_with_context(chunks()), mimetype="application/json")


@blp.route("/timeline", methods=["GET"])
@blp.arguments(TimelineQuery, location="query", as_kwargs=True)
@blp.doc(summary="World events whose valid interval meets [from, to], in valid order, a page at a time",
         responses={200: answer("the events, in valid order; `next`: the cursor of the next page", Timeline),
                    **problems(400, *READ)})
def timeline(from_: Any = None, to: Any = None, cursor: Any = None, **filters: Any) -> Response:
    check_reader()
    if from_ and to and to < from_:
        raise BadQuery("'to' is before 'from'", {"to": ["before from"]})
    page = registry().reader.timeline(from_, to, after=cursor, **filters)
    page["next"] = encode_timeline_cursor(page["next"]) if page["next"] else None
    return respond(page)

