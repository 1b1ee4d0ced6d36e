"""The pages' routes: each parses its query, reads through the registry's reader, renders one template."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from flask import current_app, g, render_template

from api import audit as audit_api
from api.common import registry
from api.pages import blp, params, timeline, words
from api.schemas import Cursor, encode_cursor
from events import CATALOGUE
from registry.errors import BadQuery, NotFound

COLLECTIONS = [kind.collection for kind in CATALOGUE]
COLLECTION_RULE = "/<any(" + ", ".join(COLLECTIONS) + "):collection>"
HIDDEN_FIELDS = {"id", "kind", "status", "version", "as_of", "known_at", "uncertain", "meetings", "evidence"}
COLUMNS = {
    "agreement": ["agreement_type", "parties", "signed", "entered_into_force"],
    "body": ["parties", "established"],
    "dialogue": ["parties", "launched"],
    "meeting": ["series", "ordinal", "planned", "held", "place"],
    "organisation": ["acronym", "members"],
    "channel": ["parties", "contacts_established"],
}
LATEST = 10
PAGE_SIZE = 100


def _query(*accepted: str) -> params.PageQuery:
    query = params.parse(accepted)
    g.page_query = query
    return query


def _render(template: str, query: params.PageQuery, **context: Any) -> str:
    return render_template(f"pages/{template}", query=query, **context)


def title_of(view: dict[str, Any]) -> str:
    return str(view.get("title") or view.get("name") or view["id"])


@blp.route("/")
def home() -> str:
    query = _query()
    reader = registry().reader
    snapshot = reader.snapshot(query.as_of, query.known_at)
    counts = []
    for kind in CATALOGUE:
        views = snapshot["records"][kind.collection]
        by_status = Counter(str(view["status"]) if view["status"] else "no status yet" for view in views)
        counts.append({"collection": kind.collection, "kind": kind.name, "total": len(views),
                       "by_status": sorted(by_status.items())})
    known = snapshot["position"]
    page = reader.events(max(0, known - LATEST), LATEST)
    latest = [event for event in reversed(page["items"]) if event["position"] <= known]
    return _render("home.html", query, counts=counts, latest=latest, snapshot=snapshot)


@blp.route(COLLECTION_RULE)
def collection(collection: str) -> str:
    query = _query("status", "party", "limit", "cursor")
    kind = CATALOGUE.by_collection(collection)
    assert kind is not None
    statuses = _statuses(kind.name)
    status = query.get("status")
    if status is not None and status not in statuses:
        raise BadQuery(f"a {kind.name} never has status {status!r}",
                       {"status": ["one of " + ", ".join(statuses)]})
    limit = query.get("limit", PAGE_SIZE)
    cursor_id = params.decode_cursor(Cursor(), query.get("cursor"))
    page = registry().reader.list(collection, query.as_of, query.known_at, status=status,
                                  party=query.get("party"), limit=limit, cursor_id=cursor_id)
    following = encode_cursor(page["next"]) if page["next"] else None
    return _render("collection.html", query, kind=kind, collection=collection, page=page, statuses=statuses,
                   columns=COLUMNS.get(kind.name, []), following=following, title_of=title_of)


@blp.route(COLLECTION_RULE + "/<record_id>")
def record(collection: str, record_id: str) -> str:
    query = _query()
    reader = registry().reader
    view = reader.view(record_id, query.as_of, query.known_at)
    kind = CATALOGUE.by_collection(collection)
    if kind is None or view["kind"] != kind.name:
        raise NotFound(f"no {kind.name if kind else 'record'} {record_id!r}")
    history = reader.history(record_id, query.as_of, query.known_at)["items"]
    by_id = {item["id"]: item for item in history}
    uncertain = []
    for event_id in view["uncertain"]:
        item = by_id.get(event_id)
        if item is not None:
            valid = (item.get("effective") or {}).get("valid", item["valid"])
            uncertain.append({"item": item, "valid": valid,
                              "sentence": words.uncertain_sentence(item["type"], valid, view["as_of"])})
    corrections = {cid: _event_or_none(cid) for item in history for cid in item.get("corrections", [])}
    retractions = {item["retracted_by"]: _event_or_none(item["retracted_by"])
                   for item in history if item.get("retracted_by")}
    fields = {name: v for name, v in view.items() if name not in HIDDEN_FIELDS}
    meetings = _series_meetings(record_id, query) if kind.name in ("body", "dialogue") else None
    return _render("record.html", query, view=view, kind=kind, collection=collection, fields=fields,
                   history=history, evidence=words.evidence(view, history), uncertain=uncertain,
                   corrections=corrections, retractions=retractions, meetings=meetings, title=title_of(view))


@blp.route("/timeline")
def timeline_page() -> str:
    query = _query("from", "to", "kind", "type", "record", "party", "page", "limit")
    start, end = query.get("from"), query.get("to")
    if start and end and end < start:
        raise BadQuery("'to' is before 'from'", {"to": ["before from"]})
    rows = timeline.rows(registry().reader, query)
    number, size = query.get("page", 1), query.get("limit", PAGE_SIZE)  # rows a page, as on the list pages
    pages = max(1, -(-len(rows) // size))
    if number > pages:
        raise BadQuery(f"there are {pages} pages", {"page": [f"at most {pages}"]})
    day = query.as_of or dt.datetime.now(dt.UTC).date()
    shown = timeline.shape(rows[(number - 1) * size: number * size], day)
    return _render("timeline.html", query, rows=shown, total=len(rows), number=number, pages=pages,
                   data=timeline.chart(shown, day), day=day,
                   filters={k: v for k, v in query.raw.items() if k not in ("as_of", "known_at", "page")},
                   kinds=sorted(CATALOGUE.kinds),
                   types=sorted(CATALOGUE.all_type_names() - {"registered", "corrected", "retracted"}))


@blp.route("/audit")
def audit() -> str:
    query = _query()
    head = registry().reader.head()
    checkpoint = key = None
    signer = getattr(audit_api, "signer", None)  # the signed checkpoints of the verifiable log, where present
    if signer is not None:
        checkpoint = signer().checkpoint(registry().database)
        key = signer().verifier.vkey()
    return _render("audit.html", query, head=head, checkpoint=checkpoint, key=key)


@blp.route("/docs")
def docs() -> str:
    query = _query()
    spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    operations = []
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                operations.append({"method": method.upper(), "path": path,
                                   "summary": operation.get("summary", ""),
                                   "tag": (operation.get("tags") or [""])[0]})
    return _render("docs.html", query, operations=operations, info=spec.get("info", {}))


def _statuses(kind: str) -> list[str]:
    return list(CATALOGUE.kinds[kind].statuses)


def _event_or_none(event_id: str) -> dict[str, Any] | None:
    try:
        return registry().reader.event(event_id)
    except NotFound:
        return None


def _series_meetings(series: str, query: params.PageQuery) -> list[dict[str, Any]]:
    """Every meeting of the series listed as of the point, in valid order, with its status."""
    found, cursor_id = [], None
    while True:
        page = registry().reader.list("meetings", query.as_of, query.known_at, limit=1000, cursor_id=cursor_id)
        found += [view for view in page["items"] if view["series"] == series]
        if not page["next"]:
            break
        cursor_id = page["next"]
    return sorted(found, key=lambda m: (m.get("ordinal") or 0, m["id"]))
