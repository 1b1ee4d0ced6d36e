"""Checking the registry's log from outside: Merkle proofs, signed notes, checkpoints.

Everything an auditor needs, and nothing else: no storage, no network. It follows
RFC 9162 (section 2.1: tree hashes, inclusion and consistency proofs, and their
verification algorithms), C2SP signed-note (Ed25519 signatures, verifier keys) and
C2SP tlog-checkpoint (the signed body: origin, tree size, root hash).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01  # the signed-note signature type of Ed25519 keys
EM_DASH = "\u2014"
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof, note, checkpoint, key or export that does not check out (the message says why;
    `position` names the first bad event of an export)."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


# Events (SPEC section 6): each event's hash covers its envelope, chained through `prev_hash`

GENESIS = "0" * 64


def envelope_hash(envelope: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over the canonical JSON of the envelope without `hash`."""
    body = {k: v for k, v in envelope.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# Tree hashes (RFC 9162 section 2.1.1)

def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaf_hashes: Iterable[bytes]) -> tuple[int, bytes]:
    """`(size, root)` of the tree over leaf hashes read once, in order, in O(log n) memory."""
    stack: list[tuple[int, bytes]] = []  # (height, hash) of perfect subtrees, left to right
    size = 0
    for leaf in leaf_hashes:
        size += 1
        height, value = 0, leaf
        while stack and stack[-1][0] == height:
            value = node_hash(stack.pop()[1], value)
            height += 1
        stack.append((height, value))
    if not stack:
        return 0, EMPTY_ROOT
    value = stack.pop()[1]
    while stack:
        value = node_hash(stack.pop()[1], value)
    return size, value


# Proof verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2)

def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that the leaf hash `leaf` is leaf `index` of the tree of `size` with `root`.
    Raises ProofError."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is too short")
    if r != root:
        raise ProofError(f"leaf {index} is not in the tree of size {size} with that root")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of `size2` with `root2` extends the tree of `size1` with `root1`.
    Raises ProofError."""
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof goes from size {size1} to size {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError(f"two different roots for the same size {size1}")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is the first node of the path
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn % 2 == 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != root1 or sr != root2:
        raise ProofError(f"the tree of size {size2} does not extend the tree of size {size1}")


# Signed notes (C2SP signed-note)

NAME = re.compile(r"[^\s+]+")  # a key name: no spaces, no plus signs, not empty


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id: the first bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 verifier key: who signs (`name`) and with which public key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def vkey(self) -> str:
        """The C2SP verifier key text `<name>+<hex key id>+<base64(0x01 ‖ public key)>`."""
        encoded = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verifies(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_vkey(text: str) -> Verifier:
    """A verifier key from its text. Raises ProofError."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not NAME.fullmatch(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise ProofError("a verifier key reads <name>+<8 hex digits>+<base64 key>")
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except binascii.Error as error:
        raise ProofError("the verifier key's key is not base64") from error
    if len(raw) != 33 or raw[0] != ED25519:
        raise ProofError("the verifier key is not an Ed25519 key")
    verifier = Verifier(parts[0], raw[1:])
    if verifier.key_id.hex() != parts[1]:
        raise ProofError("the verifier key's id does not match its name and key")
    return verifier


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: `text` (ending with a newline), a blank line and one signature line."""
    if not text.endswith("\n") or "\n\n" in text:
        raise ProofError("a note's text ends with one newline and holds no blank line")
    public = private_key.public_key().public_bytes_raw()
    signature = private_key.sign(text.encode())
    encoded = base64.b64encode(key_id(name, public) + signature).decode()
    return f"{text}\n{EM_DASH} {name} {encoded}\n"


def open_note(note: str | bytes, verifier: Verifier) -> str:
    """The text of a note that `verifier` signed. Signatures by other keys are ignored, but
    there must be one by this key, and it must verify. Raises ProofError."""
    if isinstance(note, bytes):
        try:
            note = note.decode()
        except UnicodeDecodeError as error:
            raise ProofError("the note is not UTF-8") from error
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise ProofError("the note has no signature block")
    text, block = note[: split + 1], note[split + 2:]
    found = False
    for line in block.removesuffix("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH or not NAME.fullmatch(parts[1]):
            raise ProofError(f"malformed signature line {line!r}")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error as error:
            raise ProofError(f"the signature of {parts[1]!r} is not base64") from error
        if len(raw) < 5 or parts[1] != verifier.name or raw[:4] != verifier.key_id:
            continue  # another key's signature
        if not verifier.verifies(text.encode(), raw[4:]):
            raise ProofError(f"the signature of {verifier.name!r} does not verify")
        found = True
    if not found:
        raise ProofError(f"the note carries no signature by {verifier.vkey()}")
    return text


# Checkpoints (C2SP tlog-checkpoint)

@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint in a note's text (extension lines are allowed and ignored). Raises ProofError."""
    lines = text.removesuffix("\n").split("\n")
    if len(lines) < 3 or not lines[0] or not re.fullmatch(r"0|[1-9][0-9]{0,18}", lines[1]):
        raise ProofError("a checkpoint reads <origin>, <tree size>, <base64 root hash>")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error as error:
        raise ProofError("the checkpoint's root hash is not base64") from error
    if len(root) != 32:
        raise ProofError("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(lines[0], int(lines[1]), root)


def open_checkpoint(note: str | bytes, verifier: Verifier) -> Checkpoint:
    """The checkpoint in a note signed by `verifier`, whose origin is the key's name. Raises ProofError."""
    checkpoint = parse_checkpoint(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise ProofError(f"the checkpoint's origin {checkpoint.origin!r} is not the key's {verifier.name!r}")
    return checkpoint


# An export, offline (NDJSON lines, each an envelope or a CloudEvents object carrying one)

def export_envelopes(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise ProofError(f"line {number} is not JSON") from None
        envelope = item.get("data") if isinstance(item, dict) and "specversion" in item else item
        if not isinstance(envelope, dict) or not isinstance(envelope.get("position"), int) or not all(
                isinstance(envelope.get(k), str) for k in ("hash", "prev_hash")):
            raise ProofError(f"line {number} holds no event envelope")
        yield envelope


def verify_export(lines: Iterable[str], checkpoint: Checkpoint) -> int:
    """Check a whole export (from position 1) against a checkpoint of the same size: every
    hash, the chain, and the Merkle root. Returns the number of events. Raises ProofError."""
    previous = GENESIS

    def leaves() -> Iterator[bytes]:
        nonlocal previous
        for expected, envelope in enumerate(export_envelopes(lines), start=1):
            position = envelope["position"]
            if position != expected:
                raise ProofError(f"position {position} where {expected} was due"
                                 + (" (an export from position 1 is needed)" if expected == 1 else ""), expected)
            if envelope["prev_hash"] != previous:
                raise ProofError(f"position {position}: prev_hash does not link to the event before", position)
            if envelope_hash(envelope) != envelope["hash"]:
                raise ProofError(f"position {position}: the hash does not match the event", position)
            previous = envelope["hash"]
            yield leaf_hash(bytes.fromhex(previous))

    size, root = root_of(leaves())
    if size != checkpoint.size:
        raise ProofError(f"the export holds {size} events, the checkpoint {checkpoint.size}")
    if root != checkpoint.root:
        raise ProofError(f"the export's Merkle root differs from the checkpoint's at size {size}")
    return size
