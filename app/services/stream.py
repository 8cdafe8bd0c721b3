"""The websocket stream of API.md section 8: authentication, subscriptions, replay
from ``since`` handed over to live delivery without gap or duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from typing import Protocol as PyProtocol

from pydantic import ValidationError
from sqlalchemy import ColumnElement, or_, select
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.config import Settings
from app.db import Database
from app.errors import AppError, NotFound, Unauthorized, problem_response
from app.jsonenc import dumps, loads
from app.metrics import Metrics
from app.models import Alert, AlertItem, ApiKey
from app.models.base import utcnow
from app.realtime.events import AlertFacts
from app.realtime.hub import Connection, Hub, Subscription
from app.realtime.outbox import Outbox, Wire
from app.schemas.stream import (
    ErrorFrame,
    PongFrame,
    StreamFilterIn,
    SubscribedFrame,
    SubscribeFrame,
    UnsubscribedFrame,
    WelcomeFrame,
)
from app.schemas.vocabulary import Role
from app.server import HANDOFF_EXTENSION, WIRE_EXTENSION
from app.services import events, keys, operations
from app.services.audit import AuditSink
from app.services.keys import Caller
from app.services.visibility import Reach, reach_of, reaches_of

log = logging.getLogger("relay.stream")

AUTH_TIMEOUT = 10.0
MAX_FRAME_BYTES = 64 * 1024
REPLAY_PAGE = 500
MALFORMED_LIMIT = 20  # malformed frames within MALFORMED_WINDOW seconds close with 1008
MALFORMED_WINDOW = 10.0
BACKLOG_LIMIT = 32  # frames waiting behind a subscribe before reading pauses

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_UNAUTHORIZED = 4001
CLOSE_FORBIDDEN = 4003


@dataclass(slots=True)
class StreamContext:
    """The parts of the runtime a stream needs."""

    settings: Settings
    db: Database
    hub: Hub
    audit: AuditSink
    metrics: Metrics
    delivered_head: Callable[[], int]
    outbox_limit: int = 1000


class ReachViewer:
    """The sharing rule, as the hub asks it of events already in memory."""

    __slots__ = ("reach",)

    def __init__(self, reach: Reach) -> None:
        self.reach = reach

    def may_see(self, facts: AlertFacts) -> bool:
        return self.reach.may_see(
            operation_id=facts.operation_id,
            reporter_id=facts.reporter_id,
            scope=facts.scope,
            recipient_ids=facts.recipient_ids,
        )


class Malformed(Exception):
    """A frame the protocol cannot read (400)."""


class Rejected(Exception):
    """A well-formed request that cannot be granted."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """A subscription's filter: each non-empty set must contain the alert's value."""

    kind: frozenset[str] = frozenset()
    priority: frozenset[str] = frozenset()
    commodity: frozenset[str] = frozenset()
    transport_mode: frozenset[str] = frozenset()
    territory: frozenset[str] = frozenset()

    @classmethod
    def of(cls, given: StreamFilterIn | None) -> StreamFilter:
        if given is None:
            return cls()
        return cls(**{name: frozenset(map(str, getattr(given, name))) for name in cls.__slots__})

    def is_empty(self) -> bool:
        return not (
            self.kind or self.priority or self.commodity or self.transport_mode or self.territory
        )

    def accepts(self, facts: AlertFacts) -> bool:
        return (
            (not self.kind or facts.kind in self.kind)
            and (not self.priority or facts.priority in self.priority)
            and (not self.transport_mode or facts.transport_mode in self.transport_mode)
            and (not self.territory or facts.territory in self.territory)
            and (not self.commodity or not self.commodity.isdisjoint(facts.commodities))
        )

    def clauses(self) -> list[ColumnElement[bool]]:
        """The same filter in SQL, for replay from the log."""
        clauses: list[ColumnElement[bool]] = []
        for column, values in (
            (Alert.kind, self.kind),
            (Alert.priority, self.priority),
            (Alert.transport_mode, self.transport_mode),
            (Alert.territory, self.territory),
        ):
            if values:
                clauses.append(column.in_(values))
        if self.commodity:
            clauses.append(
                Alert.id.in_(
                    select(AlertItem.alert_id).where(AlertItem.commodity.in_(self.commodity))
                )
            )
        return clauses

    def describe(self) -> dict[str, list[str]]:
        return {name: sorted(getattr(self, name)) for name in self.__slots__ if getattr(self, name)}


class AsgiWire:
    """The wire under a server that offers none of its own: one task at a time sends a
    flush's messages through ASGI. (``relay serve`` offers a direct one, app/server.py.)"""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self._sending: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._broken = False
        self._callback: Callable[[], None] | None = None

    def writable(self) -> bool:
        return (
            self._sending is None
            and not self._broken
            and self._ws.application_state is WebSocketState.CONNECTED
        )

    def write(self, messages: list[bytes]) -> None:
        self._sending = asyncio.create_task(self._send(messages))

    def on_writable(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    def close(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = asyncio.create_task(self._close(code, reason))

    async def stop(self) -> None:
        """Stop sending; let a close already asked for reach the client."""
        if self._sending is not None:
            self._sending.cancel()
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._closing, 2)

    async def _send(self, messages: list[bytes]) -> None:
        try:
            for message in messages:
                await self._ws.send_text(message.decode())
        except Exception:  # the peer is gone; the reader sees the disconnect and cleans up
            self._broken = True
            return
        self._sending = None
        if self._callback is not None:
            self._callback()

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            if self._ws.application_state is WebSocketState.CONNECTED:
                await self._ws.close(code, reason)


class StreamWire(Wire, PyProtocol):
    """A wire the session can also close."""

    def close(self, code: int, reason: str) -> None: ...


def origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    """No Origin (not a browser), an allowed origin, or the server's own origin."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if origin in (a.lower() for a in allowed):
        return True
    scheme = "https" if websocket.url.scheme in ("wss", "https") else "http"
    host = websocket.headers.get("host", "").lower()
    return bool(host) and origin == f"{scheme}://{host}"


class StreamSession:
    """One websocket connection, from handshake to close.

    Once the connection is open, the session is driven by its messages: ``received`` takes
    each frame as it arrives and ``disconnected`` ends it. Under ``relay serve`` the
    server hands the connection off to the session (``relay.handoff``, app/server.py) and
    the ASGI application returns: an idle subscriber keeps no task and no coroutine
    stack. Under another server a read loop feeds the same two methods.
    """

    def __init__(self, websocket: WebSocket, context: StreamContext) -> None:
        self.ws: WebSocket | None = websocket
        self.ctx = context
        self.caller: Caller | None = None
        self.connection: Connection | None = None
        self.wire: StreamWire | None = None
        self._set_reading: Callable[[bool], None] | None = None
        self._malformed: deque[float] | None = None  # made at the first malformed frame
        self._tasks: set[asyncio.Task[None]] | None = None  # made at the first subscribe
        # A subscribe in flight: frames that arrive meanwhile wait in the backlog, so that
        # frames take effect in the order they were sent.
        self._busy: asyncio.Task[None] | None = None
        self._backlog: list[str | None] = []
        self._ended = False

    # --- handshake --------------------------------------------------------------------

    async def run(self) -> None:
        ws = self.ws
        assert ws is not None
        if not origin_allowed(ws, self.ctx.settings.allowed_origins):
            await self._deny(403, "This Origin is not allowed")
            return
        header = ws.headers.get("authorization")
        caller: Caller | None
        if header is not None:
            try:
                caller = await self._authenticate(_bearer(header))
            except AppError as error:
                await ws.send_denial_response(problem_response(error))
                return
            if caller.role is Role.admin:
                await self._deny(403, "Admin keys read no alerts")
                return
            await ws.accept()
        else:
            await ws.accept()
            caller = await self._first_frame_auth(ws)
        if caller is not None:
            self.caller = caller
            await self._serve(ws, caller)

    async def _deny(self, status: int, detail: str) -> None:
        assert self.ws is not None
        body = {
            "type": "/problems/forbidden",
            "title": "Forbidden",
            "status": status,
            "detail": detail,
        }
        await self.ws.send_denial_response(
            Response(dumps(body), status_code=status, media_type="application/problem+json")
        )

    async def _authenticate(self, token: str) -> Caller:
        async with self.ctx.db.read_sessions() as session:
            return await keys.authenticate(session, token=token, now=utcnow())

    async def _first_frame_auth(self, ws: WebSocket) -> Caller | None:
        try:
            message = await asyncio.wait_for(ws.receive(), timeout=AUTH_TIMEOUT)
        except TimeoutError:
            await ws.close(CLOSE_UNAUTHORIZED, "authentication timed out")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        try:
            frame = loads(message.get("text") or "")
        except ValueError:
            frame = None
        token = (
            frame.get("token") if isinstance(frame, dict) and frame.get("type") == "auth" else None
        )
        if not isinstance(token, str) or not token:
            await ws.close(CLOSE_UNAUTHORIZED, "expected an auth frame")
            return None
        try:
            caller = await self._authenticate(token)
        except Unauthorized:
            await ws.close(CLOSE_UNAUTHORIZED, "invalid, expired or revoked key")
            return None
        if caller.role is Role.admin:
            await ws.close(CLOSE_FORBIDDEN, "admin keys read no alerts")
            return None
        return caller

    # --- the open connection ------------------------------------------------------------

    async def _serve(self, ws: WebSocket, caller: Caller) -> None:
        # Only the connection outlives this frame: what opening it read (a database
        # session, the caller's reach) would otherwise live as long.
        extensions = ws.scope.get("extensions") or {}
        server_wire: StreamWire | None = extensions.get(WIRE_EXTENSION)
        hand_off: Callable[[StreamSession], Callable[[bool], None]] | None = extensions.get(
            HANDOFF_EXTENSION
        )
        fallback = None if server_wire is not None else AsgiWire(ws)
        self.wire = server_wire or fallback
        await self._open(caller)
        if server_wire is not None and hand_off is not None:
            # From here on the server passes frames to `received`; this coroutine, and
            # the framework's stack under it, can end.
            self.ws = None
            self._set_reading = hand_off(self)
            return
        try:
            await self._read_forever(ws)
        finally:
            self.disconnected(0)
            if fallback is not None:
                await fallback.stop()

    async def _open(self, caller: Caller) -> None:
        """Welcome the caller and register its connection with the hub."""
        assert caller.administration_id is not None and self.wire is not None
        hub = self.ctx.hub
        async with self.ctx.db.read_sessions() as session:
            reach = await reach_of(session, administration_id=caller.administration_id)
            head = await events.head(session)
            epoch = await events.epoch(session)
        connection = Connection(
            key_id=caller.key_id,
            administration_id=caller.administration_id,
            outbox=Outbox(self.ctx.outbox_limit, self.wire, hub.flusher),
            close=self._close,
        )
        self.connection = connection
        if hub.flusher.on_sent is None:  # one count per write pass, not per connection
            hub.flusher.on_sent = self.ctx.metrics.events_delivered.inc
        welcome = WelcomeFrame(
            administration=caller.administration or "", role=caller.role, head=head, epoch=epoch
        )
        connection.outbox.push(welcome.encode())
        hub.attach(connection, ReachViewer(reach))
        self.ctx.metrics.open_connections.inc()

    def _close(self, code: int, reason: str) -> None:
        self._backlog.clear()
        if self.wire is not None:
            self.wire.close(code, reason[:120])

    async def _read_forever(self, ws: WebSocket) -> None:
        """Feed ``received`` under a server that does not take the connection off our hands."""
        while not self._ended:
            try:
                message = await ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            self.received(message.get("text"))
            if self._busy is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(self._busy)

    def disconnected(self, code: int) -> None:
        """The connection is over: leave the hub and stop whatever runs for it."""
        if self._ended:
            return
        self._ended = True
        self._backlog.clear()
        connection = self.connection
        if connection is not None:
            self.ctx.hub.detach(connection)
            connection.outbox.close()
            self.ctx.metrics.open_connections.dec()
        for task in self._tasks or ():
            task.cancel()

    def received(self, text: str | None) -> None:
        """A frame from the client (None: a binary one)."""
        if self._ended or self.connection is None or self.connection.closed:
            return
        if self._busy is not None:
            self._backlog.append(text)
            if len(self._backlog) >= BACKLOG_LIMIT and self._set_reading is not None:
                self._set_reading(False)  # the client is ahead of us: TCP makes it wait
            return
        self._take(text)

    def _take(self, text: str | None) -> None:
        if text is None:
            self._on_malformed(None, "frames must be JSON text")
            return
        if len(text) * 4 > MAX_FRAME_BYTES and len(text.encode()) > MAX_FRAME_BYTES:
            assert self.connection is not None
            self.ctx.hub.kill(self.connection, CLOSE_TOO_BIG, "frame over 64 KiB")
            return
        try:
            self._handle(text)
        except Malformed as problem:
            self._on_malformed(None, str(problem))

    def _settled(self, task: asyncio.Task[None]) -> None:
        """A subscribe finished: take the frames that waited for it, in order."""
        self._busy = None
        backlog = self._backlog
        while backlog and self._busy is None and not self._ended:
            self._take(backlog.pop(0))
        if self._busy is None and self._set_reading is not None and not self._ended:
            self._set_reading(True)

    def _on_malformed(self, sub_id: str | None, detail: str) -> None:
        now = time.monotonic()
        if self._malformed is None:
            self._malformed = deque()
        self._malformed.append(now)
        while self._malformed and self._malformed[0] < now - MALFORMED_WINDOW:
            self._malformed.popleft()
        if len(self._malformed) > MALFORMED_LIMIT:
            assert self.connection is not None
            self.ctx.hub.kill(self.connection, CLOSE_POLICY, "too many malformed frames")
            return
        self._error(sub_id, 400, detail)

    def _error(self, sub_id: str | None, status: int, detail: str) -> None:
        self._push(ErrorFrame(id=sub_id, status=status, detail=detail).encode())

    def _push(self, frame: str) -> None:
        assert self.connection is not None
        if not self.connection.outbox.push(frame):
            self.ctx.hub.too_slow(self.connection)

    def _handle(self, text: str) -> None:
        try:
            frame = loads(text)
        except ValueError:
            raise Malformed("not JSON") from None
        if not isinstance(frame, dict):
            raise Malformed("a frame must be a JSON object")
        kind = frame.get("type")
        if kind == "ping":
            self._push(PongFrame().encode())
        elif kind == "subscribe":
            sub_id = frame.get("id")
            if not isinstance(sub_id, str) or not 1 <= len(sub_id) <= 64:
                raise Malformed("subscribe needs an id: a string of 1 to 64 characters")
            if not isinstance(frame.get("operation"), str):
                raise Malformed("subscribe needs an operation")
            # Frames are handled in order: the subscription exists before the next frame (an
            # unsubscribe, say) is taken; only its replay runs alongside.
            self._busy = self._start(self._subscribe(sub_id, frame))
            self._busy.add_done_callback(self._settled)
        elif kind == "unsubscribe":
            sub_id = frame.get("id")
            if not isinstance(sub_id, str):
                raise Malformed("unsubscribe needs an id")
            assert self.connection is not None
            subscription = self.connection.subscriptions.get(sub_id)
            if subscription is None:
                self._error(sub_id, 404, "no such subscription")
            else:
                self.ctx.hub.unsubscribe(subscription)
                self._push(UnsubscribedFrame(id=sub_id).encode())
        else:
            raise Malformed("unknown frame type")

    def _start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- subscriptions ------------------------------------------------------------------

    async def _subscribe(self, sub_id: str, frame: dict[str, Any]) -> None:
        try:
            await self._start_subscription(sub_id, frame)
        except Rejected as rejection:
            self._error(sub_id, rejection.status, rejection.detail)
        except NotFound:
            self._error(sub_id, 404, "No such operation")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("subscription failed")
            self._error(sub_id, 503, "Try again shortly")

    async def _start_subscription(self, sub_id: str, frame: dict[str, Any]) -> None:
        caller, connection, hub = self.caller, self.connection, self.ctx.hub
        assert caller is not None and connection is not None
        try:
            request = SubscribeFrame.model_validate(frame)
        except ValidationError as exc:
            raise Rejected(422, _first_error(exc)) from None
        if sub_id in connection.subscriptions:
            raise Rejected(422, "a subscription with this id exists on this connection")
        code, since = request.operation, request.since
        stream_filter = StreamFilter.of(request.filter)
        assert caller.administration_id is not None
        async with self.ctx.db.read_sessions() as session:
            op, reach = await operations.open_operation_with_reach(
                session, caller=caller, code=code
            )
            committed_head = await events.head(session)
        # What follows runs with no await: the view, the head and the registration agree.
        # The view is renewed now (a participant added a moment ago sees its events at once).
        hub.viewers[caller.administration_id] = ReachViewer(reach)
        # A `since` above the committed head belongs to another event log (epoch).
        recovered = since is None or since <= committed_head
        replay = since is not None and recovered
        # Live delivery stands at `delivered`: every later event reaches this subscription
        # through the hub, every earlier one through the replay (or is before "now").
        delivered = self.ctx.delivered_head()
        subscription = Subscription(
            id=sub_id,
            connection=connection,
            operation_id=op.id,
            accepts=None if stream_filter.is_empty() else stream_filter.accepts,
            last_seq=since if replay and since is not None else delivered,
            replaying=replay,
        )
        hub.subscribe(subscription)
        self._push(SubscribedFrame(id=sub_id, head=delivered, recovered=recovered).encode())
        self.ctx.audit.record(
            caller=caller,
            action="stream.subscribe",
            operation=op.code,
            query={"since": since, "filter": stream_filter.describe()},
        )
        if replay:
            self._start(self._replay(subscription, stream_filter))

    async def _replay(self, subscription: Subscription, stream_filter: StreamFilter) -> None:
        caller, connection = self.caller, subscription.connection
        assert caller is not None and caller.administration_id is not None
        where = stream_filter.clauses()
        while not connection.closed and subscription.id in connection.subscriptions:
            async with self.ctx.db.read_sessions() as session:
                reach = await reach_of(session, administration_id=caller.administration_id)
                rows = await events.read_visible(
                    session,
                    reach=reach,
                    since=subscription.last_seq,
                    operation_id=subscription.operation_id,
                    limit=REPLAY_PAGE,
                    where=where,
                )
            for seq, payload in rows:
                await connection.outbox.push_paced(subscription.prefix + payload + "}", seq)
                subscription.last_seq = seq
            if len(rows) < REPLAY_PAGE:
                break
        self.ctx.hub.finish_replay(subscription)


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


async def serve(websocket: WebSocket, context: StreamContext) -> None:
    """Run one stream connection to its end."""
    await StreamSession(websocket, context).run()


async def refresh_forever(hub: Hub, db: Database, *, interval: float = 1.0) -> None:
    """Apply revocations, expiries and participant changes to open connections: keys
    that no longer work are closed with 4001, and each administration's view is reloaded.
    Runs on every process, so a change made anywhere takes effect everywhere."""
    while True:
        await asyncio.sleep(interval)
        try:
            await refresh(hub, db)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("stream refresh failed; retrying", exc_info=True)


async def refresh(hub: Hub, db: Database) -> None:
    connections = list(hub.connections)
    if not connections:
        return
    key_ids = {c.key_id for c in connections}
    administration_ids = {c.administration_id for c in connections}
    async with db.read_sessions() as session:
        usable = set(
            (
                await session.execute(
                    select(ApiKey.id).where(
                        ApiKey.id.in_(key_ids),
                        ApiKey.revoked_at.is_(None),
                        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > utcnow()),
                    )
                )
            ).scalars()
        )
        reaches = await reaches_of(session, administration_ids=administration_ids)
    for administration_id, reach in reaches.items():
        hub.viewers[administration_id] = ReachViewer(reach)
    for connection in connections:
        if connection.key_id not in usable:
            hub.kill(connection, CLOSE_UNAUTHORIZED, "key revoked or expired")
