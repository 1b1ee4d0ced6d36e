"""Webhook subscriptions: make one, see how its deliveries go, end it. Editors and admins only."""

from __future__ import annotations

from flask import Response, url_for

from api.auth import require_writer
from api.common import Blueprint, idempotency_key, json_body, registry, respond
from api.feeds import base_url

blp = Blueprint("subscriptions", __name__, url_prefix="/v1",
                description="Webhooks: matching events POSTed as signed CloudEvents")

BODY = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "types": {"type": "array", "items": {"type": "string"}},
        "kinds": {"type": "array", "items": {"type": "string"}},
        "records": {"type": "array", "items": {"type": "string"}},
        "after": {"type": "integer", "minimum": 0, "description": "start after this position (default: now)"},
    },
}


@blp.route("/subscriptions", methods=["POST"], endpoint="subscribe")
@blp.doc(summary="Subscribe a URL to events; the response holds the signing secret, shown only once",
         requestBody={"content": {"application/json": {"schema": BODY}}})
def subscribe() -> Response:
    who = require_writer()
    created = registry().webhooks.subscribe(json_body(), who.name, base_url(), idempotency_key())
    location = url_for("subscriptions.subscription", subscription_id=created["id"])
    return respond(created, 201, {"Location": location})


@blp.route("/subscriptions", methods=["GET"], endpoint="subscriptions")
@blp.doc(summary="Your subscriptions (every one, for an admin), with their delivery status")
def subscriptions() -> Response:
    return respond({"items": registry().webhooks.list(require_writer())})


@blp.route("/subscriptions/<subscription_id>", methods=["GET"], endpoint="subscription")
@blp.doc(summary="A subscription: status, position, failures, last error")
def subscription(subscription_id: str) -> Response:
    return respond(registry().webhooks.get(subscription_id, require_writer()))


@blp.route("/subscriptions/<subscription_id>", methods=["DELETE"], endpoint="unsubscribe")
@blp.doc(summary="End a subscription: nothing more is delivered")
def unsubscribe(subscription_id: str) -> Response:
    registry().webhooks.end(subscription_id, require_writer())
    return Response(status=204)
