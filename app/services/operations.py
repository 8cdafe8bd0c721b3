"""Operations, participants and closing (API.md section 4)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.committer import WriteTx
from app.errors import Conflict, NotFound
from app.models import Operation, Participation
from app.models.base import utcnow
from app.schemas.admin import OperationIn, OperationOut
from app.services.administrations import resolve_codes
from app.services.keys import Caller
from app.services.pagination import Cursor, page_of
from app.services.visibility import Reach, reach_of


def operation_out(op: Operation) -> OperationOut:
    return OperationOut(
        code=op.code,
        name=op.name,
        description=op.description,
        coordinator=op.coordinator.code,
        participants=[p.administration.code for p in op.participations if p.removed_at is None],
        starts_at=op.starts_at,
        ends_at=op.ends_at,
        status="closed" if op.closed_at else "open",
        closed_at=op.closed_at,
        created_at=op.created_at,
    )


async def create_operation(tx: WriteTx, *, data: OperationIn) -> OperationOut:
    session = tx.session
    if (await session.execute(select(Operation.id).where(Operation.code == data.code))).first():
        raise Conflict(f"An operation with code {data.code} exists")
    coordinator = (await resolve_codes(session, [data.coordinator], loc=("body", "coordinator")))[
        data.coordinator
    ]
    participants = await resolve_codes(session, data.participants, loc=("body", "participants"))
    op = Operation(
        code=data.code,
        name=data.name,
        description=data.description,
        coordinator_id=coordinator.id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
    )
    session.add(op)
    await session.flush()
    now = utcnow()
    for code in data.participants:
        session.add(
            Participation(
                operation_id=op.id, administration_id=participants[code].id, joined_at=now
            )
        )
    await session.flush()
    return operation_out(await load_operation(session, code=data.code))


async def load_operation(session: AsyncSession, *, code: str) -> Operation:
    """The operation, fresh from the store; 404 if there is none."""
    query = (
        select(Operation)
        .where(Operation.code == code)
        .options(joinedload(Operation.participations))  # one round trip, not two
        .execution_options(populate_existing=True)
    )
    op = (await session.execute(query)).unique().scalar_one_or_none()
    if op is None:
        raise NotFound(f"No operation {code}")
    return op


def reach_in(op: Operation, administration_id: int) -> Reach:
    """An administration's standing in an operation already loaded with its participations."""
    mine = next((p for p in op.participations if p.administration_id == administration_id), None)
    return Reach.within(
        administration_id,
        operation_id=op.id,
        coordinates=op.coordinator_id == administration_id,
        joined=mine is not None,
        left=mine is not None and mine.removed_at is not None,
    )


async def open_operation(session: AsyncSession, *, caller: Caller, code: str) -> Operation:
    """The operation if ``caller`` may read it: admins all, others only their own (else 404)."""
    op = await load_operation(session, code=code)
    if caller.is_admin:
        return op
    assert caller.administration_id is not None
    if not reach_in(op, caller.administration_id).may_open(op.id):
        raise NotFound(f"No operation {code}")
    return op


async def open_operation_with_reach(
    session: AsyncSession, *, caller: Caller, code: str
) -> tuple[Operation, Reach]:
    """``open_operation`` for a member or analyst, with the ``Reach`` it checked, so that
    reads which then apply the sharing rule do not load it a second time."""
    assert caller.administration_id is not None
    op = await load_operation(session, code=code)
    reach = await reach_of(session, administration_id=caller.administration_id)
    if not reach.may_open(op.id):
        raise NotFound(f"No operation {code}")
    return op, reach


@dataclass(frozen=True, slots=True)
class OperationRef:
    id: int
    code: str


async def open_operation_for_reading(
    session: AsyncSession, *, caller: Caller, code: str
) -> tuple[OperationRef, Reach]:
    """``open_operation_with_reach`` for a read confined to the operation, in one query: the
    ``Reach`` covers this operation alone (lists, statistics, exports, its events)."""
    me = caller.administration_id
    assert me is not None
    mine = and_(Participation.operation_id == Operation.id, Participation.administration_id == me)
    row = (
        await session.execute(
            select(
                Operation.id,
                Operation.code,
                Operation.coordinator_id,
                Participation.administration_id,
                Participation.removed_at,
            )
            .outerjoin(Participation, mine)
            .where(Operation.code == code)
        )
    ).first()
    if row is None:
        raise NotFound(f"No operation {code}")
    reach = Reach.within(
        me,
        operation_id=row.id,
        coordinates=row.coordinator_id == me,
        joined=row.administration_id is not None,
        left=row.removed_at is not None,
    )
    if not reach.may_open(row.id):
        raise NotFound(f"No operation {code}")
    return OperationRef(row.id, row.code), reach


async def list_operations(
    session: AsyncSession, *, caller: Caller, limit: int, cursor: Cursor | None
) -> tuple[list[OperationOut], str | None]:
    query = select(Operation).order_by(Operation.code).limit(limit + 1)
    if not caller.is_admin:
        assert caller.administration_id is not None
        reach = await reach_of(session, administration_id=caller.administration_id)
        query = query.where(Operation.id.in_(reach.coordinates | reach.took_part))
    if cursor is not None:
        query = query.where(Operation.code > cursor.string("code"))
    rows = list((await session.execute(query)).scalars().unique())
    items, next_cursor = page_of(rows, limit, lambda r: {"code": r.code})
    return [operation_out(op) for op in items], next_cursor


async def add_participant(tx: WriteTx, *, code: str, administration: str) -> OperationOut:
    session = tx.session
    op = await load_operation(session, code=code)
    admin = (await resolve_codes(session, [administration], loc=("body", "administration")))[
        administration
    ]
    existing = await session.get(Participation, (op.id, admin.id))
    if existing is not None and existing.removed_at is None:
        raise Conflict(f"{administration} already takes part in {code}")
    if existing is None:
        session.add(
            Participation(operation_id=op.id, administration_id=admin.id, joined_at=utcnow())
        )
    else:
        existing.removed_at = None
        existing.joined_at = utcnow()
    await session.flush()
    return operation_out(await load_operation(session, code=code))


async def remove_participant(tx: WriteTx, *, code: str, administration: str) -> None:
    session = tx.session
    op = await load_operation(session, code=code)
    current = next(
        (
            p
            for p in op.participations
            if p.administration.code == administration and p.removed_at is None
        ),
        None,
    )
    if current is None:
        raise NotFound(f"{administration} does not take part in {code}")
    current.removed_at = utcnow()


async def close_operation(tx: WriteTx, *, code: str) -> OperationOut:
    """Close; closing a closed operation changes nothing."""
    op = await load_operation(tx.session, code=code)
    if op.closed_at is None:
        op.closed_at = utcnow()
        await tx.session.flush()
    return operation_out(op)
