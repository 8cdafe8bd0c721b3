"""Administrations (API.md section 4)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.committer import WriteTx
from app.errors import Conflict, Unprocessable
from app.models import Administration
from app.schemas.admin import AdministrationIn, AdministrationOut
from app.services.pagination import Cursor, page_of


def administration_out(row: Administration) -> AdministrationOut:
    return AdministrationOut(
        code=row.code, name=row.name, territory=row.territory, created_at=row.created_at
    )


async def create_administration(tx: WriteTx, *, data: AdministrationIn) -> AdministrationOut:
    taken = await tx.session.execute(
        select(Administration.id).where(Administration.code == data.code)
    )
    if taken.first() is not None:
        raise Conflict(f"An administration with code {data.code} exists")
    row = Administration(code=data.code, name=data.name, territory=data.territory)
    tx.session.add(row)
    await tx.session.flush()
    return administration_out(row)


async def list_administrations(
    session: AsyncSession, *, limit: int, cursor: Cursor | None
) -> tuple[list[AdministrationOut], str | None]:
    query = select(Administration).order_by(Administration.code).limit(limit + 1)
    if cursor is not None:
        query = query.where(Administration.code > cursor.string("code"))
    rows = list((await session.execute(query)).scalars())
    items, next_cursor = page_of(rows, limit, lambda r: {"code": r.code})
    return [administration_out(r) for r in items], next_cursor


async def administration_codes(session: AsyncSession) -> dict[int, str]:
    """Every administration's code by id (there are tens, not thousands)."""
    rows = await session.execute(select(Administration.id, Administration.code))
    return {id_: code for id_, code in rows}


async def resolve_codes(
    session: AsyncSession, codes: Iterable[str], *, loc: tuple[str | int, ...]
) -> dict[str, Administration]:
    """Administrations by code; 422 naming ``loc`` if any code is unknown."""
    wanted = list(dict.fromkeys(codes))
    if not wanted:
        return {}
    rows = (
        await session.execute(select(Administration).where(Administration.code.in_(wanted)))
    ).scalars()
    found = {row.code: row for row in rows}
    missing = [code for code in wanted if code not in found]
    if missing:
        raise Unprocessable(
            "Unknown administration code",
            errors=[(loc, f"no administration has code {code}") for code in missing],
        )
    return found
