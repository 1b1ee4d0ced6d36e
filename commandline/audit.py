"""`registry audit key|checkpoint|watch|check` and `registry verify --file --checkpoint --key`.

Exit codes: 0 all checks out, 1 a finding (a bad signature, a rewritten or forked log,
an event not as signed), 2 a usage error or an unreachable registry.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from commandline.main import CommandError, _registry
from registry.audit.proofs import (
    Checkpoint,
    ProofError,
    Verifier,
    envelope_hash,
    leaf_hash,
    open_checkpoint,
    parse_vkey,
    verify_consistency,
    verify_export,
    verify_inclusion,
)

TIMEOUT = 30  # seconds for each request to the registry


def install(sub: Any, common: argparse.ArgumentParser, nested: argparse.ArgumentParser) -> None:
    """Add the `audit` command, and the offline options of `verify`, to the command line."""
    audit = sub.add_parser("audit", parents=[common], help="the verifiable log: key, checkpoints, proofs")
    actions = audit.add_subparsers(dest="action", required=True)
    actions.add_parser("key", parents=[nested], help="print this deployment's verifier key")
    actions.add_parser("checkpoint", parents=[nested], help="print the signed checkpoint of the store's log")
    watch = actions.add_parser("watch", parents=[nested],
                               help="check a registry's checkpoint extends the one kept in --state, then keep it")
    check = actions.add_parser("check", parents=[nested],
                               help="check one event: its hash and its inclusion in the signed checkpoint")
    for remote in (watch, check):
        remote.add_argument("--url", required=True, help="the registry's base URL")
        remote.add_argument("--key", required=True, help="the verifier key (text, or a file holding it)")
    watch.add_argument("--state", required=True, help="the file keeping the last checkpoint seen")
    check.add_argument("--event", required=True, help="the event id")
    audit.set_defaults(run=cmd_audit)

    verify = sub.choices["verify"]
    offline = verify.add_argument_group("an export, offline (no store needed)")
    offline.add_argument("--file", help="an NDJSON export of the whole log")
    offline.add_argument("--checkpoint", help="a signed checkpoint of the same size")
    offline.add_argument("--key", help="the verifier key (text, or a file holding it)")
    store_verify = verify.get_default("run")

    def run_verify(args: argparse.Namespace) -> int:
        if args.file:
            return cmd_verify_export(args)
        if args.checkpoint or args.key:
            raise CommandError("--checkpoint and --key check an export: give it with --file")
        return int(store_verify(args))

    verify.set_defaults(run=run_verify)


def cmd_audit(args: argparse.Namespace) -> int:
    if args.action == "key":
        print(_signer(args).verifier.vkey())
    elif args.action == "checkpoint":
        registry = _registry(args)
        sys.stdout.write(_signer(args).checkpoint(registry.database))
    elif args.action == "watch":
        return watch(args.url, _verifier(args.key), args.state)
    else:
        return check(args.url, _verifier(args.key), args.event)
    return 0


def watch(url: str, verifier: Verifier, state: str) -> int:
    note = _get(url, "/v1/audit/checkpoint")
    try:
        new = open_checkpoint(note, verifier)
    except ProofError as error:
        print(f"NOT OK: the registry's checkpoint does not verify: {error}")
        return 1
    kept = _kept(state, verifier)
    if kept is None:
        _keep(state, note)
        print(f"trusting the first checkpoint seen: size {new.size}; kept in {state}")
        return 0
    if new.size < kept.size:
        print(f"NOT OK: the log shrank from size {kept.size} to {new.size}")
        return 1
    if kept.size > 0:
        proof = json.loads(_get(url, f"/v1/audit/proof/consistency?from={kept.size}&to={new.size}"))
        try:
            verify_consistency(kept.size, new.size, kept.root, new.root, [bytes.fromhex(h) for h in proof["hashes"]])
        except (ProofError, ValueError, KeyError, TypeError) as error:
            print(f"NOT OK: the log at size {new.size} does not extend the kept checkpoint of size {kept.size}"
                  f" (rewritten or forked): {error}")
            return 1
    _keep(state, note)
    print(f"ok: size {new.size} extends the kept checkpoint of size {kept.size}")
    return 0


def check(url: str, verifier: Verifier, event_id: str) -> int:
    envelope = json.loads(_get(url, f"/v1/events/{urllib.parse.quote(event_id, safe='')}"))
    position = envelope.get("position")
    if envelope_hash(envelope) != envelope.get("hash"):
        print(f"NOT OK: event {event_id} (position {position}) does not match its hash")
        return 1
    try:
        checkpoint = open_checkpoint(_get(url, "/v1/audit/checkpoint"), verifier)
        proof = json.loads(_get(url, f"/v1/audit/proof/inclusion?position={position}&size={checkpoint.size}"))
        leaf = leaf_hash(bytes.fromhex(envelope["hash"]))
        if proof["leaf_hash"] != leaf.hex():
            raise ProofError("the proof is for another leaf")
        verify_inclusion(position - 1, checkpoint.size, leaf, [bytes.fromhex(h) for h in proof["hashes"]],
                         checkpoint.root)
    except (ProofError, ValueError, KeyError, TypeError) as error:
        print(f"NOT OK: event {event_id} (position {position}) is not in the signed log: {error}")
        return 1
    print(f"ok: event {event_id} at position {position} matches its hash {envelope['hash']}"
          f" and is in the signed checkpoint of size {checkpoint.size}")
    return 0


def cmd_verify_export(args: argparse.Namespace) -> int:
    if not args.checkpoint or not args.key:
        raise CommandError("--file needs --checkpoint and --key")
    verifier = _verifier(args.key)
    try:
        note = _read(args.checkpoint)
        checkpoint: Checkpoint = open_checkpoint(note, verifier)
    except ProofError as error:
        print(f"NOT OK: the checkpoint does not verify: {error}")
        return 1
    try:
        with open(args.file, encoding="utf-8") as lines:
            size = verify_export(lines, checkpoint)
    except OSError as error:
        raise CommandError(f"cannot read {args.file}: {error.strerror}") from error
    except ProofError as error:
        where = f"first bad position {error.position}: " if error.position else ""
        print(f"NOT OK: {where}{error}")
        return 1
    print(f"ok: {size} events verified; the export is the log of the signed checkpoint (size {size})")
    return 0


# Helpers

def _signer(args: argparse.Namespace) -> Any:
    from commandline.main import settings_of
    from registry.audit.checkpoints import Signer, SigningKeyError

    try:
        return Signer.of(settings_of(args))
    except SigningKeyError as error:
        raise CommandError(str(error)) from error


def _verifier(text: str) -> Verifier:
    if os.path.isfile(text):
        text = _read(text)
    try:
        return parse_vkey(text)
    except ProofError as error:
        raise CommandError(f"--key: {error}") from error


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"cannot read {path}: {error}") from error


def _get(url: str, path: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise CommandError(f"--url {url!r} must start with http:// or https://")
    address = url.rstrip("/") + path
    try:
        with urllib.request.urlopen(address, timeout=TIMEOUT) as response:  # noqa: S310 (http and https only)
            return str(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        raise CommandError(f"{address}: HTTP {error.code}") from error
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as error:
        raise CommandError(f"{address}: unreachable: {getattr(error, 'reason', error)}") from error


def _kept(state: str, verifier: Verifier) -> Checkpoint | None:
    if not os.path.exists(state):
        return None
    try:
        return open_checkpoint(_read(state), verifier)
    except ProofError as error:
        raise CommandError(f"--state {state} holds no checkpoint signed by this key: {error}") from error


def _keep(state: str, note: str) -> None:
    """Replace the kept checkpoint atomically (a crash leaves the old one or the new one)."""
    temporary = f"{state}.{os.getpid()}.new"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(note)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, state)
    except OSError as error:
        raise CommandError(f"cannot keep the checkpoint in {state}: {error.strerror}") from error
