"""The hub: which connection wants which event. ``dispatch`` is synchronous and never
waits for a client: it hands the same encoded payload to every subscription whose
administration may see the event and whose filter accepts it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from app.jsonenc import dumps
from app.realtime.events import AlertFacts, LiveEvent
from app.realtime.outbox import Flusher, Outbox


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
    accepts: Callable[[AlertFacts], bool] | None  # None: no filter, every event
    # The highest seq queued for this subscription: live events at or below it are dropped,
    # which is what makes the hand-over from replay to live free of duplicates.
    last_seq: int = 0
    replaying: bool = False
    held: list[LiveEvent] = field(default_factory=list)
    prefix: str = ""

    def __post_init__(self) -> None:
        self.prefix = '{"type":"event","sub":' + dumps(self.id).decode() + ',"event":'

    def frame(self, event: LiveEvent) -> bytes:
        return (self.prefix + event.payload + "}").encode()


@dataclass(eq=False, slots=True)
class Connection:
    key_id: str
    administration_id: int
    outbox: Outbox
    close: Closer
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    closed: bool = False

    @property
    def last_sent_seq(self) -> int:
        """The highest event ``seq`` written to the connection."""
        return self.outbox.sent_seq


class Hub:
    def __init__(self, *, hold_limit: int = 10_000) -> None:
        self.hold_limit = hold_limit
        self.connections: set[Connection] = set()
        self.viewers: dict[int, Viewer] = {}
        self._by_operation: dict[int, set[Subscription]] = {}
        self.flusher = Flusher()  # writes the outboxes of every connection
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
            self._queue(subscription, event, subscription.frame(event))

    def kill(self, connection: Connection, code: int, reason: str) -> None:
        if connection.closed:
            return
        self.detach(connection)
        # Nothing queued leaves after this: the reason names what was sent, then the close.
        connection.outbox.close()
        connection.close(code, reason)

    # --- fan-out ----------------------------------------------------------------------

    def dispatch(self, event: LiveEvent) -> None:
        subscriptions = self._by_operation.get(event.facts.operation_id)
        if not subscriptions:
            return
        facts, seq = event.facts, event.seq
        verdicts: dict[int, bool] = {}
        # Subscriptions with the same id (most clients call theirs "s1") share one encoded
        # frame: the event is encoded once, not once per connection.
        frames: dict[str, bytes] = {}
        for subscription in list(subscriptions):
            if seq <= subscription.last_seq:
                continue
            administration = subscription.connection.administration_id
            visible = verdicts.get(administration)
            if visible is None:
                viewer = self.viewers.get(administration)
                visible = verdicts[administration] = viewer is not None and viewer.may_see(facts)
            if not visible:
                continue
            accepts = subscription.accepts
            if accepts is not None and not accepts(facts):
                continue
            frame = frames.get(subscription.prefix)
            if frame is None:
                frame = frames[subscription.prefix] = subscription.frame(event)
            connection = subscription.connection
            if subscription.replaying or connection.closed:
                self._queue(subscription, event, frame)
            elif connection.outbox.push(frame, seq):  # _queue's common case, inline
                subscription.last_seq = seq
                self.delivered += 1
            else:
                self.too_slow(connection)

    def _queue(self, subscription: Subscription, event: LiveEvent, frame: bytes) -> None:
        connection = subscription.connection
        if connection.closed or event.seq <= subscription.last_seq:
            return
        if subscription.replaying:
            if len(subscription.held) >= self.hold_limit:
                self.too_slow(connection)
            else:
                subscription.held.append(event)
            return
        if connection.outbox.push(frame, event.seq):
            subscription.last_seq = event.seq
            self.delivered += 1
        else:
            self.too_slow(connection)

    def too_slow(self, connection: Connection) -> None:
        """Close a connection whose outbox is full (4008)."""
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
