"""Bearer tokens: who is asking, and may they write."""

from __future__ import annotations

from flask import current_app, request

from registry.errors import RegistryError
from registry.tokens import Principal


class Unauthorized(RegistryError):
    title = "Unauthorized"


class Forbidden(RegistryError):
    title = "Forbidden"


def principal() -> Principal | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer <token>'")
    found = current_app.extensions["registry"].tokens.authenticate(token.strip())
    if found is None:
        raise Unauthorized("the token is unknown or revoked")
    return found


def require_writer(needing: str = "writes need") -> Principal:
    """The editor or admin asking; raises Unauthorized or Forbidden, whose text starts its
    reason with `needing` (a read that needs an editor says so: "reading subscriptions needs")."""
    who = principal()
    if who is None:
        raise Unauthorized(f"{needing} 'Authorization: Bearer <token>' with role editor or admin")
    if not who.can_write():
        raise Forbidden(f"the token {who.name!r} has role {who.role!r}; {needing} editor or admin")
    return who


def check_reader() -> None:
    if current_app.config["READ_AUTH"] and principal() is None:
        raise Unauthorized("reads need 'Authorization: Bearer <token>' (REGISTRY_READ_AUTH is on)")
