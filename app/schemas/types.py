"""Field types shared by every schema: codes, territories, text, strict timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import pycountry
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, PlainSerializer, Strict
from pydantic import StringConstraints as Str

CODE_PATTERN = r"^[A-Z0-9][A-Z0-9-]{1,31}$"
# RFC 3339 date-time; the offset is required (a timestamp without one is refused).
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
TERRITORIES = frozenset(country.alpha_2 for country in pycountry.countries)


def clean_text(value: str) -> str:
    # PostgreSQL refuses NUL, and lone surrogates cannot be stored as UTF-8: refuse both here
    # so that such input is a 422, never a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _territory(value: str) -> str:
    if value not in TERRITORIES:
        raise ValueError("must be an ISO 3166-1 alpha-2 code")
    return value


def _timestamp_string(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError(
            "must be an RFC 3339 timestamp with an offset, like 2020-06-17T09:30:00+09:00"
        )
    return value


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; ValueError if that falls outside the years datetime holds."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("lies outside the years 1 to 9999 in UTC") from None


def format_utc(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix and millisecond precision."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Text = Annotated[str, Strict(), AfterValidator(clean_text)]


def text(min_length: int = 0, max_length: int = 10_000) -> Any:
    """A strict, storable string with length bounds (after trimming surrounding space)."""
    return Annotated[
        str,
        Strict(),
        Str(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(clean_text),
    ]


Code = Annotated[str, Strict(), Str(pattern=CODE_PATTERN)]
Territory = Annotated[str, Strict(), AfterValidator(_territory)]
UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_string),
    AfterValidator(to_utc),
    PlainSerializer(format_utc, return_type=str),
]
OutDatetime = Annotated[datetime, PlainSerializer(format_utc, return_type=str)]
