"""Signed checkpoints of the log's Merkle tree, and the key that signs them.

Settings (read here until they join the settings object):
- `REGISTRY_SIGNING_KEY`: the Ed25519 private key file, PKCS#8 PEM (default `var/signing.key`),
  created with mode 0600 on first use; every process of a deployment uses the same file.
- `REGISTRY_LOG_ORIGIN`: the log's name in checkpoints and in its verifier key
  (default `cooperation-registry/log`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.audit.proofs import NAME, Checkpoint, Verifier, sign_note
from registry.errors import BadQuery
from registry.log import merkle
from registry.log.database import Database
from registry.settings import Settings

DEFAULT_KEY_FILE = "var/signing.key"
DEFAULT_ORIGIN = "cooperation-registry/log"


class SigningKeyError(Exception):
    """The signing key file cannot be made or read (the message says which file and why)."""


def checked_origin(origin: str) -> str:
    if not NAME.fullmatch(origin):
        raise SigningKeyError(f"REGISTRY_LOG_ORIGIN {origin!r} must have no spaces and no '+'")
    return origin


def load_signing_key(path: str, make_folder: bool = False) -> Ed25519PrivateKey:
    """The key in `path`, made there first (mode 0600) if there is no such file; its folder
    too with `make_folder` (the default `var/`), else a missing folder is an error.

    Processes starting at once end up with one key: each writes a candidate beside the
    file and links it into place, which only the first can do. Raises SigningKeyError.
    """
    folder = os.path.dirname(path) or "."
    if make_folder:
        os.makedirs(folder, exist_ok=True)
    if not os.path.isdir(folder):
        raise SigningKeyError(f"signing key {path}: the directory {folder} does not exist")
    if not os.path.exists(path):
        _create(path)
    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except OSError as error:
        raise SigningKeyError(f"signing key {path}: cannot read it: {error.strerror}") from error
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"signing key {path}: not an unencrypted PKCS#8 PEM private key") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key {path}: not an Ed25519 key")
    return key


def _create(path: str) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    candidate = f"{path}.{os.getpid()}.new"
    try:
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(candidate, path)  # atomic, and only if no key is there yet
    except OSError as error:
        raise SigningKeyError(f"signing key {path}: cannot create it: {error.strerror}") from error
    finally:
        if os.path.exists(candidate):
            os.unlink(candidate)


@dataclass(frozen=True)
class Signer:
    """Signs checkpoints of one log with one key."""

    origin: str
    key: Ed25519PrivateKey

    @classmethod
    def of(cls, settings: Settings) -> Signer:
        """The signer the settings name (REGISTRY_LOG_ORIGIN, REGISTRY_SIGNING_KEY). Raises SigningKeyError."""
        return cls(checked_origin(settings.log_origin),
                   load_signing_key(settings.signing_key, settings.signing_key == DEFAULT_KEY_FILE))

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.origin, self.key.public_key().public_bytes_raw())

    def checkpoint(self, database: Database) -> str:
        """The signed checkpoint of the tree as it stands."""
        with database.read() as cursor:
            size = merkle.tree_size(cursor)
            root = merkle.root(cursor, size)
        return sign_note(Checkpoint(self.origin, size, root).body(), self.origin, self.key)


def inclusion(database: Database, position: int, size: int | None) -> dict[str, Any]:
    """`{position, size, leaf_hash, hashes}` (hex): the proof that the event at `position`
    is in the tree of `size` (default: current). Raises BadQuery for a bad position or size."""
    with database.read() as cursor:
        current = merkle.tree_size(cursor)
        size = current if size is None else size
        if size > current:
            raise _bad("size", f"size {size} is beyond the log's head at {current}")
        if not 1 <= position <= size:
            raise _bad("position", f"position {position} is not within 1..{size}")
        leaf, path = merkle.inclusion_proof(cursor, position - 1, size)
    return {"position": position, "size": size, "leaf_hash": leaf.hex(), "hashes": [h.hex() for h in path]}


def consistency(database: Database, old: int, new: int | None) -> dict[str, Any]:
    """`{from, to, hashes}` (hex): the proof that the tree of `new` (default: current) extends
    the tree of `old`. Raises BadQuery for bad sizes."""
    with database.read() as cursor:
        current = merkle.tree_size(cursor)
        new = current if new is None else new
        if new > current:
            raise _bad("to", f"to {new} is beyond the log's head at {current}")
        if not 1 <= old <= new:
            raise _bad("from", f"from {old} is not within 1..{new}")
        path = merkle.consistency_proof(cursor, old, new)
    return {"from": old, "to": new, "hashes": [h.hex() for h in path]}


def _bad(field: str, message: str) -> BadQuery:
    return BadQuery(message, {field: [message]})
