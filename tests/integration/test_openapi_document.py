"""The OpenAPI document shows the schemas that validate requests, and every error as problem+json.

Request bodies in /openapi.json must be the validating schemas themselves: the
catalogue's (events/) for registrations, appends, corrections and retractions, and
registry/feeds/webhooks.py's for subscriptions. A field added to a schema appears in
the document, or this test fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from marshmallow import Schema

from api import create_app
from events import CATALOGUE, CorrectionInput, EnvelopeInput, RetractionInput
from registry.feeds.webhooks import PUBLIC_FIELDS, SubscriptionBody

README = Path(__file__).resolve().parents[2] / "README.md"
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
COMMON = {"sources", "note"}  # every event may carry them (EnvelopeInput)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = create_app({"DATABASE": str(Path(tmp_path_factory.mktemp("doc")) / "registry.sqlite"),
                      "FOLLOW_LOG": False})
    yield app
    app.extensions["registry"].close()


@pytest.fixture(scope="module")
def document(app: Flask) -> Any:
    return app.test_client().get("/openapi.json").get_json()


def component(document: Any, reference: dict[str, str]) -> Any:
    return document["components"]["schemas"][reference["$ref"].rsplit("/", 1)[1]]


def request_schema(document: Any, path: str) -> Any:
    body = document["paths"][path]["post"]["requestBody"]
    assert body["required"] is True and list(body["content"]) == ["application/json"]
    return body["content"]["application/json"]["schema"]


def fields_of(schema: type[Schema]) -> tuple[set[str], set[str]]:
    """(every field, the required ones) of a validating schema."""
    declared = schema._declared_fields
    return set(declared), {name for name, field in declared.items() if field.required}


def shown(documented: Any) -> tuple[set[str], set[str]]:
    return set(documented["properties"]), set(documented.get("required", []))


@pytest.mark.parametrize("kind", [kind.name for kind in CATALOGUE])
def test_a_registration_body_is_the_kinds_registered_schema_with_its_id(document: Any, kind: str) -> None:
    declared, required = fields_of(CATALOGUE.kinds[kind].registered)
    documented = component(document, request_schema(document, f"/v1/{CATALOGUE.kinds[kind].collection}"))
    assert shown(documented) == (declared | COMMON | {"id"}, required | {"id"})
    assert documented["additionalProperties"] is False  # unknown fields are refused (Meta.unknown = RAISE)


@pytest.mark.parametrize("kind", [kind.name for kind in CATALOGUE])
def test_an_append_body_is_one_schema_per_event_type_chosen_by_type(document: Any, kind: str) -> None:
    collection = CATALOGUE.kinds[kind].collection
    body = request_schema(document, f"/v1/{collection}/{{record_id}}/events")
    mapping = body["discriminator"]["mapping"]
    assert body["discriminator"]["propertyName"] == "type"
    assert set(mapping) == set(CATALOGUE.kinds[kind].events)
    assert sorted(m["$ref"] for m in body["oneOf"]) == sorted(mapping.values())
    for name, event_type in CATALOGUE.kinds[kind].events.items():
        documented = component(document, {"$ref": mapping[name]})
        declared, required = fields_of(event_type.schema)
        assert shown(documented) == (declared | COMMON | {"type", "valid"}, required | {"type", "valid"}), name
        assert documented["properties"]["type"]["enum"] == [name]
        for field in declared:  # the type's own field, as the type's schema declares it
            assert documented["properties"][field] == component(
                document, {"$ref": mapping[name]})["properties"][field]
    envelope, _ = fields_of(EnvelopeInput)
    assert envelope == COMMON | {"type", "valid"}


@pytest.mark.parametrize(("path", "schema"), [
    ("/v1/events/{event_id}/corrections", CorrectionInput),
    ("/v1/events/{event_id}/retractions", RetractionInput),
    ("/v1/subscriptions", SubscriptionBody),
])
def test_corrections_retractions_and_subscriptions_show_their_validating_schema(
        document: Any, path: str, schema: type[Schema]) -> None:
    reference = request_schema(document, path)
    assert reference["$ref"].endswith("/" + schema.__name__.removesuffix("Schema"))
    assert shown(component(document, reference)) == fields_of(schema)


def test_a_subscription_answer_shows_what_a_subscriber_sees(document: Any) -> None:
    subscription = document["components"]["schemas"]["Subscription"]
    assert list(subscription["properties"]) == list(PUBLIC_FIELDS)
    created = document["paths"]["/v1/subscriptions"]["post"]["responses"]["201"]["content"]["application/json"]
    assert "secret" in component(document, created["schema"])["required"]


def operations(document: Any) -> list[tuple[str, str, Any]]:
    return [(path, method, operation) for path, methods in document["paths"].items()
            for method, operation in methods.items() if method in ("get", "post", "delete")]


def test_every_query_parameter_a_view_takes_is_documented(app: Flask, document: Any) -> None:
    # Each operation's query schema (flask-smorest `arguments`), against the parameters it documents,
    # headers given with `doc` included.
    checked = set()
    for rule in app.url_map.iter_rules():
        arguments = getattr(app.view_functions[rule.endpoint], "_apidoc", {}).get("arguments", {})
        schemas = [parameter["schema"] for parameter in arguments.get("parameters", []) if parameter["in"] == "query"]
        if not schemas:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            taken = {field.data_key or name for schema in schemas for name, field in schema.fields.items()}
            operation = document["paths"][path][method.lower()]
            documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            assert documented == taken, (method, path, sorted(taken - documented))
            checked.add(path)
    assert {"/v1/stream", "/v1/events", "/v1/timeline", "/v1/agreements"} <= checked


def test_the_event_stream_documents_its_filters_and_last_event_id(document: Any) -> None:
    parameters = document["paths"]["/v1/stream"]["get"]["parameters"]
    assert [(p["in"], p["name"]) for p in parameters] == [
        ("query", "after"), ("query", "type"), ("query", "kind"), ("query", "record"), ("header", "Last-Event-ID")]
    after = parameters[0]
    assert after["schema"]["type"] == "integer" and after["schema"]["minimum"] == 0 and after["description"]
    assert "signed" in parameters[1]["schema"]["enum"] and "agreement" in parameters[2]["schema"]["enum"]
    assert parameters[3]["schema"]["pattern"] == "^[a-z0-9][a-z0-9-]{1,79}$"


def test_every_error_is_documented_as_a_problem(document: Any) -> None:
    for path, method, operation in operations(document):
        responses = operation["responses"]
        where = f"{method.upper()} {path}"
        assert "default" not in responses, where
        errors = {int(status) for status in responses if status.startswith("4") or status.startswith("5")}
        for status in errors:
            assert responses[str(status)]["content"] == PROBLEM, (where, status)
        expected = set()
        if method != "get" or path.startswith("/v1/subscriptions"):
            expected |= {401, 403}
        if "requestBody" in operation:
            expected |= {400, 413, 415, 422, 503}
        if any(p["in"] == "query" for p in operation.get("parameters", [])):
            expected.add(400)
        if "{" in path:
            expected.add(404)
        if path.endswith("/events") and method == "post":
            expected |= {409, 412}
        if method == "get" and path not in ("/healthz", "/readyz") and not path.startswith("/v1/subscriptions"):
            expected.add(401)  # REGISTRY_READ_AUTH=on
        assert expected <= errors, (where, sorted(expected - errors))
    assert "Error" not in document["components"]["schemas"]  # flask-smorest's own error shape, never sent


def test_every_operation_says_whether_it_takes_a_bearer_token(document: Any) -> None:
    writer, optional = [{"bearer": []}], [{}, {"bearer": []}]
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        if method != "get" or path.startswith("/v1/subscriptions"):
            assert operation["security"] == writer, where
        elif path in ("/healthz", "/readyz"):
            assert "security" not in operation, where
        else:
            assert operation["security"] == optional, where  # needed only with REGISTRY_READ_AUTH=on
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}


def test_every_success_names_its_media_type_and_json_its_schema(document: Any) -> None:
    media: dict[str, str] = {}
    csv: set[str] = set()
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("2") or status == "204":
                continue
            contents = dict(response["content"])
            if contents.pop("text/csv", None) is not None:  # list-shaped answers come as CSV too
                csv.add(f"{method.upper()} {path}")
            (media_type, content), = contents.items()
            media[f"{method.upper()} {path}"] = media_type
            if media_type == "application/json":
                assert set(content["schema"]) == {"$ref"}, (path, status)
    lists = {f"GET /v1/{kind.collection}" for kind in CATALOGUE}
    assert lists | {"GET /v1/timeline", "GET /v1/events", "GET /v1/changes", "GET /v1/search"} == csv
    assert media["GET /v1/stream"] == "text/event-stream"
    assert media["GET /v1/audit/export"] == "application/x-ndjson"
    assert media["GET /v1/feed.atom"] == "application/atom+xml"
    assert media["GET /v1/meetings.ics"] == "text/calendar"
    assert media["GET /metrics"] == "text/plain"
    assert media["POST /v1/agreements/{record_id}/events"] == "application/json"


@pytest.mark.parametrize("entry", ["TimelineEntry", "HistoryEntry"])
def test_the_readme_names_every_field_timeline_and_history_items_add_to_the_envelope(
        document: Any, entry: str) -> None:
    schemas = document["components"]["schemas"]
    added = set(schemas[entry]["properties"]) - set(schemas["Envelope"]["properties"])
    assert "effective" in added
    readme = README.read_text()
    assert not {name for name in added if f"`{name}`" not in readme}, "fields the README does not describe"
    assert "`{valid, valid_lower, valid_upper, data}`" in readme  # what `effective` holds
