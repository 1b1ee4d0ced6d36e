"""Malformed requests over HTTP: each gets a 4xx problem+json naming what is wrong, and writes nothing."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from e2e_harness import Server

MAX_BODY = 32 * 1024
SERVER_ENV = {"REGISTRY_MAX_BODY": str(MAX_BODY)}
READMISSION = "/v1/agreements/ru-eu-readmission-agreement"


@dataclass(frozen=True)
class Case:
    """One malformed request and the answer it must get."""

    method: str
    path: str
    status: int
    body: Any = None
    field: str | None = None
    headers: dict[str, str] = default(default_factory=dict)
    data: bytes | None = None
    params: dict[str, str] = default(default_factory=dict)


VISA = {"id": "ru-eu-visa-facilitation-agreement", "title": "Agreement on the facilitation of the issuance of visas",
        "parties": ["RU", "eu"]}
JC18 = {"id": "ru-eu-readmission-joint-committee-18", "title": "18th meeting of the Joint Committee on readmission",
        "series": "ru-eu-readmission-joint-committee"}
CASES = {
    "bad slug": Case("POST", "/v1/agreements", 422, {**VISA, "id": "Visa Facilitation Agreement"}, "id"),
    "missing required field": Case("POST", "/v1/agreements", 422, {"id": VISA["id"]}, "title"),
    "unknown field": Case("POST", "/v1/agreements", 422, {**VISA, "ratified_by": "State Duma"}, "ratified_by"),
    "wrong type": Case("POST", "/v1/meetings", 422, {**JC18, "ordinal": "eighteenth"}, "ordinal"),
    "parties not a list": Case("POST", "/v1/agreements", 422, {**VISA, "parties": "RU"}, "parties"),
    "bad party": Case("POST", "/v1/agreements", 422, {**VISA, "parties": ["RU", "XX"]}, "parties"),
    "reference to no such record": Case("POST", "/v1/meetings", 422, {**JC18, "series": "ru-eu-summit"}, "series"),
    "bad EDTF": Case("POST", f"{READMISSION}/events", 422,
                     {"type": "scope_extended", "valid": "1 June 2010", "scope": "stateless persons"}, "valid"),
    "impossible date": Case("POST", f"{READMISSION}/events", 422, {"type": "terminated", "valid": "2010-02-30"},
                            "valid"),
    "type not allowed for the kind": Case("POST", f"{READMISSION}/events", 422,
                                          {"type": "held", "valid": "2017-10-04", "place": "Brussels"}, "type"),
    "event without valid time": Case("POST", f"{READMISSION}/events", 422, {"type": "terminated"}, "valid"),
    "unknown record": Case("POST", "/v1/agreements/ru-eu-visa-waiver-agreement/events", 404,
                           {"type": "signed", "valid": "2011"}),
    "record of another kind": Case("GET", "/v1/meetings/ru-eu-readmission-agreement", 404),
    "duplicate id": Case("POST", "/v1/agreements", 409,
                         {"id": "ru-eu-readmission-agreement", "title": "Agreement on Readmission"}),
    "stale If-Match": Case("POST", f"{READMISSION}/events", 412, {"type": "terminated", "valid": "2020"},
                           headers={"If-Match": '"1"'}),
    "malformed If-Match": Case("POST", f"{READMISSION}/events", 400, {"type": "terminated", "valid": "2020"},
                               "If-Match", headers={"If-Match": "version four"}),
    "correction of no such event": Case("POST", "/v1/events/6b1f0e0e-0000-4000-8000-000000000000/corrections", 404,
                                        {"changes": {"valid": "2007"}, "reason": "typo"}),
    "non-JSON body": Case("POST", "/v1/agreements", 400, field="body", data=b'{"id": "ru-eu-visa",',
                          headers={"Content-Type": "application/json"}),
    "body not an object": Case("POST", "/v1/agreements", 422, ["ru-eu-visa-facilitation-agreement"], "body"),
    "wrong content type": Case("POST", "/v1/agreements", 415, data=b"id=ru-eu-visa-facilitation-agreement",
                               headers={"Content-Type": "application/x-www-form-urlencoded"}),
    "oversized body": Case("POST", "/v1/agreements", 413, {**VISA, "note": "x" * (MAX_BODY + 1024)}),
    "bad as_of": Case("GET", READMISSION, 400, field="as_of", params={"as_of": "2009-13-01"}),
    "as_of not a day": Case("GET", READMISSION, 400, field="as_of", params={"as_of": "2009"}),
    "bad known_at": Case("GET", READMISSION, 400, field="known_at", params={"known_at": "2019-03-01"}),
    "known_at without a zone": Case("GET", "/v1/snapshot", 400, field="known_at",
                                    params={"known_at": "2019-03-01T00:00:00"}),
    "page too large": Case("GET", "/v1/events", 400, field="limit", params={"limit": "5000"}),
    "timeline ends before it starts": Case("GET", "/v1/timeline", 400, field="to",
                                           params={"from": "2018-01-01", "to": "2017-01-01"}),
    "unknown query parameter": Case("GET", "/v1/agreements", 400, field="colour", params={"colour": "red"}),
    "unknown query parameter on the log": Case("GET", "/v1/events", 400, field="since", params={"since": "5"}),
}


def assert_problem(response: requests.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= set(problem) and problem["status"] == status
    assert problem["title"] and problem["detail"]
    if field is not None:
        assert field in problem.get("errors", {}), problem
    return problem  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", [
    name for name in CASES
])
def test_a_malformed_request_is_refused_and_writes_nothing(server: Server, name: str) -> None:
    case = CASES[name]
    head = server.get("/v1/audit/head").json()

    # The request, as an editor would send it.
    response = requests.request(
        case.method, server.url + case.path, params=case.params, timeout=30,
        json=case.body if case.data is None else None, data=case.data,
        headers={"Authorization": f"Bearer {server.tokens['editor']}", **case.headers},
    )

    # A problem document naming the field, and the log unchanged.
    assert_problem(response, case.status, case.field)
    assert server.get("/v1/audit/head").json() == head


def test_an_idempotency_key_reused_with_another_body_is_refused(server: Server) -> None:
    editor = server.tokens["editor"]
    path = "/v1/dialogues/ru-eu-migration-dialogue/events"
    key = {"Idempotency-Key": "dialogue-suspension-2022"}

    # The key is used once, for the dialogue's suspension in 2022.
    first = server.post(path, {"type": "suspended", "valid": "2022-02"}, token=editor, headers=key)
    assert first.status_code == 201, first.text
    head = server.get("/v1/audit/head").json()

    # Sent again with another body, it is refused and nothing is written.
    other = server.post(path, {"type": "suspended", "valid": "2022-03"}, token=editor, headers=key)
    assert_problem(other, 422, "Idempotency-Key")
    assert server.get("/v1/audit/head").json() == head


# Refused by the HTTP server's parser before the app runs: the same problem shape, the same status.

HOST = b"Host: registry.example\r\n"
PARSER_REFUSALS = {
    "request line over 4 KB": (b"GET /v1/events?cursor=" + b"x" * 5000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    "10 KB Authorization header": (b"GET /v1/events HTTP/1.1\r\n" + HOST + b"Authorization: Bearer " + b"a" * 10240
                                   + b"\r\n\r\n", 431),
    "too many headers": (b"GET /v1/events HTTP/1.1\r\n" + HOST + b"".join(b"X-Seen-%d: 1\r\n" % n for n in range(120))
                         + b"\r\n", 431),
    "no request line": (b"READMISSION\r\n\r\n", 400),
    "malformed method": (b"G(T /v1/events HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    "unknown HTTP version": (b"GET /v1/events HTTP/9.1\r\n" + HOST + b"\r\n", 400),
    "header name with a space": (b"GET /v1/events HTTP/1.1\r\n" + HOST + b"Last Event: 3\r\n\r\n", 400),
    "header without a colon": (b"GET /v1/events HTTP/1.1\r\n" + HOST + b"Last-Event-ID\r\n\r\n", 400),
    "obsolete line folding": (b"GET /v1/events HTTP/1.1\r\n" + HOST + b"Accept: text/csv\r\n  , application/json"
                              b"\r\n\r\n", 400),
    "unknown transfer coding": (b"POST /v1/agreements HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    "two Content-Length headers": (b"POST /v1/agreements HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                                   b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    "unmet expectation": (b"GET /v1/events HTTP/1.1\r\n" + HOST + b"Expect: 200-ok\r\n\r\n", 417),
}


def raw_exchange(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are and read the answer until the server closes: (status, headers, body)."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("name", list(PARSER_REFUSALS))
def test_a_request_the_http_parser_refuses_is_answered_as_a_problem(server: Server, name: str) -> None:
    request, status = PARSER_REFUSALS[name]

    # The bytes, sent as they are.
    answered, headers, body = raw_exchange(server, request)

    # A problem document with the parser's status, whole, and the connection closed.
    assert answered == status, body
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["content-length"]) == len(body)
    problem = json.loads(body)
    assert set(problem) == {"type", "title", "status", "detail"}
    assert problem["type"] == "about:blank" and problem["status"] == status
    assert problem["title"] and problem["detail"]


def test_an_oversized_request_line_or_header_from_an_http_client_gets_a_problem(server: Server) -> None:
    # A cursor of 5,000 characters makes the request line longer than the server takes.
    too_long = requests.get(server.url + "/v1/events", params={"cursor": "c" * 5000}, timeout=30)
    assert assert_problem(too_long, 414)["title"] == "URI Too Long"

    # So does a 10 KB bearer token for one header.
    too_large = requests.get(server.url + "/v1/events", headers={"Authorization": "Bearer " + "t" * 10240},
                             timeout=30)
    assert assert_problem(too_large, 431)["title"] == "Request Header Fields Too Large"
