"""Building JSON responses from what services return."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from starlette.responses import Response

from app.jsonenc import dumps
from app.services.idempotency import StoredResponse


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    content = body if isinstance(body, bytes) else dumps(_plain(body))
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def page_response(items: Sequence[Any], next_cursor: str | None) -> Response:
    return json_response({"items": [_plain(i) for i in items], "next_cursor": next_cursor})


def stored_response(stored: StoredResponse) -> Response:
    """A report's answer: 201 with its ``Location``, or the replay of an earlier one."""
    headers = {"Location": stored.location or ""}
    if stored.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(stored.body, status=stored.status, headers=headers)
