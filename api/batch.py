"""Batch writes: many writes in one transaction, all or nothing."""

from __future__ import annotations

from flask import Response

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
from api.schemas import BatchResult, body
from events import BatchInput

blp = Blueprint("batch", __name__, url_prefix="/v1", description="Batch writes")


@blp.route("/batch", methods=["POST"])
@blp.doc(summary="Store up to 1,000 writes in one transaction, in order, at consecutive positions, or none",
         requestBody=body(BatchInput), parameters=[IDEMPOTENCY_HEADER],
         responses={201: answer("each write's result; a failing write is named in `errors.writes` by its index",
                                BatchResult),
                    **problems(*WRITE, 404, 409, 412)})
def batch() -> Response:
    who = require_writer()
    return respond(registry().batch(json_body(), who.name, idempotency_key()), 201)
