"""Batch writes: many writes in one transaction, all or nothing."""

from __future__ import annotations

from flask import Response

from api.auth import require_writer
from api.common import Blueprint, idempotency_key, json_body, registry, respond
from api.schemas import Problem
from events import BatchInput

blp = Blueprint("batch", __name__, url_prefix="/v1", description="Batch writes")
PROBLEMS = {"content": {"application/problem+json": {"schema": Problem}}}


@blp.route("/batch", methods=["POST"])
@blp.doc(summary="Store up to 1,000 writes in one transaction, in order, or none of them",
         requestBody={"content": {"application/json": {"schema": BatchInput}}},
         responses={201: {"description": "`{items}`: each write's result as its single call gives it"},
                    404: PROBLEMS, 409: PROBLEMS, 412: PROBLEMS, 422: PROBLEMS})
def batch() -> Response:
    who = require_writer()
    return respond(registry().batch(json_body(), who.name, idempotency_key()), 201)
