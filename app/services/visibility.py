"""The sharing rule of API.md section 3, in one place.

Administration X may see an alert (and everything about it) iff
  1. X reported it, or
  2. X coordinates the alert's operation, or
  3. X currently participates and the audience is ``operation``, or it is
     ``restricted`` and X is a recipient.

``Reach`` holds what X's memberships give it and states the rule three times: as a
SQL predicate over alerts for every query (get, list, events, export), as one over
the pre-added figures of ``stat_rollup`` for statistics, and in Python for the live
stream, which decides on events already in memory. The property tests check that
all three agree.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Alert, AlertRecipient, Operation, Participation, StatRollup


@dataclass(frozen=True, slots=True)
class Reach:
    """One administration's standing in every operation."""

    administration_id: int
    coordinates: frozenset[int]
    participates: frozenset[int]
    took_part: frozenset[int]

    @classmethod
    def within(
        cls,
        administration_id: int,
        *,
        operation_id: int,
        coordinates: bool,
        joined: bool,
        left: bool,
    ) -> Reach:
        """X's standing in one operation alone: enough for that operation's rule
        (``alert_clause(operation_id)``, ``rollup_clause``), not for reads across operations."""
        one = frozenset({operation_id})
        return cls(
            administration_id=administration_id,
            coordinates=one if coordinates else frozenset(),
            participates=one if joined and not left else frozenset(),
            took_part=one if joined else frozenset(),
        )

    def may_open(self, operation_id: int) -> bool:
        """May read the operation at all (a former participant still reads its own alerts)."""
        return operation_id in self.coordinates or operation_id in self.took_part

    def may_report(self, operation_id: int) -> bool:
        return operation_id in self.coordinates or operation_id in self.participates

    def may_see(
        self, *, operation_id: int, reporter_id: int, scope: str, recipient_ids: Collection[int]
    ) -> bool:
        """The rule, for an alert already in memory."""
        if reporter_id == self.administration_id or operation_id in self.coordinates:
            return True
        if operation_id not in self.participates:
            return False
        return scope == "operation" or self.administration_id in recipient_ids

    def alert_clause(
        self, operation_id: int | None = None, *, paged: bool = False
    ) -> ColumnElement[bool]:
        """The rule, as a predicate over ``Alert``.

        Given the ``operation_id`` a query is already confined to, the rule is stated for
        that operation alone: nothing for its coordinator, one column for a former
        participant. The planner then sees plain column tests it can check in an index.
        A ``paged`` query stops after a page: its alerts' recipients are then looked up one
        by one (``OFFSET 0`` keeps PostgreSQL from first gathering every alert addressed
        to X, which a query reading them all does better).
        """
        me = self.administration_id
        recipients = select(AlertRecipient.alert_id).where(
            AlertRecipient.alert_id == Alert.id, AlertRecipient.administration_id == me
        )
        is_recipient = exists(recipients.offset(0) if paged else recipients)
        if operation_id is not None:
            if operation_id in self.coordinates:
                return true()
            if operation_id in self.participates:
                return or_(
                    Alert.reporter_id == me, Alert.audience_scope == "operation", is_recipient
                )
            return Alert.reporter_id == me
        clauses: list[ColumnElement[bool]] = [Alert.reporter_id == me]
        if self.coordinates:
            clauses.append(Alert.operation_id.in_(self.coordinates))
        if self.participates:
            clauses.append(
                and_(
                    Alert.operation_id.in_(self.participates),
                    or_(Alert.audience_scope == "operation", is_recipient),
                )
            )
        return or_(*clauses)

    def rollup_clause(self, operation_id: int) -> ColumnElement[bool]:
        """The rule over ``stat_rollup`` rows of one operation (see app/services/rollup.py):
        rows of ``viewer_id`` 0 count each alert once; a restricted alert addressed to X is
        also counted under ``viewer_id`` X, which X reads unless it reported the alert."""
        me = self.administration_id
        whole = StatRollup.viewer_id == 0
        if operation_id in self.coordinates:
            return whole
        if operation_id in self.participates:
            return or_(
                and_(whole, or_(StatRollup.reporter_id == me, StatRollup.scope == "operation")),
                and_(StatRollup.viewer_id == me, StatRollup.reporter_id != me),
            )
        return and_(whole, StatRollup.reporter_id == me)


async def reach_of(session: AsyncSession, *, administration_id: int) -> Reach:
    return (await reaches_of(session, administration_ids={administration_id}))[administration_id]


async def reaches_of(session: AsyncSession, *, administration_ids: set[int]) -> dict[int, Reach]:
    """``reach_of`` for many administrations in two queries (the stream refreshes them)."""
    coordinates: dict[int, set[int]] = {a: set() for a in administration_ids}
    participates: dict[int, set[int]] = {a: set() for a in administration_ids}
    took_part: dict[int, set[int]] = {a: set() for a in administration_ids}
    for op_id, coordinator_id in await session.execute(
        select(Operation.id, Operation.coordinator_id).where(
            Operation.coordinator_id.in_(administration_ids)
        )
    ):
        coordinates[coordinator_id].add(op_id)
    for op_id, administration_id, removed_at in await session.execute(
        select(
            Participation.operation_id, Participation.administration_id, Participation.removed_at
        ).where(Participation.administration_id.in_(administration_ids))
    ):
        took_part[administration_id].add(op_id)
        if removed_at is None:
            participates[administration_id].add(op_id)
    return {
        a: Reach(
            administration_id=a,
            coordinates=frozenset(coordinates[a]),
            participates=frozenset(participates[a]),
            took_part=frozenset(took_part[a]),
        )
        for a in administration_ids
    }
