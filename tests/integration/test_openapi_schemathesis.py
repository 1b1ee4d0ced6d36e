"""Schemathesis against the real app on SQLite and PostgreSQL: no answer breaks the document, none is a 5xx.

Requests come from the OpenAPI document (valid and invalid ones), sent with an editor
token to a seeded store, so writes are exercised too. Generation is derandomized and
bounded, so a run is the same every time and takes about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from events import CATALOGUE
from registry.seed import seed

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture
def app(store_url: str) -> Iterator[Flask]:
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False})
    registry = app.extensions["registry"]
    seed(registry)
    app.config["SCHEMATHESIS_TOKEN"] = registry.tokens.create("schemathesis", "editor")
    # An SSE answer never ends while the server runs: with the log follower stopped (as when
    # the server stops), each stream answers its opening lines and ends, so it can be checked.
    registry.feed.close()
    yield app
    registry.close()


EXAMPLES = 4  # per operation, generation mode and path: under a minute for both stores on a busy machine


def test_every_answer_matches_the_document(app: Flask) -> None:
    token = app.config["SCHEMATHESIS_TOKEN"]
    schema = schemathesis.openapi.from_wsgi(
        "/openapi.json", app, config=schemathesis.Config.from_dict({"headers": {"Authorization": f"Bearer {token}"}}))
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = app.test_client().get("/openapi.json").get_json()["paths"]
    assert len(operations) == sum(m in ("get", "post", "delete") for ms in paths.values() for m in ms)  # all of them
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in _real_ids(app, operation.path):
                failures += _findings(operation, mode, path_parameters)
    assert not failures, "\n\n".join(failures)


def _real_ids(app: Flask, path: str) -> list[dict[str, str] | None]:
    """Generated path parameters (mostly unknown ids), and the ids of seeded records and events."""
    client = app.test_client()
    if "{record_id}" in path:
        collection = path.split("/")[2]
        record_id = client.get(f"/v1/{collection}?limit=1").get_json()["items"][0]["id"]
        return [None, {"record_id": record_id}]
    if "{event_id}" in path:
        event = client.get("/v1/events?type=established&limit=1").get_json()["items"][0]
        return [None, {"event_id": event["id"]}]
    return [None]


def _findings(operation: Any, mode: GenerationMode, path_parameters: dict[str, str] | None) -> list[str]:
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def answer_matches(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    try:
        answer_matches()
    except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE
    except BaseExceptionGroup as found:  # schemathesis' failures, one group per operation
        return [f"{operation.label} ({mode.value}, {path_parameters}): {found}"]
    return []


def test_successful_writes_match_the_document(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated bodies rarely pass every check, so each write that succeeds is also made once on purpose."""
    # The subscriber below is on loopback, as with REGISTRY_WEBHOOK_ALLOW_PRIVATE=1.
    monkeypatch.setattr(app.extensions["registry"].webhooks, "allow_private", True)
    editor = {"Authorization": f"Bearer {app.config['SCHEMATHESIS_TOKEN']}"}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    client = app.test_client()

    def made(method: str, path: str, status: int, body: Any = None, **path_parameters: str) -> Any:
        sent = {} if body is None else {"body": body, "media_type": "application/json"}
        case = schema[path][method].Case(path_parameters=path_parameters, **sent)
        response = case.call_and_validate(headers=editor, checks=CHECKS)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    # One world event for each kind, on a seeded record, with no fields beyond its type and valid time.
    for kind in CATALOGUE:
        record_id = client.get(f"/v1/{kind.collection}?limit=1").get_json()["items"][0]["id"]
        bare = next(name for name, t in kind.events.items()
                    if not any(field.required for field in t.schema._declared_fields.values()))
        envelope = made("POST", f"/v1/{kind.collection}/{{record_id}}/events", 201,
                        {"type": bare, "valid": "2019-10", "note": "made by the conformance test"}, record_id=record_id)
        made("GET", "/v1/events/{event_id}", 200, event_id=envelope["id"])
    # A correction and a retraction of the last of them; a registration.
    made("POST", "/v1/events/{event_id}/corrections", 201, {"changes": {"valid": "2019-11"}, "reason": "moved"},
         event_id=envelope["id"])
    made("POST", "/v1/events/{event_id}/retractions", 201, {"reason": "entered in error"}, event_id=envelope["id"])
    made("POST", "/v1/organisations", 201, {"id": "conformance-test-agency", "name": "Conformance Test Agency"})
    # A webhook subscription: made, seen, listed, ended.
    created = made("POST", "/v1/subscriptions", 201, {"url": "http://127.0.0.1:9/hook", "kinds": ["meeting"]})
    made("GET", "/v1/subscriptions/{subscription_id}", 200, subscription_id=created["id"])
    made("GET", "/v1/subscriptions", 200)
    made("DELETE", "/v1/subscriptions/{subscription_id}", 204, subscription_id=created["id"])
