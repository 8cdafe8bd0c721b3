"""The hub: which connection wants which event. ``dispatch`` is synchronous and never
waits for a client: it hands the same encoded payload to every subscription whose
administration may see the event and whose filter accepts it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from app.jsonenc import dumps
from app.realtime.events import AlertFacts, LiveEvent
from app.realtime.outbox import Outbox


class Viewer(Protocol):
    """What an administration may see; supplied by the service layer."""

    def may_see(self, facts: AlertFacts) -> bool: ...


class Closer(Protocol):
    def __call__(self, code: int, reason: str) -> None: ...


SLOW_CONSUMER = 4008


@dataclass(eq=False, slots=True)
class Subscription:
    id: str
    connection: Connection
    operation_id: int
    accepts: Callable[[AlertFacts], bool]
    # The highest seq queued for this subscription: live events at or below it are dropped,
    # which is what makes the hand-over from replay to live free of duplicates.
    last_seq: int = 0
    replaying: bool = False
    held: list[LiveEvent] = field(default_factory=list)
    prefix: str = ""

    def __post_init__(self) -> None:
        self.prefix = '{"type":"event","sub":' + dumps(self.id).decode() + ',"event":'

    def frame(self, event: LiveEvent) -> str:
        return self.prefix + event.payload + "}"


@dataclass(eq=False, slots=True)
class Connection:
    key_id: str
    administration_id: int
    outbox: Outbox
    close: Closer
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    last_sent_seq: int = 0
    closed: bool = False


class Hub:
    def __init__(self, *, hold_limit: int = 10_000) -> None:
        self.hold_limit = hold_limit
        self.connections: set[Connection] = set()
        self.viewers: dict[int, Viewer] = {}
        self._by_operation: dict[int, set[Subscription]] = {}
        self.delivered = 0

    # --- connections and subscriptions ----------------------------------------------

    def attach(self, connection: Connection, viewer: Viewer) -> None:
        self.connections.add(connection)
        self.viewers[connection.administration_id] = viewer

    def detach(self, connection: Connection) -> None:
        connection.closed = True
        self.connections.discard(connection)
        for subscription in list(connection.subscriptions.values()):
            self.unsubscribe(subscription)

    def subscribe(self, subscription: Subscription) -> None:
        subscription.connection.subscriptions[subscription.id] = subscription
        self._by_operation.setdefault(subscription.operation_id, set()).add(subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.connection.subscriptions.pop(subscription.id, None)
        subs = self._by_operation.get(subscription.operation_id)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._by_operation[subscription.operation_id]

    def finish_replay(self, subscription: Subscription) -> None:
        """Queue what arrived live during the replay, after what the replay sent."""
        held, subscription.held = subscription.held, []
        subscription.replaying = False
        for event in held:
            self._queue(subscription, event)

    def kill(self, connection: Connection, code: int, reason: str) -> None:
        if connection.closed:
            return
        self.detach(connection)
        connection.close(code, reason)

    # --- fan-out ----------------------------------------------------------------------

    def dispatch(self, event: LiveEvent) -> None:
        subscriptions = self._by_operation.get(event.facts.operation_id)
        if not subscriptions:
            return
        verdicts: dict[int, bool] = {}
        for subscription in list(subscriptions):
            administration = subscription.connection.administration_id
            visible = verdicts.get(administration)
            if visible is None:
                viewer = self.viewers.get(administration)
                visible = verdicts[administration] = viewer is not None and viewer.may_see(
                    event.facts
                )
            if visible and event.seq > subscription.last_seq and subscription.accepts(event.facts):
                self._queue(subscription, event)

    def _queue(self, subscription: Subscription, event: LiveEvent) -> None:
        connection = subscription.connection
        if connection.closed or event.seq <= subscription.last_seq:
            return
        if subscription.replaying:
            if len(subscription.held) >= self.hold_limit:
                self._too_slow(connection)
            else:
                subscription.held.append(event)
            return
        if connection.outbox.push(subscription.frame(event), event.seq):
            subscription.last_seq = event.seq
            self.delivered += 1
        else:
            self._too_slow(connection)

    def _too_slow(self, connection: Connection) -> None:
        # The reason carries a seq up to which every subscription was sent everything: the
        # client resumes each of them from there and misses nothing.
        self.kill(connection, SLOW_CONSUMER, f"too slow; last seq {safe_resume_seq(connection)}")

    def close_all(self, code: int, reason: str) -> None:
        for connection in list(self.connections):
            self.kill(connection, code, reason)


def safe_resume_seq(connection: Connection) -> int:
    """The highest seq N such that no event at or below N is still unsent on any of the
    connection's subscriptions (queued, or held back behind a replay)."""
    safe = connection.last_sent_seq
    waiting = [connection.outbox.lowest_seq()]
    waiting += [sub.held[0].seq for sub in connection.subscriptions.values() if sub.held]
    for seq in waiting:
        if seq is not None:
            safe = min(safe, seq - 1)
    return max(safe, 0)
