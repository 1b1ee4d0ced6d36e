"""The feeds over HTTP (Flask's test client): SSE, Atom archives, the meetings calendar, and their bad input."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar

from api import create_app
from registry.seed import seed
from registry.service import Registry

ATOM = "{http://www.w3.org/2005/Atom}"
HISTORY = "{http://purl.org/syndication/history/1.0}"
COMMITTEE = "ru-eu-readmission-joint-committee"
SOFIA = "ru-eu-migration-dialogue-sofia-2018"
PAGE = 5


@pytest.fixture
def app(store_url: str) -> Iterator[Flask]:
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False, "SSE_HEARTBEAT": 0.2, "FEED_PAGE_SIZE": PAGE,
                      "BASE_URL": "https://registry.example.org"})
    registry: Registry = app.extensions["registry"]
    seed(registry)  # 22 events
    app.config["EDITOR"] = registry.tokens.create("feeds-editor", "editor")
    yield app
    registry.feed.close()
    registry.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def editor(app: Flask) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.config['EDITOR']}"}


def read_stream(response: Any, events: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Read SSE frames from a streamed response until `events` events came; returns them and the comments."""
    got: list[dict[str, Any]] = []
    comments: list[str] = []
    buffer = ""
    chunks = iter(response.response)
    while len(got) < events:
        buffer += next(chunks).decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    comments.append(line[1:].strip())
                else:
                    name, _, value = line.partition(": ")
                    fields[name] = value
            if "data" in fields:
                got.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
    return got, comments


# Server-Sent Events


def test_a_stream_resumes_after_last_event_id_then_follows_live(app: Flask, client: FlaskClient) -> None:
    # The client last saw position 17 (the Sofia session registered); Last-Event-ID wins over `after`.
    response = client.get("/v1/stream?after=2", headers={"Last-Event-ID": "17"}, buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    missed, comments = read_stream(response, 5)
    assert [e["id"] for e in missed] == [18, 19, 20, 21, 22]
    assert missed[0]["event"] == "held" and missed[0]["data"]["record"] == SOFIA
    assert "following the log after position 17" in comments

    # An event appended now arrives next; heartbeats come while nothing happens.
    appended = client.post(f"/v1/bodies/{COMMITTEE}/events", headers=editor(app), json={
        "type": "recommendation_adopted", "valid": "2017-10-04", "subject": "exchange of contact points",
        "meeting": "ru-eu-readmission-joint-committee-17"}).get_json()
    [live], comments = read_stream(response, 1)
    assert live == {"id": 23, "event": "recommendation_adopted", "data": appended}
    response.close()
    assert app.extensions["registry"].feed.streams == 0


def test_a_filtered_stream_sends_only_what_matches(client: FlaskClient) -> None:
    response = client.get("/v1/stream?after=0&kind=meeting&type=held", buffered=False)
    got, _ = read_stream(response, 2)
    assert [(e["data"]["record"], e["data"]["valid"]) for e in got] == [
        ("ru-eu-readmission-joint-committee-17", "2017-10-04"), (SOFIA, "2018-04-04/2018-04-05")]
    response.close()


@pytest.mark.parametrize(("query", "headers", "field"), [
    ("?after=23", {}, "after"),  # beyond the log's 22 events
    ("?after=-1", {}, "after"),
    ("?after=soon", {}, "after"),
    ("", {"Last-Event-ID": "seventeen"}, "Last-Event-ID"),
    ("", {"Last-Event-ID": "-3"}, "Last-Event-ID"),
    ("?kind=treaty", {}, "kind"),
    ("?type=signed&colour=red", {}, "colour"),  # an unknown filter
    ("?record=Not%20A%20Slug", {}, "record"),
])
def test_bad_cursors_and_filters_are_400_problems(client: FlaskClient, query: str, headers: dict[str, str],
                                                  field: str) -> None:
    response = client.get(f"/v1/stream{query}", headers=headers)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]


# Atom


def parse(body: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(body)


def links(feed: ElementTree.Element) -> dict[str, str]:
    return {link.get("rel", ""): link.get("href", "") for link in feed.findall(f"{ATOM}link")}


def positions(feed: ElementTree.Element) -> list[int]:
    return sorted(int(e.findtext(f"{ATOM}id", "").rsplit("#", 1)[1]) for e in feed.findall(f"{ATOM}entry"))


def test_the_atom_feed_links_immutable_archive_pages_back_to_the_first_event(app: Flask,
                                                                              client: FlaskClient) -> None:
    feed_url = "https://registry.example.org/v1/feed.atom"
    # 22 events, 5 a page: the subscription document shows the newest 5 and links the 4th archive page.
    current = client.get("/v1/feed.atom")
    assert current.mimetype == "application/atom+xml"
    assert current.headers["Cache-Control"] == "no-cache"
    feed = parse(current.data)
    assert feed.findtext(f"{ATOM}id") == feed_url
    assert positions(feed) == [18, 19, 20, 21, 22]
    assert links(feed)["prev-archive"] == f"{feed_url}?page=4"

    # Walking prev-archive from there reaches position 1; every page is a full, immutable archive.
    seen: list[int] = []
    url = links(feed)["prev-archive"]
    while url:
        page = client.get(url.removeprefix("https://registry.example.org"))
        assert page.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        archive = parse(page.data)
        assert archive.find(f"{HISTORY}archive") is not None
        assert links(archive)["current"] == feed_url
        seen = positions(archive) + seen
        url = links(archive).get("prev-archive", "")
    assert seen == list(range(1, 21))

    # An entry's id carries its position; its content is the envelope at /v1/events/{id}.
    entry = parse(client.get("/v1/feed.atom?page=4").data).find(f"{ATOM}entry")
    assert entry is not None
    event_id = entry.findtext(f"{ATOM}id", "").split("/v1/events/")[1].split("#")[0]
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "application/json"
    assert client.get(content.get("src", "").removeprefix("https://registry.example.org")).get_json()["id"] == event_id


def test_an_archive_page_never_changes_once_full_and_the_open_page_fills_up(app: Flask,
                                                                           client: FlaskClient) -> None:
    first = client.get("/v1/feed.atom?page=4")
    assert client.get("/v1/feed.atom?page=4", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    assert client.get("/v1/feed.atom?page=5").status_code == 200  # the open page, empty so far
    assert client.get("/v1/feed.atom?page=6").status_code == 404

    # Five more events fill page 5; page 4 is byte for byte the same.
    for number in range(1, 6):
        client.post(f"/v1/bodies/{COMMITTEE}/events", headers=editor(app), json={
            "type": "recommendation_adopted", "valid": "2017-10-04", "subject": f"recommendation {number}",
            "meeting": "ru-eu-readmission-joint-committee-17"})
    assert client.get("/v1/feed.atom?page=4").data == first.data
    fifth = client.get("/v1/feed.atom?page=5")
    assert fifth.headers["Cache-Control"].endswith("immutable")
    assert positions(parse(fifth.data)) == [21, 22, 23, 24, 25]
    assert links(parse(client.get("/v1/feed.atom").data))["prev-archive"].endswith("?page=5")


@pytest.mark.parametrize("query", ["?page=0", "?page=two", "?since=3"])
def test_bad_atom_pages_are_400_problems(client: FlaskClient, query: str) -> None:
    response = client.get(f"/v1/feed.atom{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


# iCalendar


def meetings(client: FlaskClient, query: str = "") -> dict[str, Any]:
    response = client.get(f"/v1/meetings.ics{query}")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    return {str(e["URL"]).rsplit("/", 1)[1]: e for e in Calendar.from_ical(response.data).walk("VEVENT")}


def test_held_meetings_are_confirmed_all_day_events_and_multi_day_ends_are_exclusive(client: FlaskClient) -> None:
    events = meetings(client)
    brussels = events["ru-eu-readmission-joint-committee-17"]
    assert brussels.decoded("DTSTART") == dt.date(2017, 10, 4)
    assert brussels.decoded("DTEND") == dt.date(2017, 10, 5)
    assert str(brussels["STATUS"]) == "CONFIRMED" and str(brussels["LOCATION"]) == "Brussels"
    sofia = events[SOFIA]
    assert (sofia.decoded("DTSTART"), sofia.decoded("DTEND")) == (dt.date(2018, 4, 4), dt.date(2018, 4, 6))
    assert int(sofia["SEQUENCE"]) == 2


def test_planned_cancelled_and_uncertain_meetings_and_stable_uids(app: Flask, client: FlaskClient) -> None:
    uid = str(meetings(client)[SOFIA]["UID"])
    post = client.post

    # The 18th Joint Committee meeting is scheduled, then moved; the next Dialogue session is cancelled;
    # a 2011 session is known only to have happened in June 2011.
    for record, series, ordinal in ((f"{COMMITTEE}-18", COMMITTEE, 18),
                                    ("ru-eu-migration-dialogue-moscow-2019", "ru-eu-migration-dialogue", None),
                                    ("ru-eu-migration-dialogue-2011-session", "ru-eu-migration-dialogue", None)):
        assert post("/v1/meetings", headers=editor(app), json={
            "id": record, "title": f"Meeting {record}", "series": series, "ordinal": ordinal}).status_code == 201
    assert post(f"/v1/meetings/{COMMITTEE}-18/events", headers=editor(app), json={
        "type": "scheduled", "valid": "2018-01-15", "planned": "2018-06-04", "place": "Moscow"}).status_code == 201
    assert post(f"/v1/meetings/{COMMITTEE}-18/events", headers=editor(app), json={
        "type": "rescheduled", "valid": "2018-03-01", "planned": "2018-06-06/2018-06-07"}).status_code == 201
    for body in ({"type": "scheduled", "valid": "2019-01-10", "planned": "2019-03-12"},
                 {"type": "cancelled", "valid": "2019-02-20", "reason": "no agreed agenda"}):
        assert post("/v1/meetings/ru-eu-migration-dialogue-moscow-2019/events", headers=editor(app),
                    json=body).status_code == 201
    assert post("/v1/meetings/ru-eu-migration-dialogue-2011-session/events", headers=editor(app),
                json={"type": "held", "valid": "2011-06"}).status_code == 201
    # A meeting only registered has no date and no place in the calendar.
    assert post("/v1/meetings", headers=editor(app), json={
        "id": f"{COMMITTEE}-19", "title": "19th meeting", "series": COMMITTEE}).status_code == 201

    events = meetings(client)
    assert f"{COMMITTEE}-19" not in events
    planned = events[f"{COMMITTEE}-18"]
    assert str(planned["STATUS"]) == "TENTATIVE" and int(planned["SEQUENCE"]) == 3
    assert (planned.decoded("DTSTART"), planned.decoded("DTEND")) == (dt.date(2018, 6, 6), dt.date(2018, 6, 8))
    assert str(planned["LOCATION"]) == "Moscow"
    cancelled = events["ru-eu-migration-dialogue-moscow-2019"]
    assert str(cancelled["STATUS"]) == "CANCELLED" and cancelled.decoded("DTSTART") == dt.date(2019, 3, 12)
    june = events["ru-eu-migration-dialogue-2011-session"]
    assert (june.decoded("DTSTART"), june.decoded("DTEND")) == (dt.date(2011, 6, 1), dt.date(2011, 7, 1))
    assert str(june["TRANSP"]) == "TRANSPARENT"
    assert str(events[SOFIA]["UID"]) == uid

    # Only the Joint Committee's meetings, when asked for its series.
    assert set(meetings(client, f"?series={COMMITTEE}")) == {f"{COMMITTEE}-17", f"{COMMITTEE}-18"}


@pytest.mark.parametrize(("query", "status"), [("?series=no-such-body", 404), ("?series=eu", 404),
                                               ("?series=Bad%20Slug", 400), ("?colour=red", 400)])
def test_bad_calendar_queries_are_problems(client: FlaskClient, query: str, status: int) -> None:
    response = client.get(f"/v1/meetings.ics{query}")
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
