"""The registry's own errors; the API maps each class to one HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RegistryError(Exception):
    title = "Registry error"

    def __init__(self, detail: str, errors: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = dict(errors or {})


class NotFound(RegistryError):
    title = "Not found"


class Invalid(RegistryError):
    """The request is well-formed but its content breaks the catalogue's rules."""

    title = "Invalid input"


class BadQuery(RegistryError):
    """A query parameter or header cannot be read."""

    title = "Bad request"


class Conflict(RegistryError):
    title = "Conflict"


class PreconditionFailed(RegistryError):
    title = "Precondition failed"


class StoreBusy(RegistryError):
    title = "Store busy"
