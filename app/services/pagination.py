"""Opaque keyset cursors for every list endpoint."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from app.errors import Unprocessable
from app.jsonenc import dumps, loads
from app.schemas.types import clean_text, to_utc

T = TypeVar("T")


class Cursor:
    """A decoded cursor: the sort position after which the next page starts."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    @classmethod
    def decode(cls, raw: str | None) -> Cursor | None:
        if raw is None:
            return None
        try:
            data = loads(base64.urlsafe_b64decode(raw.encode("ascii") + b"=" * (-len(raw) % 4)))
        except (ValueError, binascii.Error, UnicodeEncodeError):
            raise _invalid() from None
        if not isinstance(data, dict):
            raise _invalid()
        return cls(data)

    def _get(self, name: str, kind: type) -> Any:
        value = self.fields.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _invalid()
        return value

    def string(self, name: str) -> str:
        value = str(self._get(name, str))
        try:
            return clean_text(value)
        except ValueError:
            raise _invalid() from None

    def timestamp(self, name: str) -> datetime:
        """An RFC 3339 time with an offset, in UTC."""
        try:
            value = datetime.fromisoformat(self.string(name))
            if value.tzinfo is None:
                raise ValueError("no offset")
            return to_utc(value)
        except ValueError:
            raise _invalid() from None

    def integer(self, name: str) -> int:
        value = int(self._get(name, int))
        if not -(2**63) <= value < 2**63:  # what the stores' 64-bit integers hold
            raise _invalid()
        return value


def encode_cursor(fields: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(dumps(fields)).rstrip(b"=").decode("ascii")


def page_of(
    rows: Sequence[T], limit: int, position: Callable[[T], dict[str, Any]]
) -> tuple[list[T], str | None]:
    """Cut a ``limit + 1`` fetch into a page and the cursor of the next one."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return items, encode_cursor(position(items[-1])) if more and items else None


def _invalid() -> Unprocessable:
    return Unprocessable(
        "Invalid cursor", errors=[(("query", "cursor"), "not a cursor this endpoint issued")]
    )
