"""What travels through the real-time layer: events encoded once, with the facts about
their alert that visibility and subscription filters need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """The alert an event is about, as it stood when the event was committed."""

    operation_id: int
    reporter_id: int
    scope: str
    recipient_ids: frozenset[int]
    kind: str
    priority: str
    transport_mode: str | None
    territory: str
    commodities: frozenset[str]

    def to_wire(self) -> list[Any]:
        return [
            self.operation_id,
            self.reporter_id,
            self.scope,
            sorted(self.recipient_ids),
            self.kind,
            self.priority,
            self.transport_mode,
            self.territory,
            sorted(self.commodities),
        ]

    @classmethod
    def from_wire(cls, data: list[Any]) -> AlertFacts:
        op, reporter, scope, recipients, kind, priority, mode, territory, commodities = data
        return cls(
            operation_id=int(op),
            reporter_id=int(reporter),
            scope=str(scope),
            recipient_ids=frozenset(int(r) for r in recipients),
            kind=str(kind),
            priority=str(priority),
            transport_mode=None if mode is None else str(mode),
            territory=str(territory),
            commodities=frozenset(str(c) for c in commodities),
        )


@dataclass(frozen=True, slots=True)
class LiveEvent:
    seq: int
    type: str
    facts: AlertFacts
    payload: str  # the event's JSON, encoded once for every connection


@dataclass(frozen=True, slots=True)
class Batch:
    """What one commit produced: every ``seq`` in ``(after, last]`` is either one of
    ``events`` or was drawn by a job that failed and will never exist."""

    after: int
    last: int
    events: tuple[LiveEvent, ...]
    committed_at: float = 0.0  # wall clock, for the delivery-lag metric

    def to_wire(self) -> dict[str, Any]:
        return {
            "after": self.after,
            "last": self.last,
            "at": self.committed_at,
            "events": [[e.seq, e.type, e.facts.to_wire(), e.payload] for e in self.events],
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Batch:
        return cls(
            after=int(data["after"]),
            last=int(data["last"]),
            committed_at=float(data.get("at", 0.0)),
            events=tuple(
                LiveEvent(int(seq), str(type_), AlertFacts.from_wire(facts), str(payload))
                for seq, type_, facts, payload in data["events"]
            ),
        )
