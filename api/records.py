"""Collections of records: register, list, view, history, append."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for

from api.auth import check_reader, require_writer
from api.common import (
    IDEMPOTENCY_HEADER,
    IF_MATCH_HEADER,
    READ,
    WRITE,
    Blueprint,
    answer,
    etag,
    idempotency_key,
    if_match,
    json_body,
    problems,
    registry,
    respond,
)
from api.schemas import (
    REGISTRATIONS,
    Envelope,
    History,
    ListQuery,
    PointQuery,
    RecordPage,
    RecordView,
    body,
    encode_cursor,
    event_types,
)
from events import CATALOGUE

blp = Blueprint("records", __name__, url_prefix="/v1", description="Records of each kind and their events")


def _register(collection: str) -> Response:
    who = require_writer()
    view = registry().register(collection, json_body(), who.name, idempotency_key())
    location = url_for("records.view_" + collection, record_id=view["id"])
    return respond(view, 201, {"Location": location, "ETag": etag(view["version"])})


def _list(collection: str, **query: Any) -> Response:
    check_reader()
    page = registry().reader.list(
        collection, query.get("as_of"), query.get("known_at"), status=query.get("status"),
        party=query.get("party"), limit=query["limit"], cursor_id=query.get("cursor"),
    )
    if page["next"]:
        page["next"] = encode_cursor(page["next"])
    return respond(page)


def _view(collection: str, record_id: str, **query: Any) -> Response:
    check_reader()
    view = registry().reader.view(record_id, query.get("as_of"), query.get("known_at"))
    _check_kind(collection, view["kind"], record_id)
    return respond(view, headers={"ETag": etag(view["version"])})


def _history(collection: str, record_id: str, **query: Any) -> Response:
    check_reader()
    if registry().reader.record_kind(record_id) != CATALOGUE.by_collection(collection).name:  # type: ignore[union-attr]
        _check_kind(collection, None, record_id)
    return respond(registry().reader.history(record_id, query.get("as_of"), query.get("known_at")))


def _append(collection: str, record_id: str) -> Response:
    who = require_writer()
    envelope = registry().append(collection, record_id, json_body(), who.name, if_match(), idempotency_key())
    return respond(envelope, 201, {"ETag": etag(envelope["version"])})


def _check_kind(collection: str, kind: str | None, record_id: str) -> None:
    from registry.errors import NotFound

    expected = CATALOGUE.by_collection(collection)
    if expected is None or kind != expected.name:
        raise NotFound(f"no {expected.name if expected else 'record'} {record_id!r}")


def _routes(collection: str, kind: str) -> None:
    tags = [collection]
    view_headers = {"ETag": "the record's version, in quotes"}

    @blp.route(f"/{collection}", methods=["POST"], endpoint=f"register_{collection}", tags=tags)
    @blp.doc(summary=f"Register a {kind}", requestBody=body(REGISTRATIONS[kind]), parameters=[IDEMPOTENCY_HEADER],
             responses={201: answer("the new record's view", RecordView,
                                    headers={"Location": "the record's URL", **view_headers}),
                        **problems(*WRITE, 409)})
    def register() -> Response:
        return _register(collection)

    @blp.route(f"/{collection}", methods=["GET"], endpoint=f"list_{collection}", tags=tags)
    @blp.arguments(ListQuery, location="query", as_kwargs=True)
    @blp.doc(summary=f"{kind.title()}s with a certain or uncertain world event by as_of",
             responses={200: answer("a page of views; `next` is the next page's cursor", RecordPage),
                        **problems(400, *READ)})
    def list_(**query: Any) -> Response:
        return _list(collection, **query)

    @blp.route(f"/{collection}/<record_id>", methods=["GET"], endpoint=f"view_{collection}", tags=tags)
    @blp.arguments(PointQuery, location="query", as_kwargs=True)
    @blp.doc(summary=f"A {kind} as of a day, as known at an instant",
             responses={200: answer("the view", RecordView, headers=view_headers), **problems(400, *READ, 404)})
    def view(record_id: str, **query: Any) -> Response:
        return _view(collection, record_id, **query)

    @blp.route(f"/{collection}/<record_id>/history", methods=["GET"], endpoint=f"history_{collection}", tags=tags)
    @blp.arguments(PointQuery, location="query", as_kwargs=True)
    @blp.doc(summary=f"A {kind}'s events in valid order, with state and certainty",
             responses={200: answer("the registration, then world events in valid order", History),
                        **problems(400, *READ, 404)})
    def history(record_id: str, **query: Any) -> Response:
        return _history(collection, record_id, **query)

    @blp.route(f"/{collection}/<record_id>/events", methods=["POST"], endpoint=f"append_{collection}", tags=tags)
    @blp.doc(summary=f"Append a world event to a {kind}: `type` selects its fields",
             requestBody=body(event_types(kind)), parameters=[IF_MATCH_HEADER, IDEMPOTENCY_HEADER],
             responses={201: answer("the event envelope", Envelope, headers={"ETag": "the record's new version"}),
                        **problems(*WRITE, 404, 409, 412)})
    def append(record_id: str) -> Response:
        return _append(collection, record_id)


for _kind in CATALOGUE:
    _routes(_kind.collection, _kind.name)
