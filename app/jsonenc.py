"""JSON encoding with orjson: one encoder for responses, events and stored documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None) -> bytes:
    return orjson.dumps(value, default=default)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
