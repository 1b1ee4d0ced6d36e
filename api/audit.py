"""Audit: the head of the log, verification, and export."""

from __future__ import annotations

from typing import Any

from flask import Response, request, stream_with_context
from marshmallow import fields, validate

from api.auth import check_reader
from api.common import Blueprint, registry, respond
from api.schemas import MAX_POSITION, Query
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
@blp.doc(summary="Position, hash and time of the newest event")
def head() -> Response:
    check_reader()
    return respond(registry().reader.head())


@blp.route("/verify", methods=["GET"])
@blp.arguments(VerifyQuery, location="query", as_kwargs=True)
@blp.doc(summary="Recompute the hash chain, check positions, versions and the stored views")
def verify(from_: int, projections: bool, to: int | None = None, hash: str | None = None) -> Response:
    check_reader()
    return respond(registry().auditor.verify(from_, to, hash, projections))


@blp.route("/export", methods=["GET"])
@blp.arguments(ExportQuery, location="query", as_kwargs=True)
@blp.doc(summary="The log as NDJSON, one CloudEvents-compatible object per event, streamed")
def export(after: int) -> Response:
    check_reader()
    source = request.host_url.rstrip("/")
    lines: Any = stream_with_context(export_lines(registry().database, after, source))
    return Response(lines, mimetype="application/x-ndjson")
