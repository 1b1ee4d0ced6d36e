"""Feeds of the global log: Server-Sent Events, Atom, and the meetings calendar.

Every stream of a process reads from that process's one log follower
(`registry.feed`), never from a database connection of its own.
"""

from __future__ import annotations

import json
import re
import select
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from flask import Flask, Response, current_app, request
from marshmallow import RAISE, fields, validate

from api.auth import check_reader
from api.common import READ, Blueprint, answer, problems, registry
from api.schemas import KINDS, MAX_POSITION, SLUG, TYPES, Query
from registry.errors import BadQuery
from registry.feeds.atom import feed_document
from registry.feeds.calendar import meetings_calendar
from registry.feeds.delivery import DeliverySettings, WebhookDelivery
from registry.feeds.follower import EventFilter, Subscription, last_position
from registry.settings import Settings

blp = Blueprint("feeds", __name__, url_prefix="/v1", description="Live and syndicated feeds of the log")
POSITION = re.compile(r"^[0-9]{1,18}$")


class StreamQuery(Query):
    after = fields.Integer(validate=validate.Range(min=0, max=MAX_POSITION),
                           metadata={"description": "the last position you have (default: now, live only)"})
    type = fields.String(validate=validate.OneOf(TYPES))
    kind = fields.String(validate=validate.OneOf(KINDS))
    record = fields.String(validate=SLUG)


class AtomQuery(Query):
    page = fields.Integer(validate=validate.Range(min=1, max=MAX_POSITION),
                          metadata={"description": "an archive page (RFC 5005); without it, the newest events"})


class CalendarQuery(Query):
    series = fields.String(validate=SLUG, metadata={"description": "a body or dialogue id"})


def base_url() -> str:
    """The registry's public URL: REGISTRY_BASE_URL, or the URL this request came to."""
    return str(current_app.config.get("BASE_URL") or request.url_root).rstrip("/")


@blp.route("/stream", methods=["GET"])
@blp.arguments(StreamQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.doc(summary="Live events as Server-Sent Events; resumes after Last-Event-ID or `after`",
         parameters=[{"in": "header", "name": "Last-Event-ID", "required": False,
                      "description": "the `id` of the last event received: resume after it",
                      "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}}],
         responses={200: answer("`id:` the position, `event:` the type, `data:` the envelope; a heartbeat comment"
                                " at least every 15 s", media_type="text/event-stream"),
                    **problems(400, *READ, 503)})
def stream(after: int | None = None, **filters: str) -> Response:
    check_reader()
    start = _resume_point(after)
    feed = registry().feed
    with registry().database.read() as cursor:
        head = last_position(cursor)
    if start is None:
        start = head
    elif start > head:
        raise BadQuery(f"position {start} is beyond the log's last position {head}", {"after": ["beyond the log"]})
    wanted = EventFilter.of(**{f"{name}s": [filters[name]] for name in ("type", "kind", "record") if name in filters})
    subscription = feed.subscribe(start, wanted, current_app.config["MAX_STREAMS"])
    metrics = current_app.extensions["metrics"]
    metrics.count_streams(feed.streams)
    body = EventStream(subscription, start, float(current_app.config["SSE_HEARTBEAT"]),
                       request.environ.get("gunicorn.socket"), on_close=lambda: metrics.count_streams(feed.streams))
    return Response(body, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _resume_point(after: int | None) -> int | None:
    """Last-Event-ID (sent by a reconnecting client) wins over `after` (in the URL it first opened)."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if not header:
        return after
    if not POSITION.match(header):
        raise BadQuery("Last-Event-ID must be a log position, the `id` of an event this stream sent",
                       {"Last-Event-ID": ["not a log position"]})
    return int(header)


class EventStream:
    """The body of one SSE response: events as they come, a comment when none came for a while."""

    def __init__(self, subscription: Subscription, start: int, heartbeat: float,
                 client: socket.socket | None = None, on_close: Callable[[], None] = lambda: None) -> None:
        self.subscription = subscription
        self.start = start
        self.heartbeat = heartbeat
        self.client = client  # the connection (under gunicorn), looked at for a client that has gone
        self.on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        yield f"retry: 2000\n: following the log after position {self.start}\n\n".encode()
        quiet_since = time.monotonic()
        while True:
            batch = self.subscription.next(min(self.heartbeat, CLIENT_CHECK))
            if batch is None:  # the server is stopping
                return
            if batch:
                yield "".join(map(frame, batch)).encode()
                quiet_since = time.monotonic()
            elif client_gone(self.client):  # its slot frees now, not at the next heartbeat
                return
            elif time.monotonic() - quiet_since >= self.heartbeat:
                yield b": heartbeat\n\n"
                quiet_since = time.monotonic()

    def close(self) -> None:
        """Called by the server when the response ends or the client has gone."""
        self.subscription.close()
        self.on_close()


CLIENT_CHECK = 1.0  # seconds between looks for a vanished stream client


def client_gone(client: socket.socket | None) -> bool:
    """Whether the peer closed the connection (readable, and nothing to read)."""
    if client is None:
        return False
    try:
        readable, _, _ = select.select([client], [], [], 0)
        return bool(readable) and client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


def frame(envelope: Mapping[str, Any]) -> str:
    data = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return f"id: {envelope['position']}\nevent: {envelope['type']}\ndata: {data}\n\n"


@blp.route("/feed.atom", methods=["GET"])
@blp.arguments(AtomQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.doc(summary="Atom feed of the newest events, with RFC 5005 archive pages",
         responses={200: answer("an Atom feed", media_type="application/atom+xml", headers={"ETag": "of the page"}),
                    304: {"description": "not modified since the ETag given in If-None-Match"},
                    **problems(400, *READ, 404)})
def atom(page: int | None = None) -> Response:
    check_reader()
    document = feed_document(registry().database, base_url(), page, int(current_app.config["FEED_PAGE_SIZE"]))
    response = Response(document.body, mimetype="application/atom+xml")
    scope = "private" if current_app.config["READ_AUTH"] else "public"
    response.headers["Cache-Control"] = f"{scope}, max-age=31536000, immutable" if document.archive else "no-cache"
    response.add_etag()
    response.make_conditional(request)
    return response


@blp.route("/meetings.ics", methods=["GET"])
@blp.arguments(CalendarQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.doc(summary="Meetings as an iCalendar feed (held or planned), optionally of one series",
         responses={200: answer("an iCalendar file", media_type="text/calendar", headers={"ETag": "of the calendar"}),
                    304: {"description": "not modified since the ETag given in If-None-Match"},
                    **problems(400, *READ, 404)})
def calendar(series: str | None = None) -> Response:
    check_reader()
    response = Response(meetings_calendar(registry().reader, base_url(), series), mimetype="text/calendar")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Disposition"] = f'inline; filename="{series or "meetings"}.ics"'
    response.add_etag()
    response.make_conditional(request)
    return response


def install(app: Flask, settings: Settings) -> None:
    """Wake the follower after writes; deliver webhooks from this process if the settings say so."""
    feed = app.extensions["registry"].feed

    @app.after_request
    def wake_feed(response: Response) -> Response:
        # A write in this process: the follower reads the log now, not at its next poll.
        if request.method != "GET" and response.status_code < 300:
            feed.wake()
        return response

    if settings.deliver_webhooks == "on":
        registry_ = app.extensions["registry"]
        delivery = WebhookDelivery(registry_.database, feed, DeliverySettings.of(settings))
        app.extensions["webhook_delivery"] = delivery.start()


def stop(app: Flask) -> None:
    """End this process's streams and webhook deliveries at once (the server is stopping); waits for nothing."""
    app.extensions["registry"].feed.close(wait=False)
    delivery = app.extensions.get("webhook_delivery")
    if delivery is not None:
        delivery.stop(wait=False)
