"""Audit: the head of the log, verification, export, and the verifiable log's key, checkpoints and proofs."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request, stream_with_context
from marshmallow import fields, validate

from api.auth import check_reader
from api.common import READ, Blueprint, answer, problems, registry, respond
from api.schemas import MAX_POSITION, Answer, Head, Query, Verification
from registry.audit.checkpoints import Signer, consistency, inclusion
from registry.audit.transfer import export_lines

blp = Blueprint("audit", __name__, url_prefix="/v1/audit", description="Prove the log intact; export it")


class VerifyQuery(Query):
    from_ = fields.Integer(data_key="from", validate=validate.Range(min=1, max=MAX_POSITION),
                           metadata={"description": "first position to check (default 1); needed with `hash`"})
    to = fields.Integer(validate=validate.Range(min=1, max=MAX_POSITION),
                        metadata={"description": "last position (default: head); not before `from`"})
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
def verify(projections: bool, from_: int | None = None, to: int | None = None, hash: str | None = None) -> Response:
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


# The verifiable log (SPEC section 8): verifier key, signed checkpoint, Merkle proofs

class InclusionQuery(Query):
    position = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_POSITION),
                              metadata={"description": "the event's position in the log"})
    size = fields.Integer(validate=validate.Range(min=1, max=MAX_POSITION),
                          metadata={"description": "the tree size to prove against (default: current)"})


class ConsistencyQuery(Query):
    from_ = fields.Integer(data_key="from", required=True, validate=validate.Range(min=1, max=MAX_POSITION),
                           metadata={"description": "the older tree size"})
    to = fields.Integer(validate=validate.Range(min=1, max=MAX_POSITION),
                        metadata={"description": "the newer tree size (default: current)"})


HEX = validate.Regexp(r"^[0-9a-f]{64}$")


class InclusionProof(Answer):
    position = fields.Integer(required=True)
    size = fields.Integer(required=True)
    leaf_hash = fields.String(required=True, validate=HEX, metadata={"description": "SHA-256(0x00 ‖ event hash)"})
    hashes = fields.List(fields.String(validate=HEX), required=True,
                         metadata={"description": "RFC 9162 PATH, innermost sibling first"})


class ConsistencyProof(Answer):
    from_ = fields.Integer(data_key="from", required=True)
    to = fields.Integer(required=True)
    hashes = fields.List(fields.String(validate=HEX), required=True, metadata={"description": "RFC 9162 PROOF"})


def signer() -> Signer:
    """The deployment's checkpoint signer, loaded once per process."""
    loaded = current_app.extensions.get("checkpoint_signer")
    if loaded is None:
        loaded = current_app.extensions["checkpoint_signer"] = Signer.of(current_app.extensions["settings"])
    return loaded  # type: ignore[no-any-return]


def text(body: str) -> Response:
    return Response(body, mimetype="text/plain")  # Flask adds charset=utf-8


@blp.route("/key", methods=["GET"])
@blp.doc(summary="The verifier key of signed checkpoints (C2SP vkey), as text",
         responses={200: answer("`<origin>+<key id>+<base64(0x01 ‖ public key)>`", {"type": "string"}, "text/plain"),
                    **problems(*READ)})
def key() -> Response:
    check_reader()
    return text(signer().verifier.vkey() + "\n")


@blp.route("/checkpoint", methods=["GET"])
@blp.doc(summary="The signed checkpoint of the log's Merkle tree (C2SP tlog-checkpoint), as text",
         responses={200: answer("origin, tree size, base64 root hash, a blank line, the signature line",
                                {"type": "string"}, "text/plain"),
                    **problems(*READ)})
def checkpoint() -> Response:
    check_reader()
    return text(signer().checkpoint(registry().database))


@blp.route("/proof/inclusion", methods=["GET"])
@blp.arguments(InclusionQuery, location="query", as_kwargs=True)
@blp.doc(summary="RFC 9162 inclusion proof of the event at `position` in the tree of `size`",
         responses={200: answer("the proof; hashes in hex", InclusionProof), **problems(400, *READ)})
def inclusion_proof(position: int, size: int | None = None) -> Response:
    check_reader()
    return respond(inclusion(registry().database, position, size))


@blp.route("/proof/consistency", methods=["GET"])
@blp.arguments(ConsistencyQuery, location="query", as_kwargs=True)
@blp.doc(summary="RFC 9162 consistency proof between the trees of sizes `from` and `to`",
         responses={200: answer("the proof; hashes in hex", ConsistencyProof), **problems(400, *READ)})
def consistency_proof(from_: int, to: int | None = None) -> Response:
    check_reader()
    return respond(consistency(registry().database, from_, to))
