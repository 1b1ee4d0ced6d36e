"""The Atom feed of the global log (RFC 4287), paged as an archived feed (RFC 5005).

Pages have a fixed size and hold positions by number: page k holds positions
(k-1)*size+1 .. k*size. Once the log passes the end of a page, the page is an
archive document that never changes. The subscription document holds the most
recent `size` events and links to the newest archive; every page links to its
neighbours, so a reader walks back to position 1.

Entry ids end in `#<position>`: the same cursor as `/v1/events?after=`, SSE ids
and webhook positions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from events import CATALOGUE
from registry.errors import NotFound
from registry.feeds.text import fit
from registry.log.database import Database
from registry.log.reader import EventFilter, last_position, read_committed

HISTORY = "http://purl.org/syndication/history/1.0"
ATOM = "http://www.w3.org/2005/Atom"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class History(BaseExtension):  # type: ignore[misc]
    """RFC 5005 `<fh:archive/>` on an archive document: it will not change."""

    archive = False

    def extend_ns(self) -> dict[str, str]:
        return {"fh": HISTORY}

    def extend_atom(self, feed: Any) -> Any:
        if self.archive:
            etree.SubElement(feed, f"{{{HISTORY}}}archive")
        return feed


class JsonContent(BaseEntryExtension):  # type: ignore[misc]
    """The media type of out-of-line content (feedgen sets only `src`)."""

    def extend_atom(self, entry: Any) -> Any:
        for content in entry.iter("content", f"{{{ATOM}}}content"):
            content.set("type", "application/json")
        return entry


@dataclass(frozen=True)
class FeedDocument:
    body: bytes
    archive: bool  # a full page: its bytes never change


def feed_document(database: Database, base_url: str, page: int | None, page_size: int) -> FeedDocument:
    """The subscription document (`page` None) or page `page` (1-based). Raises NotFound past the open page."""
    with database.read() as cursor:
        head = last_position(cursor)
        open_page = head // page_size + 1
        if page is None:
            items, _ = read_committed(cursor, max(0, head - page_size), head, EventFilter(), page_size)
        elif page > open_page:
            raise NotFound(f"page {page} does not exist yet: the log has {head} events, "
                           f"{page_size} a page, so the newest page is {open_page}")
        else:
            items, _ = read_committed(cursor, (page - 1) * page_size, min(head, page * page_size), EventFilter(),
                                page_size)
    archive = page is not None and page * page_size <= head
    feed_url = f"{base_url}/v1/feed.atom"
    generator = FeedGenerator()
    generator.register_extension("history", History, JsonContent, rss=False)
    generator.history.archive = archive
    generator.id(feed_url)
    generator.title("Cooperation Registry: events")
    generator.subtitle("Every event recorded in the registry, in log order.")
    generator.author(name="Cooperation Registry")
    generator.updated(_time(items[-1]["recorded_at"]) if items else EPOCH)
    if page is None:
        generator.link(href=feed_url, rel="self", type="application/atom+xml")
        if head // page_size >= 1:
            generator.link(href=f"{feed_url}?page={head // page_size}", rel="prev-archive")
    else:
        generator.link(href=f"{feed_url}?page={page}", rel="self", type="application/atom+xml")
        generator.link(href=feed_url, rel="current")
        if page > 1:
            generator.link(href=f"{feed_url}?page={page - 1}", rel="prev-archive")
        if archive:
            generator.link(href=f"{feed_url}?page={page + 1}", rel="next-archive")
    for envelope in reversed(items):
        _entry(generator, envelope, base_url)
    return FeedDocument(generator.atom_str(pretty=False), archive)


def _entry(generator: FeedGenerator, envelope: Mapping[str, Any], base_url: str) -> None:
    kind, record, type_ = envelope["kind"], envelope["record"], envelope["type"]
    event_url = f"{base_url}/v1/events/{envelope['id']}"
    entry = generator.add_entry(order="append")
    entry.id(f"{event_url}#{envelope['position']}")
    valid = f" ({envelope['valid']})" if envelope.get("valid") else ""
    entry.title(fit(f"{record}: {type_}{valid}"))
    entry.updated(_time(envelope["recorded_at"]))
    entry.published(_time(envelope["recorded_at"]))
    entry.author(name=fit(envelope.get("actor") or "registry"))
    entry.category(term=f"registry.{kind}.{type_}", label=f"{kind} {type_}")
    entry.link(href=f"{base_url}/v1/{CATALOGUE.kinds[kind].collection}/{record}", rel="alternate",
               type="application/json")
    entry.summary(fit(_summary(envelope)))
    entry.content(src=event_url)


def _summary(envelope: Mapping[str, Any]) -> str:
    text = f"{envelope['kind'].title()} {envelope['record']}: {envelope['type'].replace('_', ' ')}"
    if envelope.get("valid"):
        text += f", valid {envelope['valid']}"
    if envelope["type"] in ("corrected", "retracted"):
        text += f", of event {envelope['data'].get('target')}: {envelope['data'].get('reason')}"
    if envelope.get("note"):
        text += f". {envelope['note']}"
    return f"{text} (position {envelope['position']}, recorded {envelope['recorded_at']} by {envelope['actor']})"


def _time(instant: str) -> dt.datetime:
    return dt.datetime.fromisoformat(instant)
