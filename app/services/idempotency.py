"""``Idempotency-Key`` (API.md section 5): replay, mismatch, in flight.

Records live in the store, written in the same transaction as the alert, so a
replay survives a crash exactly like the alert. Requests in flight are tracked per
process; across processes the committer's lock serialises them, so the later one
finds the earlier one's record and replays it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from app.committer import WriteTx
from app.errors import Conflict, Unprocessable
from app.models import IdempotencyRecord
from app.models.base import utcnow

KEEP_FOR = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    key: str
    request_hash: str

    @classmethod
    def of(cls, key: str, *, scope: str, body: Any) -> IdempotencyKey:
        """Bodies equal as parsed JSON hash equally: keys are sorted before hashing."""
        # The stdlib encoder, not orjson: raw input may hold integers beyond 64 bits.
        canonical = json.dumps(
            {"scope": scope, "body": _canonical(body)}, sort_keys=True, ensure_ascii=True
        )
        return cls(key, hashlib.sha256(canonical.encode()).hexdigest())


def _canonical(value: Any) -> Any:
    """JSON numbers are numbers: 2 and 2.0 are the same value."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes
    location: str | None
    replayed: bool


def validate_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or not all(0x20 <= ord(c) <= 0x7E for c in key):
        raise Unprocessable(
            "Invalid Idempotency-Key",
            errors=[(("header", "Idempotency-Key"), "must be 1 to 255 printable ASCII characters")],
        )
    return key


async def find(
    tx: WriteTx, *, administration_id: int, idem: IdempotencyKey
) -> StoredResponse | None:
    record = await tx.session.get(IdempotencyRecord, (administration_id, idem.key))
    if record is None:
        return None
    if record.request_hash != idem.request_hash:
        raise _mismatch()
    return StoredResponse(record.status, record.body.encode(), record.location, replayed=True)


def _mismatch() -> Unprocessable:
    return Unprocessable(
        "This Idempotency-Key was used with a different request",
        errors=[(("header", "Idempotency-Key"), "already used with another body")],
    )


def remember(
    tx: WriteTx, *, administration_id: int, idem: IdempotencyKey, response: StoredResponse
) -> None:
    tx.stage(
        IdempotencyRecord.__table__,  # type: ignore[arg-type]
        {
            "administration_id": administration_id,
            "key": idem.key,
            "request_hash": idem.request_hash,
            "status": response.status,
            "location": response.location,
            "body": response.body.decode(),
            "created_at": utcnow(),
        },
    )
    # A retry in the same batch must find it before it reaches the table.
    tx.memo[("idempotency", administration_id, idem.key)] = (idem.request_hash, response)


async def prune(tx: WriteTx) -> None:
    """Forget keys older than ``KEEP_FOR`` (the contract promises at least 24 hours)."""
    await tx.session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - KEEP_FOR)
    )


class InFlight:
    """Keys whose first request this process is still serving."""

    def __init__(self) -> None:
        self._keys: set[tuple[int, str]] = set()

    @contextmanager
    def hold(self, administration_id: int, key: str | None) -> Iterator[None]:
        if key is None:
            yield
            return
        slot = (administration_id, key)
        if slot in self._keys:
            raise Conflict("A request with this Idempotency-Key is still in flight")
        self._keys.add(slot)
        try:
            yield
        finally:
            self._keys.discard(slot)
