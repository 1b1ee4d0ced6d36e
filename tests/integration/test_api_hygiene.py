"""Odd input over HTTP: refused with a 4xx problem, never a 500, and nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

AGREEMENT = "ru-eu-readmission-agreement"


def head(client: FlaskClient) -> Any:
    return client.get("/v1/audit/head").get_json()


def refused(client: FlaskClient, response: Any, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    if field:
        assert any(field in name for name in response.get_json()["errors"]), response.get_json()


WRITES = [
    ("a control character in a note", "/v1/agreements/ru-eu-readmission-agreement/events",
     {"type": "terminated", "valid": "2030", "note": "bad \x01"}, 422, "note"),
    ("a lone surrogate in a title", "/v1/agreements", {"id": "lone", "title": "\ud800"}, 422, "title"),
    ("a blank retraction reason", None, {"reason": "   "}, 422, "reason"),
    ("a channel joining one organisation twice", "/v1/channels",
     {"id": "eu-eu", "title": "EU with itself", "parties": ["eu", "eu"]}, 422, "parties"),
    ("an agreement that is its own parent", "/v1/agreements",
     {"id": "self-parent", "title": "Protocol", "parent": "self-parent"}, 422, "parent"),
]


@pytest.mark.parametrize(("name", "path", "body", "status", "field"), WRITES, ids=[w[0] for w in WRITES])
def test_odd_text_is_refused_and_writes_nothing(client: tuple[FlaskClient, dict[str, str]], name: str,
                                                 path: str | None, body: Any, status: int, field: str) -> None:
    http, auth = client
    before = head(http)
    if path is None:  # a retraction of the agreement's signing
        signed = http.get(f"/v1/events?record={AGREEMENT}&type=signed").get_json()["items"][0]
        path = f"/v1/events/{signed['id']}/retractions"
    response = http.post(path, data=json.dumps(body), headers={**auth, "Content-Type": "application/json"})
    refused(http, response, status, field)
    assert head(http) == before


def test_json_nested_beyond_reason_is_a_400(client: tuple[FlaskClient, dict[str, str]]) -> None:
    http, auth = client
    before = head(http)
    deep = "[" * 5000 + "]" * 5000
    response = http.post("/v1/agreements", data=deep, headers={**auth, "Content-Type": "application/json"})
    refused(http, response, 400)
    nested: Any = "x"
    for _ in range(40):
        nested = {"a": nested}
    response = http.post("/v1/agreements", json={"id": "nested", "title": "t", "note": nested}, headers=auth)
    assert response.status_code in (400, 422)
    assert head(http) == before


@pytest.mark.parametrize(("name", "body"), [
    ("NaN", '{"type": "terminated", "valid": "2030", "note": NaN}'),
    ("-Infinity", '{"type": "terminated", "valid": "2030", "note": -Infinity}'),
    ("a number past a double's range", '{"type": "terminated", "valid": "2030", "note": 1e999}'),
])
def test_json_numbers_json_does_not_have_are_a_400(client: tuple[FlaskClient, dict[str, str]], name: str,
                                                   body: str) -> None:
    http, auth = client
    before = head(http)
    response = http.post(f"/v1/agreements/{AGREEMENT}/events", data=body,
                         headers={**auth, "Content-Type": "application/json"})
    refused(http, response, 400, "body")
    assert "not valid JSON" in response.get_json()["detail"]
    assert head(http) == before


def test_a_key_named_twice_in_one_object_is_a_400(client: tuple[FlaskClient, dict[str, str]]) -> None:
    # Which "valid" is meant? JSON parsers differ (first or last wins): the registry asks instead.
    http, auth = client
    before = head(http)
    body = '{"type": "terminated", "valid": "2030", "note": "n", "valid": "2031"}'
    response = http.post(f"/v1/agreements/{AGREEMENT}/events", data=body,
                         headers={**auth, "Content-Type": "application/json"})
    refused(http, response, 400, "body")
    assert "'valid' twice" in response.get_json()["detail"]
    write = '{"op": "append", "collection": "agreements", "id": "' + AGREEMENT + '", "body": '
    nested = '{"writes": [' + write + '{"type": "terminated", "valid": "2030", "data": {"a": 1, "a": 2}}}]}'
    response = http.post("/v1/batch", data=nested, headers={**auth, "Content-Type": "application/json"})
    refused(http, response, 400, "body")
    assert "'a' twice" in response.get_json()["detail"]
    assert head(http) == before
    same_keys_apart = '{"type": "terminated", "valid": "2030", "sources": [{"title": "a"}, {"title": "b"}]}'
    accepted = http.post(f"/v1/agreements/{AGREEMENT}/events", data=same_keys_apart,
                         headers={**auth, "Content-Type": "application/json"})
    assert accepted.status_code == 201, accepted.get_data(as_text=True)


def test_a_compressed_body_is_a_415_and_writes_nothing(client: tuple[FlaskClient, dict[str, str]]) -> None:
    http, auth = client
    before = head(http)
    body = json.dumps({"type": "terminated", "valid": "2030"})
    response = http.post(f"/v1/agreements/{AGREEMENT}/events", data=body,
                         headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    refused(http, response, 415, "Content-Encoding")
    assert head(http) == before
    accepted = http.post(f"/v1/agreements/{AGREEMENT}/events", data=body,
                         headers={**auth, "Content-Type": "application/json", "Content-Encoding": "identity"})
    assert accepted.status_code == 201, accepted.get_data(as_text=True)


READS = [
    ("/v1/agreements?known_at=0001-01-01T00:00:00%2B01:00", 400, "known_at"),
    ("/v1/agreements?known_at=9999-12-31T23:59:59-01:00", 400, "known_at"),
    ("/v1/events?after=99999999999999999999", 400, "after"),
    ("/v1/audit/export?after=99999999999999999999", 400, "after"),
    ("/v1/agreements?cursor=!!!", 400, "cursor"),
    ("/v1/agreements?cursor=IQ", 400, "cursor"),
    ("/v1/events/not%00an-id", 404, None),
    ("/v1/agreements/ru-eu%00readmission", 404, None),
    ("/v1/agreements/ru-eu%00readmission/history", 404, None),
    ("/v1/subscriptions/x%00y", 401, None),
]


@pytest.mark.parametrize(("url", "status", "field"), READS, ids=[r[0] for r in READS])
def test_odd_queries_and_ids_are_4xx(client: tuple[FlaskClient, dict[str, str]], url: str, status: int,
                                     field: str | None) -> None:
    http, _ = client
    refused(http, http.get(url), status, field)


def test_an_unprintable_idempotency_key_is_refused(client: tuple[FlaskClient, dict[str, str]]) -> None:
    http, auth = client
    before = head(http)
    response = http.post(f"/v1/agreements/{AGREEMENT}/events", json={"type": "terminated", "valid": "2030"},
                         headers={**auth, "Idempotency-Key": "two words"})
    refused(http, response, 422, "Idempotency-Key")
    assert head(http) == before


def test_a_query_string_answers_the_same_each_time_it_is_asked(client: tuple[FlaskClient, dict[str, str]]) -> None:
    """Parsed query strings are remembered: a repeat answers as the first did, a bad one is refused
    every time, and another query string is parsed afresh."""
    http, _ = client
    path = f"/v1/agreements/{AGREEMENT}"
    for _ in range(2):
        refused(http, http.get(path, query_string={"as_of": "2006-13-01"}), 400, "as_of")
        refused(http, http.get("/v1/agreements", query_string={"limit": "0"}), 400, "limit")
    signed_then = http.get(path, query_string={"as_of": "2006-06-01"}).get_json()
    in_force = http.get(path, query_string={"as_of": "2008-01-01"}).get_json()
    assert signed_then["as_of"] == "2006-06-01" and in_force["as_of"] == "2008-01-01"
    assert signed_then["status"] != in_force["status"]
    again = http.get(path, query_string={"as_of": "2006-06-01"}).get_json()
    assert again.pop("known_at") >= signed_then.pop("known_at")  # default: now
    assert again == signed_then
    assert len(http.get("/v1/agreements", query_string={"limit": "1"}).get_json()["items"]) == 1
    assert len(http.get("/v1/agreements", query_string={"limit": "2"}).get_json()["items"]) == 2


BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # what Chromium and Firefox send


def test_an_unknown_path_is_a_page_for_a_browser_and_a_problem_for_an_api_client(
        client: tuple[FlaskClient, dict[str, str]]) -> None:
    http, _ = client
    # A person's browser: a 404 page in the site's layout, the way back included.
    page = http.get("/agreemnts", headers={"Accept": BROWSER})
    assert page.status_code == 404 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert 'class="site"' in text and 'href="/timeline"' in text and 'href="/agreements"' in text
    assert "Not Found" in text and "/agreemnts" in text
    assert http.get("/agreements/x/y", headers={"Accept": "text/html"}).mimetype == "text/html"
    # API clients keep problem+json: the API's paths, JSON preferred, or no preference (curl's */*).
    for path, accept in (("/v1/agreemnts", BROWSER), ("/v1", "text/html"), ("/agreemnts", "application/json"),
                         ("/agreemnts", "*/*"), ("/agreemnts", None),
                         ("/agreemnts", "text/html;q=0.5, application/problem+json")):
        answer = http.get(path, headers={"Accept": accept} if accept else {})
        assert answer.status_code == 404 and answer.mimetype == "application/problem+json", (path, accept)
        assert answer.get_json()["status"] == 404
    # A page's own answers are as before: a missing record is a page, a missing asset too.
    assert http.get("/agreements/no-such-agreement", headers={"Accept": BROWSER}).mimetype == "text/html"
    assert http.get("/assets/no-such.css").status_code == 404


def test_a_method_a_path_does_not_take_is_a_page_for_a_browser_and_a_problem_for_an_api_client(
        client: tuple[FlaskClient, dict[str, str]]) -> None:
    http, auth = client
    before = head(http)
    page = http.post("/agreements", data="x=1", headers={"Accept": BROWSER})  # a form posted to a page
    assert page.status_code == 405 and page.mimetype == "text/html"
    assert "GET" in page.headers["Allow"] and 'class="site"' in page.get_data(as_text=True)
    assert "does not take POST" in page.get_data(as_text=True)
    for path, accept in (("/v1/agreements", BROWSER), ("/agreements", "*/*"), ("/agreements", "application/json")):
        answer = http.delete(path, headers={**auth, "Accept": accept})
        assert answer.status_code == 405 and answer.mimetype == "application/problem+json", (path, accept)
        assert "GET" in answer.headers["Allow"]
    assert head(http) == before
