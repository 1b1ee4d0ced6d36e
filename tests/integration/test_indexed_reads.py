"""Lists from the facets' index, the timeline in pages, the snapshot streamed: the same answers
as a pass over every record would give."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from api import create_app
from registry.log.database import Cursor
from registry.seed import seed
from registry.service import Registry
from registry.views.reader import EVIDENCE

EDITOR = "registry-editor"


@pytest.fixture
def app_registry(store_url: str) -> Iterator[tuple[FlaskClient, Registry, dict[str, str]]]:
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False})
    registry: Registry = app.extensions["registry"]
    seed(registry)
    token = registry.tokens.create("editor", "editor")
    yield app.test_client(), registry, {"Authorization": f"Bearer {token}"}
    registry.close()


def agreements(count: int) -> list[dict[str, Any]]:
    """Agreements between the EU and others; every seventh also binds Norway, and is signed in 2010."""
    writes = []
    for n in range(count):
        record = f"bench-agreement-{n:03d}"
        parties = ["eu", "RU"] + (["NO"] if n % 7 == 0 else [])
        writes.append({"op": "register", "collection": "agreements",
                       "body": {"id": record, "title": f"Agreement {n}", "parties": parties}})
        writes.append({"op": "append", "collection": "agreements", "id": record,
                       "body": {"type": "signed", "valid": "2010-05-01" if n % 7 == 0 else "2012"}})
    return writes


def every_page(http: FlaskClient, path: str, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = http.get(path, query_string={**query, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next"]
        if not cursor:
            return items


def test_filtered_lists_page_through_exactly_the_matching_records(
        app_registry: tuple[FlaskClient, Registry, dict[str, str]]) -> None:
    http, registry, auth = app_registry
    assert http.post("/v1/batch", json={"writes": agreements(120)}, headers=auth).status_code == 201
    # One of Norway's agreements ends in 2015: as of 2016 it is no longer "signed" but "terminated".
    registry.append("agreements", "bench-agreement-007", {"type": "terminated", "valid": "2015"}, EDITOR)

    everything = every_page(http, "/v1/agreements", {"as_of": "2016-01-01"}, 1000)
    for query in ({"party": "NO"}, {"status": "signed"}, {"party": "NO", "status": "signed"},
                  {"status": "terminated"}):
        for as_of in ("2011-01-01", "2016-01-01"):
            by_pass = [v for v in every_page(http, "/v1/agreements", {"as_of": as_of}, 1000)
                       if ("party" not in query or query["party"] in v["parties"])
                       and ("status" not in query or v["status"] == query["status"])]
            paged = every_page(http, "/v1/agreements", {**query, "as_of": as_of}, 4)
            assert [v["id"] for v in paged] == [v["id"] for v in by_pass]
    assert len(every_page(http, "/v1/agreements", {"as_of": "2011-01-01", "party": "NO"}, 4)) == 18
    assert [v["id"] for v in every_page(http, "/v1/agreements", {"as_of": "2016-01-01", "status": "terminated"},
                                        4)] == ["bench-agreement-007"]
    assert len(everything) > 120


def bodies(count: int) -> list[dict[str, Any]]:
    """Bodies, each with a meeting held and one scheduled."""
    writes: list[dict[str, Any]] = []
    for n in range(count):
        record = f"bench-body-{n:03d}"
        writes += [{"op": "register", "collection": "bodies",
                    "body": {"id": record, "title": f"Body {n}", "parties": ["eu", "RU"]}},
                   {"op": "append", "collection": "bodies", "id": record,
                    "body": {"type": "established", "valid": "2005"}}]
        for m, event in enumerate(({"type": "held", "valid": "2008-03-01", "place": "Brussels"},
                                   {"type": "scheduled", "valid": "2008-03-01", "planned": "2017-03-01"})):
            writes += [{"op": "register", "collection": "meetings",
                        "body": {"id": f"{record}-{m}", "title": f"Meeting {m}", "series": record, "ordinal": m + 1}},
                       {"op": "append", "collection": "meetings", "id": f"{record}-{m}", "body": event}]
    return writes


def test_a_list_page_takes_as_many_queries_whatever_its_size(
        app_registry: tuple[FlaskClient, Registry, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    http, registry, auth = app_registry
    assert http.post("/v1/batch", json={"writes": agreements(120) + bodies(25)}, headers=auth).status_code == 201
    executed: list[str] = []
    execute = Cursor.execute

    def counted(cursor: Cursor, statement: str, params: Any = ()) -> Cursor:
        executed.append(statement)
        return execute(cursor, statement, params)

    monkeypatch.setattr(Cursor, "execute", counted)

    def queries(path: str, limit: int, **query: str) -> int:
        executed.clear()
        page = http.get(path, query_string={"as_of": "2016-01-01", "limit": limit, **query})
        assert page.status_code == 200 and len(page.get_json()["items"]) == limit and page.get_json()["next"]
        return len(executed)

    # Views are read a page at a time (the lookups in a query, the states in one, the evidence in one,
    # a series' meetings in three), not a record at a time.
    for path, query in (("/v1/agreements", {}), ("/v1/agreements", {"party": "NO"}),
                        ("/v1/agreements", {"status": "signed"}), ("/v1/bodies", {})):
        assert queries(path, 15, **query) == queries(path, 2, **query) <= 12, (path, query)
    assert queries("/v1/agreements", 100) == queries("/v1/agreements", 2)


def test_the_timeline_comes_in_pages_that_add_up_to_the_whole(
        app_registry: tuple[FlaskClient, Registry, dict[str, str]]) -> None:
    http, registry, auth = app_registry
    assert http.post("/v1/batch", json={"writes": agreements(30)}, headers=auth).status_code == 201
    whole = registry.reader.timeline(None, None, limit=1000)
    assert whole["next"] is None and len(whole["items"]) > 30
    paged = every_page(http, "/v1/timeline", {}, 7)
    assert [(e["id"], e["state"]) for e in paged] == [(e["id"], e["state"]) for e in whole["items"]]
    # Filters hold across pages too.
    window = every_page(http, "/v1/timeline", {"from": "2010-01-01", "to": "2010-12-31", "kind": "agreement"}, 2)
    assert window and all(e["valid_lower"] <= "2010-12-31" for e in window)
    assert [e["id"] for e in window] == [e["id"] for e in registry.reader.timeline(
        dt.date(2010, 1, 1), dt.date(2010, 12, 31), kind="agreement", limit=1000)["items"]]
    for bad in ("not-a-cursor", "MS4y", "LTEuMi4z"):  # not base64; "1.2"; "-1.2.3"
        refused = http.get("/v1/timeline", query_string={"cursor": bad})
        assert refused.status_code == 400 and refused.mimetype == "application/problem+json"


def test_the_streamed_snapshot_is_the_snapshot(app_registry: tuple[FlaskClient, Registry, dict[str, str]]) -> None:
    http, registry, auth = app_registry
    assert http.post("/v1/batch", json={"writes": agreements(40)}, headers=auth).status_code == 201
    known_at = registry.reader.head()["recorded_at"]
    streamed = http.get("/v1/snapshot", query_string={"as_of": "2013-01-01", "known_at": known_at})
    assert streamed.status_code == 200 and streamed.is_streamed
    expected = registry.reader.snapshot(dt.date(2013, 1, 1), dt.datetime.fromisoformat(known_at))
    assert streamed.get_json() == expected
    assert len(expected["records"]["agreements"]) > 40
    # Read a page at a time, the views are the same.
    head, collections = registry.reader.snapshot_views(dt.date(2013, 1, 1), dt.datetime.fromisoformat(known_at),
                                                       page=3)
    assert {**head, "records": {name: list(views) for name, views in collections}} == expected


def test_a_view_shows_its_latest_events_as_evidence_and_history_all(
        app_registry: tuple[FlaskClient, Registry, dict[str, str]]) -> None:
    http, registry, auth = app_registry
    # An agency renamed on 150 successive days: every rename is a certain event folded into its view.
    writes: list[dict[str, Any]] = [{"op": "register", "collection": "organisations",
                                     "body": {"id": "renamed-agency", "name": "Agency"}}]
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=n) for n in range(150)]
    writes += [{"op": "append", "collection": "organisations", "id": "renamed-agency",
                "body": {"type": "renamed", "valid": day.isoformat(), "name": f"Agency {n}"}}
               for n, day in enumerate(days)]
    assert http.post("/v1/batch", json={"writes": writes}, headers=auth).status_code == 201

    view = http.get("/v1/organisations/renamed-agency", query_string={"as_of": "2001-01-01"}).get_json()
    assert [item["valid"] for item in view["evidence"]] == [day.isoformat() for day in days[-EVIDENCE:]]
    assert view["name"] == "Agency 149"
    # As of an earlier day, the latest certain by then.
    earlier = http.get("/v1/organisations/renamed-agency", query_string={"as_of": "2000-02-19"}).get_json()
    assert [item["valid"] for item in earlier["evidence"]] == [day.isoformat() for day in days[50 - EVIDENCE:50]]
    history = http.get("/v1/organisations/renamed-agency/history", query_string={"as_of": "2001-01-01"}).get_json()
    assert len(history["items"]) == 151


def test_the_timeline_page_counts_every_event_beyond_the_reader_s_first_page(
        app_registry: tuple[FlaskClient, Registry, dict[str, str]]) -> None:
    http, registry, auth = app_registry
    assert http.post("/v1/batch", json={"writes": agreements(200)}, headers=auth).status_code == 201
    total = len(every_page(http, "/v1/timeline", {}, 1000))
    assert total > 200
    last = -(-total // 100)
    shown = http.get("/timeline", query_string={"page": last})
    assert shown.status_code == 200
    assert http.get("/timeline", query_string={"page": last + 1}).status_code == 400
