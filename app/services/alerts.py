"""Reporting, reading, amending and withdrawing alerts (API.md section 5)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from app.committer import Committer, WriteTx
from app.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unprocessable,
    from_validation_errors,
)
from app.jsonenc import dumps, loads
from app.models import (
    Administration,
    Alert,
    AlertConcealment,
    AlertIdentifier,
    AlertItem,
    AlertRecipient,
    Operation,
)
from app.models.alert import commodity_mask
from app.models.base import utcnow
from app.realtime.events import AlertFacts
from app.schemas.alert import AlertBody, RestrictedAudience
from app.schemas.vocabulary import AlertStatus, Kind
from app.services import audit, events, idempotency, rollup
from app.services.audit import AuditSink
from app.services.idempotency import IdempotencyKey, InFlight, StoredResponse
from app.services.keys import Caller
from app.services.operations import load_operation, reach_in
from app.services.rendering import render, render_many
from app.services.visibility import reach_of

ALERT: Table = Alert.__table__  # type: ignore[assignment]
ITEM: Table = AlertItem.__table__  # type: ignore[assignment]
IDENTIFIER: Table = AlertIdentifier.__table__  # type: ignore[assignment]
CONCEALMENT: Table = AlertConcealment.__table__  # type: ignore[assignment]
RECIPIENT: Table = AlertRecipient.__table__  # type: ignore[assignment]
ALERT_COLUMNS = tuple(column.key for column in ALERT.columns)


@dataclass(frozen=True, slots=True)
class Rendered:
    """An alert as readers see it, and its ETag."""

    body: dict[str, Any]
    etag: str


def etag_of(alert: Alert) -> str:
    return f'"r{alert.revision}"'


# --- reporting ---------------------------------------------------------------------------


async def report_alert(
    committer: Committer,
    in_flight: InFlight,
    *,
    caller: Caller,
    operation_code: str,
    body: AlertBody,
    raw_body: Any,
    idempotency_key: str | None,
) -> StoredResponse:
    """Store a new alert; answers once it is committed (or replays an earlier answer)."""
    assert caller.administration_id is not None
    idem = None
    if idempotency_key is not None:
        key = idempotency.validate_key(idempotency_key)
        idem = IdempotencyKey.of(key, scope=operation_code, body=raw_body)
    draft = _Draft.of(caller, operation_code, body)
    with in_flight.hold(caller.administration_id, idem.key if idem else None):
        return await committer.run(
            partial(_report, caller=caller, draft=draft, idem=idem),
            staging_only=True,
            under_key=caller.key_id,
        )


class _Row:
    """A row of the alert's columns read as attributes, for ``render`` and ``facts_of``."""

    __slots__ = ("columns",)

    def __init__(self, columns: dict[str, Any]) -> None:
        self.columns = columns

    def __getattr__(self, name: str) -> Any:
        try:
            return self.columns[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(slots=True)
class _Draft:
    """A new alert as far as it is known before its write job runs: all but its ``seq`` and
    its operation's id (and, for a restricted audience, who its route adds).

    Built in the reporting request's own task, so that the batch's transaction, which
    every writer waits for, does only what needs the store. The alert is a row of its
    columns (as an ``Alert`` built by the ORM would insert them, unset ones as NULL).
    """

    operation_code: str
    reported_by: str
    body: AlertBody
    row: dict[str, Any]
    rendered: dict[str, Any]
    children: list[tuple[Table, dict[str, Any]]]

    @classmethod
    def of(cls, caller: Caller, operation_code: str, body: AlertBody) -> _Draft:
        assert caller.administration_id is not None and caller.administration is not None
        now, alert_id = utcnow(), str(ULID())
        row: dict[str, Any] = dict.fromkeys(ALERT_COLUMNS)
        row.update(
            id=alert_id,
            reporter_id=caller.administration_id,
            reporter_key_label=caller.label,
            status=AlertStatus.open.value,
            revision=1,
            created_at=now,
            updated_at=now,
        )
        draft = cls(operation_code, caller.administration, body, row, {}, [])
        draft._render()
        draft.children = _children(alert_id, body)
        return draft

    def _render(self) -> None:
        columns, document = _columns_of(self.body)
        self.row.update(columns)
        self.rendered = render(
            _Row(self.row),
            operation=self.operation_code,
            reported_by=self.reported_by,
            acks=[],
            document=document,
        )

    def complete(self, op: Operation, seq: int) -> _Row:
        """Give the alert what the store decided. ``_audience`` may have added the route's
        participants to a restricted audience, which the document then shows."""
        self.row["seq"], self.row["operation_id"] = seq, op.id
        if isinstance(self.body.audience, RestrictedAudience):
            self._render()
        self.rendered["seq"] = seq
        return _Row(self.row)


async def _report(
    tx: WriteTx, *, caller: Caller, draft: _Draft, idem: IdempotencyKey | None
) -> StoredResponse:
    """A staging-only job: it reads, then stages its rows for the batch's bulk insert."""
    assert caller.administration_id is not None
    if idem is not None:
        stored = await idempotency.find(tx, administration_id=caller.administration_id, idem=idem)
        if stored is not None:
            return stored
    op = await _operation_open_for_reports(tx, caller=caller, code=draft.operation_code)
    body = draft.body
    if body.kind is Kind.notice and caller.administration_id != op.coordinator_id:
        raise Forbidden("Only the operation's coordinator may post a notice")
    recipients = _audience(op, body, kept=set())
    alert = draft.complete(op, tx.next_seq())
    tx.stage(ALERT, draft.row)
    tx.after_insert[ALERT] = rollup.add_inserted  # the statistics, with the alerts
    for table, row in draft.children:
        tx.stage(table, row)
    for admin in recipients:
        tx.stage(RECIPIENT, {"alert_id": alert.id, "administration_id": admin.id})
    facts = events.facts_of(
        alert,
        recipient_ids=(a.id for a in recipients),
        commodities=(item.commodity.value for item in body.items),
    )
    _append_alert_event(tx, "alert.created", op, alert.id, draft.rendered, facts, seq=alert.seq)
    audit.record_in(
        tx, caller=caller, action="alert.create", operation=op.code, alert_ids=[alert.id]
    )
    response = StoredResponse(201, dumps(draft.rendered), f"/v1/alerts/{alert.id}", replayed=False)
    if idem is not None:
        idempotency.remember(
            tx, administration_id=caller.administration_id, idem=idem, response=response
        )
    return response


async def _operation_open_for_reports(tx: WriteTx, *, caller: Caller, code: str) -> Operation:
    op: Operation | None = tx.memo.get(("operation", code))
    if op is None:
        op = tx.memo[("operation", code)] = await load_operation(tx.session, code=code)
    assert caller.administration_id is not None
    reach = reach_in(op, caller.administration_id)
    if not reach.may_report(op.id):
        if reach.may_open(op.id):  # a former participant
            raise Forbidden(f"{caller.administration} no longer takes part in {code}")
        raise NotFound(f"No operation {code}")
    if op.closed_at is not None:
        raise Conflict(f"Operation {code} is closed and accepts no new alerts")
    return op


def _audience(op: Operation, body: AlertBody, *, kept: set[str]) -> list[Administration]:
    """Check recipients and add the route's participants to a restricted pre-alert.

    ``kept`` are recipients of the previous revision, which stay even if they have
    since left the operation (an audience never narrows). Rewrites
    ``body.audience.recipients`` so the stored audience lists everyone it reaches.
    """
    audience = body.audience
    if not isinstance(audience, RestrictedAudience):
        return []
    current = {
        p.administration.code: p.administration for p in op.participations if p.removed_at is None
    }
    eligible = {**current, op.coordinator.code: op.coordinator}
    bad = [code for code in audience.recipients if code not in eligible and code not in kept]
    if bad:
        raise Unprocessable(
            "Recipients must take part in the operation or coordinate it",
            errors=[
                (("body", "audience", "recipients"), f"{code} is not a participant") for code in bad
            ],
        )
    codes = list(audience.recipients)
    if body.kind is Kind.pre_alert and body.route is not None:
        on_route = body.route.territories()
        codes += sorted(code for code, a in current.items() if a.territory in on_route)
    audience.recipients = list(dict.fromkeys(codes))
    known = {p.administration.code: p.administration for p in op.participations}
    known[op.coordinator.code] = op.coordinator
    return [known[code] for code in audience.recipients if code in known]


def _columns_of(body: AlertBody) -> tuple[dict[str, Any], dict[str, Any]]:
    """The alert's columns that ``body`` decides, and its stored document (a dict)."""
    document = body.document()
    columns = {
        "kind": body.kind.value,
        "priority": body.priority.value,
        "tlp": body.tlp.value,
        "occurred_at": body.occurred_at,
        "territory": body.location.territory,
        "transport_mode": body.transport_mode.value if body.transport_mode else None,
        "detection_method": body.detection_method.value if body.detection_method else None,
        "origin": body.route.origin if body.route else None,
        "destination": body.route.destination if body.route else None,
        "audience_scope": body.audience.scope,
        "commodity_mask": commodity_mask(item.commodity.value for item in body.items),
        "summary": body.summary,
        "narrative": body.narrative,
        "concealment": body.concealment,
        "document": dumps(document).decode(),
    }
    return columns, document


def _apply_body(alert: Alert, body: AlertBody) -> dict[str, Any]:
    """Copy ``body`` onto the row; returns the stored document."""
    columns, document = _columns_of(body)
    for name, value in columns.items():
        setattr(alert, name, value)
    return document


def _children(alert_id: str, body: AlertBody) -> list[tuple[Table, dict[str, Any]]]:
    """The rows of an alert's items, identifiers and concealment methods."""
    rows: list[tuple[Table, dict[str, Any]]] = [
        (
            ITEM,
            {
                "alert_id": alert_id,
                "position": position,
                "commodity": item.commodity.value,
                "form": item.form.value if item.form else None,
                "quantity": item.quantity,
                "unit": item.unit.value,
            },
        )
        for position, item in enumerate(body.items)
    ]
    rows += [
        (IDENTIFIER, {"alert_id": alert_id, "type": ident.type.value, "value": ident.value})
        for ident in body.identifiers
    ]
    rows += [
        (CONCEALMENT, {"alert_id": alert_id, "method": method.value})
        for method in body.concealment_methods
    ]
    return rows


async def _replace_children(
    tx: WriteTx, alert_id: str, body: AlertBody, recipients: list[Administration]
) -> None:
    for table in (AlertItem, AlertIdentifier, AlertConcealment, AlertRecipient):
        await tx.session.execute(delete(table).where(table.alert_id == alert_id))
    for child, row in _children(alert_id, body):
        tx.stage(child, row)
    for admin in recipients:
        tx.stage(RECIPIENT, {"alert_id": alert_id, "administration_id": admin.id})
    await tx.flush_staged()  # the event's facts are read back from these rows


def _append_alert_event(
    tx: WriteTx,
    type: str,
    op: Operation,
    alert_id: str,
    rendered: dict[str, Any],
    facts: AlertFacts,
    seq: int | None = None,
) -> None:
    events.append(
        tx,
        type=type,
        operation=(op.id, op.code),
        alert_id=alert_id,
        body={"alert": rendered},
        facts=facts,
        seq=seq,
    )


# --- reading -----------------------------------------------------------------------------


async def visible_alert(session: AsyncSession, *, caller: Caller, alert_id: str) -> Alert:
    """The alert if ``caller`` may see it; 404 alike for hidden and missing ones."""
    assert caller.administration_id is not None
    reach = await reach_of(session, administration_id=caller.administration_id)
    alert = (
        await session.execute(
            select(Alert)
            .where(Alert.id == alert_id, reach.alert_clause())
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if alert is None:
        raise NotFound("No alert with this id")
    return alert


async def get_alert(
    session: AsyncSession, sink: AuditSink, *, caller: Caller, alert_id: str
) -> Rendered:
    alert = await visible_alert(session, caller=caller, alert_id=alert_id)
    (body,) = await render_many(session, [alert])
    sink.record(
        caller=caller, action="alert.read", operation=body["operation"], alert_ids=[alert.id]
    )
    return Rendered(body, etag_of(alert))


# --- amending and withdrawing --------------------------------------------------------------


async def _own_alert(tx: WriteTx, *, caller: Caller, alert_id: str) -> tuple[Alert, Operation]:
    alert = await visible_alert(tx.session, caller=caller, alert_id=alert_id)
    if alert.reporter_id != caller.administration_id:
        raise Forbidden("Only the reporting administration may change an alert")
    op = await tx.session.get_one(Operation, alert.operation_id)
    return alert, op


def _check_if_match(alert: Alert, if_match: str | None) -> None:
    if if_match is None:
        return
    candidates = [tag.strip() for tag in if_match.split(",")]
    if "*" not in candidates and etag_of(alert) not in candidates:
        raise PreconditionFailed("The alert has changed since this ETag was issued")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def _narrows(old: dict[str, Any], new: AlertBody) -> bool:
    if old["scope"] == "operation":
        return new.audience.scope != "operation"
    if not isinstance(new.audience, RestrictedAudience):
        return False
    return not set(old.get("recipients", [])) <= set(new.audience.recipients)


async def _amend(
    tx: WriteTx, *, caller: Caller, alert_id: str, patch: dict[str, Any], if_match: str | None
) -> Rendered:
    alert, op = await _own_alert(tx, caller=caller, alert_id=alert_id)
    _check_if_match(alert, if_match)
    if alert.status == AlertStatus.withdrawn.value:
        raise Conflict("A withdrawn alert cannot be amended")
    if "kind" in patch and patch["kind"] != alert.kind:
        raise Unprocessable("kind cannot change", errors=[(("body", "kind"), "cannot be amended")])
    current = loads(alert.document)
    old_audience = current["audience"]
    audience = patch.get("audience")
    if (
        isinstance(audience, dict)
        and audience.get("scope", current["audience"]["scope"]) != (current["audience"]["scope"])
    ):
        # A new scope replaces the audience: recipients make no sense under "operation".
        current = {**current, "audience": {}}
    try:
        body = AlertBody.model_validate(merge_patch(current, patch))
    except ValidationError as exc:
        raise from_validation_errors(
            {**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)
        ) from None
    recipients = _audience(op, body, kept=set(old_audience.get("recipients", [])))
    if _narrows(old_audience, body):
        raise Unprocessable(
            "The audience may widen but never narrow",
            errors=[
                (("body", "audience"), "would remove administrations that could see the alert")
            ],
        )
    await rollup.retract(tx.session, alert_id=alert.id)
    _apply_body(alert, body)
    alert.revision += 1
    alert.updated_at = utcnow()
    await _replace_children(tx, alert.id, body, recipients)
    await tx.session.flush()
    await rollup.add(tx.session, alert_id=alert.id)
    return await _after_change(tx, caller=caller, alert=alert, op=op, event="alert.amended")


async def _after_change(
    tx: WriteTx, *, caller: Caller, alert: Alert, op: Operation, event: str
) -> Rendered:
    (rendered,) = await render_many(tx.session, [alert])
    facts = await events.stored_facts(tx.session, alert)
    _append_alert_event(tx, event, op, alert.id, rendered, facts)
    action = "alert.amend" if event == "alert.amended" else "alert.withdraw"
    audit.record_in(tx, caller=caller, action=action, operation=op.code, alert_ids=[alert.id])
    return Rendered(rendered, etag_of(alert))


async def amend_alert(
    committer: Committer,
    *,
    caller: Caller,
    alert_id: str,
    patch: dict[str, Any],
    if_match: str | None,
) -> Rendered:
    """Apply a merge patch; the result is a new revision."""
    return await committer.run(
        partial(_amend, caller=caller, alert_id=alert_id, patch=patch, if_match=if_match)
    )


async def _withdraw(tx: WriteTx, *, caller: Caller, alert_id: str, reason: str) -> Rendered:
    alert, op = await _own_alert(tx, caller=caller, alert_id=alert_id)
    if alert.status == AlertStatus.withdrawn.value:
        raise Conflict("The alert is already withdrawn")
    await rollup.retract(tx.session, alert_id=alert.id)  # figures count open alerts alone
    alert.status = AlertStatus.withdrawn.value
    alert.withdrawn_reason = reason
    alert.revision += 1
    alert.updated_at = utcnow()
    await tx.session.flush()
    return await _after_change(tx, caller=caller, alert=alert, op=op, event="alert.withdrawn")


async def withdraw_alert(
    committer: Committer, *, caller: Caller, alert_id: str, reason: str
) -> Rendered:
    return await committer.run(partial(_withdraw, caller=caller, alert_id=alert_id, reason=reason))
