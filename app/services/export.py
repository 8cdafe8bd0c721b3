"""Streaming export (API.md section 6): one row per item of every visible alert, with the
list endpoint's filters and the TLP marking on every row. Alerts are read in keyset
chunks, each in a short read of its own, so memory stays flat however large the export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any, Literal

from sqlalchemy import select

from app.db import Database
from app.jsonenc import dumps, loads
from app.models import Alert, AlertItem
from app.schemas.types import format_utc
from app.services.administrations import administration_codes
from app.services.audit import AuditSink
from app.services.keys import Caller
from app.services.search import AlertFilter, visible_alerts_query

Format = Literal["csv", "ndjson"]
CHUNK = 500

COLUMNS = [
    "tlp",
    "alert_id",
    "seq",
    "operation",
    "kind",
    "priority",
    "status",
    "occurred_at",
    "reported_by",
    "territory",
    "place",
    "unlocode",
    "transport_mode",
    "origin",
    "transit",
    "destination",
    "detection_method",
    "concealment_methods",
    "audience",
    "item",
    "commodity",
    "form",
    "quantity",
    "unit",
    "identifiers",
    "summary",
    "concealment",
    "narrative",
    "reference",
    "created_at",
    "updated_at",
]
# Free text that a spreadsheet could take for a formula is prefixed with an apostrophe.
FREE_TEXT = {"place", "identifiers", "summary", "concealment", "narrative", "reference"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _rows(
    alert: Alert, *, operation: str, reporter: str, items: list[AlertItem]
) -> list[dict[str, Any]]:
    doc = loads(alert.document)
    route = doc.get("route") or {}
    audience = doc["audience"]
    common = {
        "tlp": alert.tlp,
        "alert_id": alert.id,
        "seq": alert.seq,
        "operation": operation,
        "kind": alert.kind,
        "priority": alert.priority,
        "status": alert.status,
        "occurred_at": format_utc(alert.occurred_at),
        "reported_by": reporter,
        "territory": alert.territory,
        "place": doc["location"].get("place"),
        "unlocode": doc["location"].get("unlocode"),
        "transport_mode": alert.transport_mode,
        "origin": route.get("origin"),
        "transit": route.get("transit") or [],
        "destination": route.get("destination"),
        "detection_method": alert.detection_method,
        "concealment_methods": doc.get("concealment_methods") or [],
        "audience": audience["scope"],
        "identifiers": [f"{i['type']}:{i['value']}" for i in doc.get("identifiers") or []],
        "summary": alert.summary,
        "concealment": alert.concealment,
        "narrative": alert.narrative,
        "reference": doc.get("reference"),
        "created_at": format_utc(alert.created_at),
        "updated_at": format_utc(alert.updated_at),
    }
    if not items:  # an alert without items still appears, once, with empty item fields
        return [
            {
                **common,
                "item": None,
                "commodity": None,
                "form": None,
                "quantity": None,
                "unit": None,
            }
        ]
    return [
        {
            **common,
            "item": item.position,
            "commodity": item.commodity,
            "form": item.form,
            "quantity": item.quantity,
            "unit": item.unit,
        }
        for item in items
    ]


def _csv_cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    text = str(value)
    if name in FREE_TEXT and text.startswith(FORMULA_START):
        return "'" + text
    return text


def encode(rows: list[dict[str, Any]], fmt: Format) -> bytes:
    if fmt == "ndjson":
        return b"".join(dumps(row) + b"\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(_csv_cell(name, row[name]) for name in COLUMNS)
    return buffer.getvalue().encode()


def header(fmt: Format) -> bytes:
    if fmt == "ndjson":
        return b""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(COLUMNS)
    return buffer.getvalue().encode()


async def start_export(
    db: Database,
    sink: AuditSink,
    *,
    caller: Caller,
    operation_code: str,
    where: AlertFilter,
    fmt: Format,
) -> tuple[str, AsyncIterator[bytes]]:
    """Check access now (so errors are answered before streaming starts); returns the
    operation's code and the body's chunks."""
    async with db.read_sessions() as session:
        query, code = await visible_alerts_query(
            session, caller=caller, operation_code=operation_code, where=where
        )
        codes: dict[int, str] = await administration_codes(session)
    sink.record(
        caller=caller,
        action="alert.export",
        operation=code,
        query={**where.as_query(), "format": fmt},
    )

    async def body() -> AsyncIterator[bytes]:
        yield header(fmt)
        last = 0
        while True:
            async with db.read_sessions() as session:
                alerts = list(
                    (
                        await session.execute(
                            query.where(Alert.seq > last).order_by(Alert.seq).limit(CHUNK)
                        )
                    ).scalars()
                )
                items: dict[str, list[AlertItem]] = {}
                if alerts:
                    for item in (
                        await session.execute(
                            select(AlertItem)
                            .where(AlertItem.alert_id.in_([a.id for a in alerts]))
                            .order_by(AlertItem.alert_id, AlertItem.position)
                        )
                    ).scalars():
                        items.setdefault(item.alert_id, []).append(item)
            if not alerts:
                return
            rows = [
                row
                for alert in alerts
                for row in _rows(
                    alert,
                    operation=code,
                    reporter=codes.get(alert.reporter_id, "?"),
                    items=items.get(alert.id, []),
                )
            ]
            yield encode(rows, fmt)
            last = alerts[-1].seq
            if len(alerts) < CHUNK:
                return

    return code, body()
