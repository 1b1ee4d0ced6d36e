"""Party codes: ISO 3166-1 alpha-2 countries (with EU aliases) or organisation record ids."""

from __future__ import annotations

import re
from typing import Any

import pycountry
from marshmallow import ValidationError, fields

from events.ids import is_record_id

ALIASES = {"UK": "GB", "EL": "GR"}
COUNTRY = re.compile(r"^[A-Z]{2}$")


def normalise_party(value: object) -> str:
    """A country code in upper case (aliases resolved) or an organisation id as given.

    Raises ValueError for anything else. Whether an organisation id exists is the
    registry's check, not this function's.
    """
    if not isinstance(value, str):
        raise ValueError("a party is a string: an ISO 3166-1 alpha-2 code or an organisation id")
    if COUNTRY.fullmatch(value):
        code = ALIASES.get(value.upper(), value.upper())
        if pycountry.countries.get(alpha_2=code) is None:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
        return code
    if is_record_id(value):
        return value
    raise ValueError(f"{value!r} is neither an ISO 3166-1 alpha-2 code nor an organisation id")


class Party(fields.String):
    """A marshmallow field for one party; organisation ids are checked by the registry."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metadata = {"description": "an ISO 3166-1 alpha-2 code (UK, EL accepted) or an organisation id",
                         **self.metadata}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            return normalise_party(value)
        except ValueError as error:
            raise ValidationError(str(error)) from error


def party_list(**kwargs: Any) -> fields.List:
    return fields.List(Party(), **kwargs)
