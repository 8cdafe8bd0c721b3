"""API keys: minting, hashing, authenticating, listing and revoking (API.md section 2)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from ulid import ULID

from app.committer import REVOKED, WriteTx
from app.errors import NotFound, Unauthorized, Unprocessable
from app.models import Administration, ApiKey
from app.models.base import utcnow
from app.schemas.admin import KeyCreated, KeyIn, KeyOut
from app.schemas.vocabulary import Role
from app.services import audit
from app.services.pagination import Cursor, page_of

log = logging.getLogger("relay.keys")

TOKEN_PREFIX = "sr_"  # noqa: S105 - a prefix, not a secret
# The key of a token's digest, for every request: built once, its columns read through
# the connection without the ORM's result handling.
KEY_BY_DIGEST = (
    select(
        ApiKey.id,
        ApiKey.token_hash,
        ApiKey.role,
        ApiKey.label,
        ApiKey.administration_id,
        ApiKey.revoked_at,
        ApiKey.expires_at,
        Administration.code,
    )
    .outerjoin(Administration, Administration.id == ApiKey.administration_id)
    .where(ApiKey.token_hash == bindparam("digest"))
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated key behind a request."""

    key_id: str
    role: Role
    label: str
    administration_id: int | None
    administration: str | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


def new_token() -> str:
    """256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        administration=key.administration.code if key.administration else None,
        role=Role(key.role),
        label=key.label,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


async def authenticate(session: AsyncSession, *, token: str, now: datetime) -> Caller:
    """The caller for ``token``; 401 if unknown, expired or revoked."""
    return await authenticate_on(await session.connection(), token=token, now=now)


async def authenticate_on(connection: AsyncConnection, *, token: str, now: datetime) -> Caller:
    """``authenticate`` on a connection, for a request that needs no session."""
    return (await _look_up(connection, hash_token(token), now)).caller


async def _look_up(connection: AsyncConnection, digest: str, now: datetime) -> KnownKey:
    key = (await connection.execute(KEY_BY_DIGEST, {"digest": digest})).first()
    if key is None or not hmac.compare_digest(key.token_hash, digest):
        raise Unauthorized()
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        raise Unauthorized(REVOKED)
    caller = Caller(
        key_id=key.id,
        role=Role(key.role),
        label=key.label,
        administration_id=key.administration_id,
        administration=key.code,
    )
    return KnownKey(caller, key.expires_at)


@dataclass(frozen=True, slots=True)
class KnownKey:
    caller: Caller
    expires_at: datetime | None


class KeyCache:
    """Callers by token digest, for the requests that write under their key alone.

    A hit is not proof that the key is still live: it spares the lookup of who the caller
    is, and every write made with it is checked again at commit, in the write's own
    transaction (``Committer.run(under_key=...)``). A key revoked on any node therefore
    stops working at once, as API.md section 2 requires. Only keys that were live when
    looked up are kept; at most ``size``, the oldest dropped first.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._known: dict[str, KnownKey] = {}

    def __len__(self) -> int:
        return len(self._known)

    async def authenticate(self, engine: AsyncEngine, *, token: str, now: datetime) -> Caller:
        """The caller for ``token``: from memory while it has not expired, else from the
        store (401 as ``authenticate``)."""
        digest = hash_token(token)
        known = self._known.get(digest)
        if known is not None and (known.expires_at is None or known.expires_at > now):
            return known.caller
        self._known.pop(digest, None)
        async with engine.connect() as connection:
            known = await _look_up(connection, digest, now)
        if len(self._known) >= self._size:
            del self._known[next(iter(self._known))]
        self._known[digest] = known
        return known.caller

    async def confirm(self, engine: AsyncEngine, *, token: str, now: datetime) -> Caller:
        """``authenticate`` from the store, whatever memory holds (401 as ``authenticate``)."""
        self.forget(token)
        return await self.authenticate(engine, token=token, now=now)

    def forget(self, token: str) -> None:
        """Drop ``token``, found revoked or expired at commit."""
        self._known.pop(hash_token(token), None)


async def create_key(
    tx: WriteTx, *, caller: Caller | None, data: KeyIn, token: str | None = None
) -> KeyCreated:
    """Mint a key; ``token`` is given only by the bootstrap and the CLI's import."""
    session = tx.session
    administration = None
    if data.administration is not None:
        administration = (
            await session.execute(
                select(Administration).where(Administration.code == data.administration)
            )
        ).scalar_one_or_none()
        if administration is None:
            raise Unprocessable(
                "Unknown administration",
                errors=[(("body", "administration"), "no administration has this code")],
            )
    now = utcnow()
    if data.expires_at is not None and data.expires_at <= now:
        raise Unprocessable(
            "expires_at lies in the past",
            errors=[(("body", "expires_at"), "must lie in the future")],
        )
    token = token or new_token()
    key = ApiKey(
        id=str(ULID()),
        token_hash=hash_token(token),
        role=data.role.value,
        administration_id=administration.id if administration else None,
        label=data.label,
        created_at=now,
        expires_at=data.expires_at,
    )
    key.administration = administration
    session.add(key)
    await session.flush()
    audit.record_in(
        tx, caller=caller, action="key.create", query={"key_id": key.id, "role": key.role}
    )
    out = key_out(key)
    return KeyCreated(**out.model_dump(), token=token)


async def list_keys(
    session: AsyncSession, *, limit: int, cursor: Cursor | None
) -> tuple[list[KeyOut], str | None]:
    query = select(ApiKey).order_by(ApiKey.id).limit(limit + 1)
    if cursor is not None:
        query = query.where(ApiKey.id > cursor.string("id"))
    keys = list((await session.execute(query)).scalars())
    return page_of([key_out(k) for k in keys], limit, lambda k: {"id": k.id})


async def revoke_key(tx: WriteTx, *, caller: Caller | None, key_id: str) -> None:
    key = await tx.session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("No key with this id")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record_in(tx, caller=caller, action="key.revoke", query={"key_id": key.id})


async def bootstrap_admin(tx: WriteTx, *, token: str) -> bool:
    """Create the admin key ``token`` if no admin key exists yet; True if one was made."""
    exists = (
        await tx.session.execute(select(ApiKey.id).where(ApiKey.role == Role.admin.value).limit(1))
    ).first()
    if exists is not None:
        return False
    if len(token) < 22:
        log.warning("RELAY_BOOTSTRAP_TOKEN is short; use at least 128 bits of randomness")
    await create_key(tx, caller=None, data=KeyIn(role=Role.admin, label="bootstrap"), token=token)
    return True
