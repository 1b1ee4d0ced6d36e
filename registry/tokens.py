"""Bearer tokens with roles, stored hashed."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass

from eventsourcing.persistence import IntegrityError

from registry.errors import Conflict, Invalid, NotFound
from registry.log.chain import utc_now
from registry.log.database import Database

ROLES = ("reader", "editor", "admin")
TRUSTED_FOR = 1.0  # seconds a process goes on accepting a token it has looked up (another's revocation takes that long)
TRUSTED_KEPT = 10_000  # tokens a process remembers at most
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    def can_write(self) -> bool:
        return self.role in ("editor", "admin")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._trusted: dict[str, tuple[Principal, float]] = {}  # digest -> (principal, when looked up)
        self._revocations = 0  # revocations made by this process: a lookup older than one is not kept
        self._trust = threading.Lock()

    def create(self, name: str, role: str) -> str:
        """A new token; only its hash is stored. Raises Invalid or Conflict."""
        if not NAME.match(name or ""):
            raise Invalid("a token name is 1-64 letters, digits, '_', '.', '@' or '-'", {"name": ["invalid"]})
        if role not in ROLES:
            raise Invalid(f"role must be one of {', '.join(ROLES)}", {"role": ["invalid"]})
        token = "reg_" + secrets.token_urlsafe(32)
        try:
            with self.database.write() as cursor:
                cursor.execute(
                    "INSERT INTO {tokens} (name, role, token_hash, created_at) VALUES (?,?,?,?)",
                    (name, role, _digest(token), utc_now()),
                )
        except IntegrityError as error:
            raise Conflict(f"a token named {name!r} exists") from error
        return token

    def list(self) -> list[dict[str, str | None]]:
        with self.database.read() as cursor:
            rows = cursor.execute("SELECT name, role, created_at, revoked_at FROM {tokens} ORDER BY name").all()
        return [{"name": r[0], "role": r[1], "created_at": r[2], "revoked_at": r[3]} for r in rows]

    def revoke(self, name: str) -> None:
        with self.database.write() as cursor:
            cursor.execute(
                "UPDATE {tokens} SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (utc_now(), name))
            if cursor.raw.rowcount == 0:
                raise NotFound(f"no active token named {name!r}")
        with self._trust:  # this process refuses it at once; others within TRUSTED_FOR
            self._revocations += 1
            self._trusted.clear()

    def authenticate(self, token: str) -> Principal | None:
        """Who the token belongs to, or None when it is unknown or revoked. A token found valid
        is trusted for TRUSTED_FOR seconds without a lookup."""
        digest, now, revocations = _digest(token), time.monotonic(), self._revocations
        trusted = self._trusted.get(digest)
        if trusted is not None and now - trusted[1] < TRUSTED_FOR:
            return trusted[0]
        with self.database.read() as cursor:
            row = cursor.execute(
                "SELECT name, role FROM {tokens} WHERE token_hash = ? AND revoked_at IS NULL", (digest,)).one()
        if row is None:
            self._trusted.pop(digest, None)
            return None
        found = Principal(row[0], row[1])
        with self._trust:
            if revocations == self._revocations:  # no revocation here since the read began
                if len(self._trusted) >= TRUSTED_KEPT:
                    self._trusted.clear()
                self._trusted[digest] = (found, now)
        return found

    def has_admin(self) -> bool:
        with self.database.read() as cursor:
            return bool(cursor.execute(
                "SELECT COUNT(*) FROM {tokens} WHERE role = 'admin' AND revoked_at IS NULL").scalar())
