"""Subscribing while writers keep committing (API.md section 8, item 3): a subscription
with ``since`` yields every visible event after it exactly once, in ``seq`` order, and a
live one every visible event after the head it was confirmed with, whenever it starts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.realtime.conftest import FRAME_TIMEOUT, Key, Stream, World, event_frame, seqs
from tests.server import RelayServer

pytestmark = pytest.mark.slow

WRITERS = 8
WRITE_FOR = 2.0
SUBSCRIBE_AT = (0.0, 0.4, 0.9, 1.4, 1.9)  # seconds after the writers start


@dataclass
class Cast:
    """An operation of a coordinator and three participants, with writers and readers."""

    operation: str
    writers: list[Key]
    readers: list[Key]
    audiences: list[dict[str, Any]]


async def cast(world: World, tag: str = "", *, readers_each: int = 1) -> Cast:
    ocu = await world.administration(f"OCU{tag}", "KR")
    members = [
        await world.administration(f"M{i}{tag}", t) for i, t in enumerate(("KR", "HK", "TH"))
    ]
    operation = await world.operation(f"OP{tag}", coordinator=ocu, participants=members)
    writers = [await world.key(members[i % 3]) for i in range(WRITERS - 1)]
    writers.append(await world.key(ocu))
    readers = [await world.key(code) for code in (ocu, *members) for _ in range(readers_each)]
    audiences = [
        {"scope": "operation"},
        {"scope": "restricted", "recipients": [members[1]]},
        {"scope": "restricted", "recipients": [members[2]]},
        {"scope": "operation"},
    ]
    return Cast(operation, writers, readers, audiences)


async def write(world: World, key: Key, team: Cast, stop_at: float) -> int:
    """Report alerts (and comment on every third) until ``stop_at``; returns how many."""
    loop = asyncio.get_running_loop()
    n = 0
    while loop.time() < stop_at:
        audience = team.audiences[n % len(team.audiences)]
        alert = await world.report(key, team.operation, audience=audience, reference=f"r{n}")
        if n % 3 == 2:
            await world.post(key, f"/v1/alerts/{alert['id']}/comments", {"body": f"c{n}"})
        n += 1
    return n


async def write_all(world: World, team: Cast, stop_at: float) -> None:
    written = await asyncio.gather(*(write(world, key, team, stop_at) for key in team.writers))
    assert sum(written) >= 2 * WRITERS, written


# --- replay handed over to live ----------------------------------------------------------


@dataclass
class Subscriber:
    key: Key
    name: str
    since: int
    frames: list[dict[str, Any]] = field(default_factory=list)
    target: asyncio.Future[int] = field(default_factory=asyncio.Future)


async def follow(server: RelayServer, operation: str, sub: Subscriber) -> None:
    """Subscribe from ``sub.since`` and read until the event whose seq is ``sub.target``."""
    async with Stream.open(server.base_url, headers=sub.key.headers) as stream:
        await stream.subscribe(sub.name, operation, since=sub.since)
        while not (sub.target.done() and seqs(sub.frames)[-1:] >= [sub.target.result()]):
            try:
                sub.frames.append(await stream.recv(within=1.0))
            except TimeoutError:
                if sub.target.done():
                    return  # the last event is not coming: the comparison will tell
        await stream.quiet(0.3)


async def test_since_during_concurrent_writes_yields_every_event_once_in_order(
    server: RelayServer, world: World
) -> None:
    """Waves of subscribers, all from the head before the writers started."""
    team = await cast(world)
    start = await world.head(team.readers[0])
    loop = asyncio.get_running_loop()
    began = loop.time()
    writing = asyncio.create_task(write_all(world, team, began + WRITE_FOR))
    subscribers: list[Subscriber] = []
    following = []
    for wave, at in enumerate(SUBSCRIBE_AT):
        await asyncio.sleep(max(0.0, began + at - loop.time()))
        for key in team.readers:
            sub = Subscriber(key, f"{key.administration}@{wave}", start)
            subscribers.append(sub)
            following.append(asyncio.create_task(follow(server, team.operation, sub)))
    await writing
    logged = {
        k.id: await world.events(k, since=start, operation=team.operation) for k in team.readers
    }
    for sub in subscribers:
        sub.target.set_result(logged[sub.key.id][-1]["seq"])
    await asyncio.wait_for(asyncio.gather(*following), 30)

    for sub in subscribers:
        got = sub.frames
        expected = [event_frame(sub.name, e) for e in logged[sub.key.id]]
        assert seqs(got) == sorted(set(seqs(got))), f"{sub.name}: out of order or repeated"
        missing = sorted(set(seqs(expected)) - set(seqs(got)))
        extra = sorted(set(seqs(got)) - set(seqs(expected)))
        assert (missing, extra) == ([], []), sub.name
        assert got == expected, sub.name


# --- live from the confirmed head --------------------------------------------------------

KEEP = 2  # live subscriptions left open on a connection; older ones are ended
SUBSCRIBE_EVERY = 0.005
ROUNDS = 2  # the race is narrow: each round is another chance to show a gap
FIRST = asyncio.FIRST_COMPLETED


@dataclass
class Subscriptions:
    """What one connection saw while subscribing again and again."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0  # subscriptions live0 .. live<sent - 1>

    def ended_early(self, sub: str) -> bool:
        return int(sub.removeprefix("live")) < self.sent - KEEP


async def subscribe_repeatedly(
    server: RelayServer, key: Key, operation: str, until: float, target: asyncio.Future[int]
) -> Subscriptions:
    """On one connection, subscribe live (no ``since``) every SUBSCRIBE_EVERY seconds until
    ``until``, ending all but the last KEEP subscriptions as it goes, while reading every
    frame; stop reading a little after the event ``target`` arrived."""
    seen = Subscriptions()
    confirmed: dict[str, asyncio.Event] = {}
    loop = asyncio.get_running_loop()

    async with Stream.open(server.base_url, headers=key.headers) as stream:

        async def read() -> None:
            last_seq = 0
            while not (target.done() and last_seq >= target.result()):
                try:
                    frame = await stream.recv(within=0.5)
                except TimeoutError:
                    if target.done():
                        return  # the last event will not come (to any subscription still open)
                    continue
                if frame["type"] == "subscribed":
                    confirmed[frame["id"]].set()
                elif frame["type"] == "event":
                    last_seq = frame["event"]["seq"]
                if frame["type"] != "unsubscribed":
                    seen.frames.append(frame)
            # The other subscriptions' frames of the last event.
            seen.frames += await stream.drain()

        reading = asyncio.create_task(read())
        while loop.time() < until:
            sub = f"live{seen.sent}"
            confirmed[sub] = asyncio.Event()
            await stream.send({"type": "subscribe", "id": sub, "operation": operation})
            seen.sent += 1
            if seen.sent > KEEP:
                # Only once confirmed: an unsubscribe overtaking its subscribe is another
                # matter (see test_subscriptions).
                old = f"live{seen.sent - KEEP - 1}"
                waiting = asyncio.create_task(confirmed[old].wait())
                await asyncio.wait({waiting, reading}, timeout=FRAME_TIMEOUT, return_when=FIRST)
                if reading.done():
                    reading.result()  # the reader's failure, if it failed
                assert waiting.done(), f"{old} was not confirmed"
                await stream.send({"type": "unsubscribe", "id": old})
            await asyncio.sleep(SUBSCRIBE_EVERY)
        await asyncio.wait_for(reading, 30)
    return seen


def gaps(seen: Subscriptions, logged: list[dict[str, Any]]) -> list[str]:
    """Subscriptions whose events do not start right after the head they were confirmed
    with, or skip or repeat one; those still open at the end must have had every one."""
    found = []
    frames = seen.frames
    confirmations = [f for f in frames if f["type"] == "subscribed"]
    assert len(confirmations) == seen.sent >= 10, "too few subscriptions"
    for confirmation in confirmations:
        sub, head = confirmation["id"], confirmation["head"]
        got = [f for f in frames if f.get("sub") == sub]
        expected = [event_frame(sub, e) for e in logged if e["seq"] > head]
        if seen.ended_early(sub):  # what came must be where it began, without a hole
            expected = expected[: len(got)]
        if got and frames.index(confirmation) > frames.index(got[0]):
            found.append(f"{sub}: an event came before its confirmation")
        elif got != expected:
            found.append(f"{sub} (head {head}): got {seqs(got)[:5]}, not {seqs(expected)[:5]}")
    return found


async def live_round(server: RelayServer, world: World, tag: str) -> list[str]:
    team = await cast(world, tag, readers_each=2)
    start = await world.head(team.readers[0])
    loop = asyncio.get_running_loop()
    until = loop.time() + WRITE_FOR / 2
    targets = {key.id: loop.create_future() for key in team.readers}
    subscribing = [
        asyncio.create_task(
            subscribe_repeatedly(server, key, team.operation, until, targets[key.id])
        )
        for key in team.readers
    ]
    await write_all(world, team, until)
    logged = {
        k.id: await world.events(k, since=start, operation=team.operation) for k in team.readers
    }
    for key in team.readers:
        targets[key.id].set_result(logged[key.id][-1]["seq"])
    received = await asyncio.gather(*subscribing)
    return [
        f"{key.administration}: {gap}"
        for key, seen in zip(team.readers, received, strict=True)
        for gap in gaps(seen, logged[key.id])
    ]


async def test_live_subscription_yields_every_event_after_the_head_it_was_confirmed_with(
    server: RelayServer, world: World
) -> None:
    """A subscription without ``since`` delivers every visible event above the head in
    its ``subscribed`` frame: a client that reads history up to that head misses nothing."""
    found: list[str] = []
    for tag in map(str, range(ROUNDS)):
        found = await live_round(server, world, tag)
        if found:
            break
    assert found == []
