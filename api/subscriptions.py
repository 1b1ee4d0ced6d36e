"""Webhook subscriptions: make one, see how its deliveries go, end it. Editors and admins only."""

from __future__ import annotations

from flask import Response, url_for

from api.auth import require_writer
from api.common import (
    IDEMPOTENCY_HEADER,
    WRITE,
    Blueprint,
    answer,
    idempotency_key,
    json_body,
    problems,
    registry,
    respond,
)
from api.feeds import base_url
from api.schemas import NewSubscription, Subscription, Subscriptions, body
from registry.feeds.webhooks import SubscriptionBody

blp = Blueprint("subscriptions", __name__, url_prefix="/v1",
                description="Webhooks: matching events POSTed as signed CloudEvents")
WRITER = (401, 403)  # every subscription call needs an editor or admin token
READING = "reading subscriptions needs"  # reads too, so their refusals say so (not "writes need")


@blp.route("/subscriptions", methods=["POST"], endpoint="subscribe")
@blp.doc(summary="Subscribe a URL to events; the response holds the signing secret, shown only once",
         requestBody=body(SubscriptionBody), parameters=[IDEMPOTENCY_HEADER],
         responses={201: answer("the subscription and its secret", NewSubscription,
                                headers={"Location": "the subscription's URL"}),
                    **problems(*WRITE)})
def subscribe() -> Response:
    who = require_writer()
    created = registry().webhooks.subscribe(json_body(), who.name, base_url(), idempotency_key())
    location = url_for("subscriptions.subscription", subscription_id=created["id"])
    return respond(created, 201, {"Location": location})


@blp.route("/subscriptions", methods=["GET"], endpoint="subscriptions")
@blp.doc(summary="Your subscriptions (every one, for an admin), with their delivery status",
         responses={200: answer("the subscriptions", Subscriptions), **problems(*WRITER)})
def subscriptions() -> Response:
    return respond({"items": registry().webhooks.list(require_writer(READING))})


@blp.route("/subscriptions/<subscription_id>", methods=["GET"], endpoint="subscription")
@blp.doc(summary="A subscription: status, position, failures, last error",
         responses={200: answer("the subscription", Subscription), **problems(*WRITER, 404)})
def subscription(subscription_id: str) -> Response:
    return respond(registry().webhooks.get(subscription_id, require_writer(READING)))


@blp.route("/subscriptions/<subscription_id>", methods=["DELETE"], endpoint="unsubscribe")
@blp.doc(summary="End a subscription: nothing more is delivered",
         responses={204: {"description": "ended (ending it again is harmless)"}, **problems(*WRITER, 404)})
def unsubscribe(subscription_id: str) -> Response:
    registry().webhooks.end(subscription_id, require_writer())
    return Response(status=204)
