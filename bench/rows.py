"""The rows the app would write for ``bench.traffic``'s alerts, in commit order.

Rows are made exactly as the app stages them (app/services/alerts.py, followups.py,
events.py, audit.py): the alert's JSON document and its copied columns, the child rows,
the ``alert.created``, ``alert.withdrawn`` and ``alert.acknowledged`` events with their
encoded payloads, and the audit records. ``seq`` follows commit order across all of
them. A sample of documents is checked against ``AlertBody``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table
from ulid import ULID

from app.jsonenc import dumps
from app.models import (
    Ack,
    Alert,
    AlertConcealment,
    AlertIdentifier,
    AlertItem,
    AlertRecipient,
    AuditRecord,
    Event,
)
from app.models.alert import commodity_mask
from app.schemas.alert import AlertBody
from app.schemas.types import format_utc
from bench.traffic import (
    ACK_COUNT,
    ACK_STATUS,
    ENDS,
    SECOND_SHARE,
    STARTS,
    Admin,
    Op,
    draw_document,
)

ALERT: Table = Alert.__table__  # type: ignore[assignment]
ITEM: Table = AlertItem.__table__  # type: ignore[assignment]
IDENTIFIER: Table = AlertIdentifier.__table__  # type: ignore[assignment]
CONCEALMENT: Table = AlertConcealment.__table__  # type: ignore[assignment]
RECIPIENT: Table = AlertRecipient.__table__  # type: ignore[assignment]
ACK: Table = Ack.__table__  # type: ignore[assignment]
EVENT: Table = Event.__table__  # type: ignore[assignment]
AUDIT: Table = AuditRecord.__table__  # type: ignore[assignment]
# Insert order respects foreign keys.
TABLES = (ALERT, ITEM, IDENTIFIER, CONCEALMENT, RECIPIENT, ACK, EVENT, AUDIT)


@dataclass(slots=True)
class Timeline:
    """When each alert is created (sorted), withdrawn and acknowledged, and the ``seq`` of
    each of those events: ``seq`` follows commit order across all alerts."""

    created: list[float]
    created_seq: list[int]
    withdrawn: dict[int, tuple[float, int]]
    acks: dict[int, list[tuple[float, int]]]
    last_seq: int


def timeline(rng: random.Random, count: int) -> Timeline:
    start, span = STARTS.timestamp(), (ENDS - STARTS).total_seconds()
    created: list[float] = []
    while len(created) < count:  # busier by day (UTC+8 office hours) and on weekdays
        t = start + rng.random() * span
        hour = ((t / 3600) + 8) % 24
        weekday = int((t / 86400 + 4) % 7) < 5
        if rng.random() < (0.25 + 0.75 * math.sin(math.pi * hour / 24) ** 2) * (
            1.0 if weekday else 0.6
        ):
            created.append(t)
    created.sort()
    slots: list[tuple[float, int, int]] = [(t, i, 0) for i, t in enumerate(created)]
    withdrawn_at: dict[int, float] = {}
    ack_at: dict[int, list[float]] = {}
    for i, t in enumerate(created):
        if rng.random() < 0.02:
            withdrawn_at[i] = t + rng.uniform(300, 3600)
            slots.append((withdrawn_at[i], i, 1))
        times = sorted(t + rng.uniform(3660, 36000) for _ in range(ACK_COUNT(rng)))
        if times:
            ack_at[i] = times
            slots.extend((at, i, 2 + k) for k, at in enumerate(times))
    slots.sort()
    created_seq = [0] * count
    withdrawn: dict[int, tuple[float, int]] = {}
    acks: dict[int, list[tuple[float, int]]] = {i: [] for i in ack_at}
    for seq, (at, i, slot) in enumerate(slots, start=1):
        if slot == 0:
            created_seq[i] = seq
        elif slot == 1:
            withdrawn[i] = (at, seq)
        else:
            acks[i].append((at, seq))
    return Timeline(created, created_seq, withdrawn, acks, len(slots))


@dataclass(slots=True)
class Rows:
    """One chunk of rows, by table."""

    tables: dict[Table, list[dict[str, Any]]] = field(
        default_factory=lambda: {table: [] for table in TABLES}
    )

    def add(self, table: Table, row: dict[str, Any]) -> None:
        self.tables[table].append(row)


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _rendered(
    alert: dict[str, Any], document: dict[str, Any], *, op: Op, reporter: Admin
) -> dict[str, Any]:
    """``app.services.rendering.render`` of the row, with no acknowledgements yet."""
    return {
        "id": alert["id"],
        "operation": op.code,
        "seq": alert["seq"],
        "revision": alert["revision"],
        **document,
        "reported_by": reporter.code,
        "reported_by_key": reporter.key_label,
        "created_at": format_utc(alert["created_at"]),
        "updated_at": format_utc(alert["updated_at"]),
        "status": alert["status"],
        "withdrawn_reason": alert["withdrawn_reason"],
        "acks": [],
    }


def _event(
    rows: Rows, *, seq: int, type_: str, op: Op, alert_id: str, at: datetime, body: dict[str, Any]
) -> None:
    payload = {"seq": seq, "type": type_, "operation": op.code, "at": format_utc(at), **body}
    rows.add(
        EVENT,
        {
            "seq": seq,
            "type": type_,
            "operation_id": op.id,
            "alert_id": alert_id,
            "at": at,
            "payload": dumps(payload).decode(),
        },
    )


def _audit(rows: Rows, *, at: datetime, who: Admin, action: str, op: Op, alert_id: str) -> None:
    rows.add(
        AUDIT,
        {
            "at": at,
            "key_id": who.key_id,
            "administration": who.code,
            "action": action,
            "operation": op.code,
            "alert_ids": dumps([alert_id]).decode(),
            "query": None,
        },
    )


class Generator:
    """Draws the alerts of a timeline in creation order, a chunk of rows at a time."""

    def __init__(self, rng: random.Random, ops: list[Op]) -> None:
        self.rng = rng
        self.ops = ops
        self.admins = {a.code: a for op in ops for a in (op.coordinator, *op.participants)}
        self.identifiers: list[str] = []  # a sample of the main operation's
        self.checked = 0

    def chunks(self, line: Timeline, size: int) -> Iterator[tuple[int, Rows]]:
        """Rows for ``size`` alerts at a time, and how many alerts are done."""
        count = len(line.created)
        for start in range(0, count, size):
            rows = Rows()
            for i in range(start, min(count, start + size)):
                self.alert(rows, i, line)
            yield min(count, start + size), rows

    def alert(self, rows: Rows, i: int, line: Timeline) -> None:
        rng = self.rng
        op = self.ops[1] if rng.random() < SECOND_SHARE else self.ops[0]
        reporter: Admin = op.reporter(rng)
        created = _utc(line.created[i])
        occurred = max(STARTS, created - timedelta(seconds=min(rng.expovariate(1 / 21600), 259200)))
        occurred = occurred.replace(microsecond=0)
        document = draw_document(rng, op, reporter, occurred, i)
        if i % 997 == 0:
            self._check(document)
        alert_id = str(ULID.from_timestamp(line.created[i]))
        withdrawal = line.withdrawn.get(i)
        alert = {
            "id": alert_id,
            "seq": line.created_seq[i],
            "operation_id": op.id,
            "reporter_id": reporter.id,
            "reporter_key_label": reporter.key_label,
            "kind": document["kind"],
            "priority": document["priority"],
            "status": "open",
            "tlp": document["tlp"],
            "occurred_at": occurred,
            "territory": document["location"]["territory"],
            "transport_mode": document["transport_mode"],
            "detection_method": document["detection_method"],
            "origin": (document["route"] or {}).get("origin"),
            "destination": (document["route"] or {}).get("destination"),
            "audience_scope": document["audience"]["scope"],
            "commodity_mask": commodity_mask(item["commodity"] for item in document["items"]),
            "summary": document["summary"],
            "narrative": document["narrative"],
            "concealment": document["concealment"],
            "document": dumps(document).decode(),
            "revision": 1,
            "withdrawn_reason": None,
            "created_at": created,
            "updated_at": created,
        }
        rendered = _rendered(alert, document, op=op, reporter=reporter)
        _event(
            rows,
            seq=alert["seq"],
            type_="alert.created",
            op=op,
            alert_id=alert_id,
            at=created,
            body={"alert": rendered},
        )
        _audit(rows, at=created, who=reporter, action="alert.create", op=op, alert_id=alert_id)
        if withdrawal is not None:
            at, seq = withdrawal
            alert.update(
                status="withdrawn",
                revision=2,
                updated_at=_utc(at),
                withdrawn_reason="Duplicate of an earlier report",
            )
            rendered = _rendered(alert, document, op=op, reporter=reporter)
            _event(
                rows,
                seq=seq,
                type_="alert.withdrawn",
                op=op,
                alert_id=alert_id,
                at=_utc(at),
                body={"alert": rendered},
            )
            _audit(
                rows, at=_utc(at), who=reporter, action="alert.withdraw", op=op, alert_id=alert_id
            )
        rows.add(ALERT, alert)
        for position, item in enumerate(document["items"]):
            rows.add(ITEM, {"alert_id": alert_id, "position": position, **item})
        for ident in document["identifiers"]:
            rows.add(IDENTIFIER, {"alert_id": alert_id, **ident})
            if op is self.ops[0] and len(self.identifiers) < 5000 and rng.random() < 0.05:
                self.identifiers.append(ident["value"])
        for method in document["concealment_methods"]:
            rows.add(CONCEALMENT, {"alert_id": alert_id, "method": method})
        recipients = [self.admins[c] for c in document["audience"].get("recipients", [])]
        for admin in recipients:
            rows.add(RECIPIENT, {"alert_id": alert_id, "administration_id": admin.id})
        self._acks(rows, op, alert_id, reporter, recipients, line.acks.get(i, []))

    def _acks(
        self,
        rows: Rows,
        op: Op,
        alert_id: str,
        reporter: Admin,
        recipients: list[Admin],
        times: list[tuple[float, int]],
    ) -> None:
        if not times:
            return
        # Whoever may see it and is not the reporter: the OCU, recipients, or any participant.
        readers = [op.coordinator, *(recipients or op.participants)]
        readers = [a for a in dict.fromkeys(readers) if a is not reporter]
        for (t, seq), admin in zip(
            times, self.rng.sample(readers, min(len(times), len(readers))), strict=False
        ):
            at = _utc(t)
            status = ACK_STATUS(self.rng)
            ack = {
                "administration": admin.code,
                "status": status,
                "note": None,
                "by": admin.key_label,
                "at": format_utc(at),
            }
            rows.add(
                ACK,
                {
                    "alert_id": alert_id,
                    "administration_id": admin.id,
                    "status": status,
                    "note": None,
                    "by_label": admin.key_label,
                    "at": at,
                },
            )
            _event(
                rows,
                seq=seq,
                type_="alert.acknowledged",
                op=op,
                alert_id=alert_id,
                at=at,
                body={"alert_id": alert_id, "ack": ack},
            )

    def _check(self, document: dict[str, Any]) -> None:
        """The document is what the app would store for it (field order included)."""
        stored = AlertBody.model_validate(document).document()
        if dumps(stored) != dumps(document):
            raise AssertionError(f"document differs from AlertBody's:\n{document}\n{stored}")
        self.checked += 1
