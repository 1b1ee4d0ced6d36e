"""Audit: the head of the log, verification, and export."""

from __future__ import annotations

from typing import Any

from flask import Response, request, stream_with_context
from marshmallow import fields, validate

from api.auth import check_reader
from api.common import READ, Blueprint, answer, problems, registry, respond
from api.schemas import MAX_POSITION, Head, Query, Verification
from registry.audit.transfer import export_lines

blp = Blueprint("audit", __name__, url_prefix="/v1/audit", description="Prove the log intact; export it")


class VerifyQuery(Query):
    from_ = fields.Integer(data_key="from", load_default=1, validate=validate.Range(min=1, max=MAX_POSITION),
                           metadata={"description": "first position to check"})
    to = fields.Integer(validate=validate.Range(min=0, max=MAX_POSITION),
                        metadata={"description": "last position (default: head)"})
    hash = fields.String(validate=validate.Regexp(r"^[0-9a-f]{64}$"),
                         metadata={"description": "the hash a kept head had at `from`: the log must extend it"})
    projections = fields.Boolean(load_default=True,
                                 metadata={"description": "over the whole log, also replay it against the views"})


class ExportQuery(Query):
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_POSITION))


@blp.route("/head", methods=["GET"])
@blp.doc(summary="Position, hash and time of the newest event",
         responses={200: answer("the head; position 0 and 64 zeros while the log is empty", Head), **problems(*READ)})
def head() -> Response:
    check_reader()
    return respond(registry().reader.head())


@blp.route("/verify", methods=["GET"])
@blp.arguments(VerifyQuery, location="query", as_kwargs=True)
@blp.doc(summary="Recompute the hash chain, check positions, versions and the stored views",
         responses={200: answer("the finding: `ok`, or the first bad position and why", Verification),
                    **problems(400, *READ, 503)})
def verify(from_: int, projections: bool, to: int | None = None, hash: str | None = None) -> Response:
    check_reader()
    return respond(registry().auditor.verify(from_, to, hash, projections))


@blp.route("/export", methods=["GET"])
@blp.arguments(ExportQuery, location="query", as_kwargs=True)
@blp.doc(summary="The log as NDJSON, one CloudEvents-compatible object per event, streamed",
         responses={200: answer("one CloudEvents 1.0 JSON object a line, its `data` an event envelope",
                                {"type": "string"}, "application/x-ndjson"),
                    **problems(400, *READ)})
def export(after: int) -> Response:
    check_reader()
    source = request.host_url.rstrip("/")
    lines: Any = stream_with_context(export_lines(registry().database, after, source))
    return Response(lines, mimetype="application/x-ndjson")
