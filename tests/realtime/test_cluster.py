"""Several server processes on one store (API.md sections 7, 8 and 12): subscribers on
every process receive what is committed on any, a process killed mid-stream is survived by
resuming on another from the last ``seq`` seen, and a process stopping closes with 1001."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from app.realtime.broker import RedisBroker
from tests.api import seizure
from tests.realtime.conftest import (
    REDIS_URL,
    IceBreak,
    Key,
    Stream,
    World,
    event_frame,
    redis_url,
    seqs,
)
from tests.server import RelayServer, admin_headers
from tests.stores import fresh_database

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def processes(
    database_url: str, directory: Path, count: int, env: dict[str, str], name: str = "relay"
) -> AsyncIterator[list[RelayServer]]:
    """``count`` ready processes on ``database_url``, stopped on the way out."""
    servers = [
        RelayServer(database_url, directory / f"{name}-{n}.log", env=env) for n in range(count)
    ]
    try:
        await asyncio.gather(*(s.start() for s in servers))
        yield servers
    finally:
        await asyncio.gather(*(s.stop() for s in servers))


@contextlib.asynccontextmanager
async def brokered(
    store: str, database_url: str, directory: Path
) -> AsyncIterator[list[RelayServer]]:
    """Two processes on one PostgreSQL database, joined by a Redis broker."""
    if store != "postgres":
        pytest.skip("several processes with a broker share a PostgreSQL store")
    env = {"RELAY_BROKER_URL": await redis_url()}
    async with processes(database_url, directory, 2, env) as servers:
        yield servers


@pytest.fixture(scope="module")
async def cluster(
    store: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[RelayServer]]:
    async with brokered(store, database_url, tmp_path_factory.mktemp("cluster")) as servers:
        yield servers


@pytest.fixture
async def doomed_cluster(
    store: str, database_url: str, tmp_path: Path
) -> AsyncIterator[list[RelayServer]]:
    """For a test that kills one of them."""
    async with brokered(store, database_url, tmp_path) as servers:
        yield servers


async def broker_listeners() -> int:
    """The most connections listening on any one of the broker's channels."""
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        channels = await redis.pubsub_channels(f"{RedisBroker.CHANNEL}*")
        counts = await redis.pubsub_numsub(*channels) if channels else []
    finally:
        await redis.aclose()
    return max((int(count) for _, count in counts), default=0)


@contextlib.asynccontextmanager
async def worlds(servers: list[RelayServer]) -> AsyncIterator[list[World]]:
    """One world set up through the first server, reachable through each."""
    admin = await admin_headers(servers[0])
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(s.client()) for s in servers]
        first = World(clients[0], admin)
        yield [first.via(client) for client in clients]


async def test_subscribers_on_either_process_receive_exactly_what_they_may_see(
    cluster: list[RelayServer],
) -> None:
    a, b = cluster
    async with worlds(cluster) as (on_a, on_b):
        ice = await on_a.ice_break()
        start = await on_a.head(ice.kr)
        readers = {
            "ocu@a": (a, ice.ocu),
            "ocu@b": (b, ice.ocu),
            "hk@a": (a, ice.hk),
            "th@b": (b, ice.th),
            "kr@b": (b, ice.kr),
        }
        async with contextlib.AsyncExitStack() as stack:
            streams = {
                name: await stack.enter_async_context(
                    Stream.open(server.base_url, headers=key.headers)
                )
                for name, (server, key) in readers.items()
            }
            for stream in streams.values():
                await stream.subscribe("op", ice.operation)
            # One event log, one epoch, whichever process is asked.
            assert len({s.welcome["epoch"] for s in streams.values()}) == 1
            assert await broker_listeners() >= 2
            to_hk = {"scope": "restricted", "recipients": [ice.codes["hk"]]}
            to_th = {"scope": "restricted", "recipients": [ice.codes["th"]]}
            for n in range(3):
                for world in (on_a, on_b):
                    alert = await world.report(ice.kr, ice.operation, audience=to_hk)
                    await world.report(ice.hk, ice.operation, audience=to_th)
                    await world.report(ice.th, ice.operation)
                    other = on_b if world is on_a else on_a
                    await other.post(
                        ice.hk, f"/v1/alerts/{alert['id']}/comments", {"body": f"c{n}"}
                    )
            last = await on_b.report(ice.ocu, ice.operation)
            received = {
                name: await stream.events_until(last["seq"]) for name, stream in streams.items()
            }
            for stream in streams.values():
                await stream.quiet(0.3)
        for name, (_, key) in readers.items():
            logged = await on_a.events(key, since=start, operation=ice.operation)
            assert received[name] == [event_frame("op", e) for e in logged], name
    counts = {name: len(frames) for name, frames in received.items()}
    assert counts == {"ocu@a": 25, "ocu@b": 25, "hk@a": 25, "th@b": 13, "kr@b": 19}


async def test_revoking_a_key_through_one_process_closes_its_streams_on_the_other(
    cluster: list[RelayServer],
) -> None:
    b = cluster[1]
    async with worlds(cluster) as (on_a, _):
        ice = await on_a.ice_break()
        async with Stream.open(b.base_url, headers=ice.hk.headers) as stream:
            await stream.subscribe("op", ice.operation)
            revoked_at = time.monotonic()
            await on_a.revoke(ice.hk)
            closed = await stream.closed(2.0)
            elapsed = time.monotonic() - revoked_at
    assert (closed.code, closed.frames) == (4001, [])
    assert elapsed < 2.0


@dataclass
class Follower:
    """A client of the process that will be killed; it resumes on the survivor."""

    key: Key
    name: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    target: asyncio.Future[int] = field(default_factory=asyncio.Future)

    def done(self) -> bool:
        return self.target.done() and seqs(self.frames)[-1:] >= [self.target.result()]


async def follow(
    follower: Follower, servers: list[RelayServer], operation: str, since: int
) -> None:
    """Subscribe from ``since`` on each server in turn, resuming from the last seq seen
    whenever a connection drops, until the event ``follower.target`` arrives."""
    for server in servers:
        with contextlib.suppress(ConnectionClosed):
            async with Stream.open(server.base_url, headers=follower.key.headers) as stream:
                follower.connections += 1
                await stream.subscribe(follower.name, operation, since=since)
                while not follower.done():
                    try:
                        follower.frames.append(await stream.recv(within=1.0))
                    except TimeoutError:
                        if follower.target.done():
                            return  # the last event is not coming: the comparison will tell
                await stream.quiet(0.3)
                return
        since = seqs(follower.frames)[-1] if follower.frames else since
    raise AssertionError(f"{follower.name} found no server to resume on")


async def keep_writing(world: World, ice: IceBreak, stop: asyncio.Event) -> int:
    """Report until ``stop`` is set or the server is gone; returns how many were created."""
    keys = (ice.kr, ice.hk, ice.th)
    audiences = ({"scope": "operation"}, {"scope": "restricted", "recipients": [ice.codes["th"]]})
    n = 0
    while not stop.is_set():
        body = seizure(reference=f"k{n}", audience=audiences[n % 2])
        try:
            response = await world.client.post(
                f"/v1/operations/{ice.operation}/alerts", json=body, headers=keys[n % 3].headers
            )
        except httpx.TransportError:
            return n
        assert response.status_code == 201, response.text
        n += 1
    return n


async def test_clients_of_a_killed_process_resume_on_the_other_without_gap_or_duplicate(
    doomed_cluster: list[RelayServer],
) -> None:
    doomed, survivor = doomed_cluster
    async with worlds(doomed_cluster) as (on_doomed, on_survivor):
        ice = await on_doomed.ice_break()
        start = await on_survivor.head(ice.ocu)
        followers = [Follower(ice.ocu, "ocu"), Follower(ice.hk, "hk"), Follower(ice.th, "th")]
        reading = [
            asyncio.create_task(follow(f, [doomed, survivor], ice.operation, start))
            for f in followers
        ]
        stop = asyncio.Event()
        writing = [
            asyncio.create_task(keep_writing(world, ice, stop))
            for world in (on_doomed, on_doomed, on_survivor, on_survivor)
        ]
        await asyncio.sleep(1.0)
        seen_before_kill = {f.name: len(f.frames) for f in followers}
        await doomed.kill()
        await asyncio.sleep(1.0)
        stop.set()
        written = await asyncio.gather(*writing)
        logged = {f.name: await on_survivor.events(f.key, since=start) for f in followers}
        for f in followers:
            f.target.set_result(logged[f.name][-1]["seq"])
        await asyncio.wait_for(asyncio.gather(*reading), 20)

    assert min(written) > 0, written
    for f in followers:
        assert seen_before_kill[f.name] > 0, f"{f.name} saw nothing before the kill"
        assert f.connections == 2, f"{f.name} was not cut off by the kill"
        assert seqs(f.frames) == sorted(set(seqs(f.frames))), f"{f.name}: repeated or out of order"
        assert f.frames == [event_frame(f.name, e) for e in logged[f.name]], f.name


async def test_stopping_a_process_closes_its_streams_with_1001(
    database_url: str, tmp_path: Path
) -> None:
    async with processes(database_url, tmp_path, 1, {}) as [server], worlds([server]) as [world]:
        ice = await world.ice_break()
        async with (
            Stream.open(server.base_url, headers=ice.kr.headers) as subscribed,
            Stream.open(server.base_url, token=ice.hk.token) as idle,
        ):
            await subscribed.subscribe("op", ice.operation)
            stopping = asyncio.create_task(server.stop())
            closes = await asyncio.gather(subscribed.closed(), idle.closed())
            await stopping
    assert [(c.code, c.frames) for c in closes] == [(1001, []), (1001, [])]


async def test_without_a_broker_processes_on_one_sqlite_file_deliver_each_others_events(
    store: str, database_url: str, tmp_path: Path
) -> None:
    if store != "sqlite":
        pytest.skip("the brokerless case of several processes is the SQLite one")
    async with processes(database_url, tmp_path, 2, {}) as servers, worlds(servers) as worlds_:
        (a, b), (on_a, on_b) = servers, worlds_
        ice = await on_a.ice_break()
        async with (
            Stream.open(a.base_url, headers=ice.hk.headers) as hk_on_a,
            Stream.open(b.base_url, headers=ice.th.headers) as th_on_b,
        ):
            await hk_on_a.subscribe("op", ice.operation)
            await th_on_b.subscribe("op", ice.operation)
            delays = []
            for writer, remote_reader in ((on_a, th_on_b), (on_b, hk_on_a), (on_a, th_on_b)):
                posted_at = time.monotonic()
                alert = await writer.report(ice.kr, ice.operation)
                [remote] = await remote_reader.events(1)
                delays.append(time.monotonic() - posted_at)
                local_reader = hk_on_a if remote_reader is th_on_b else th_on_b
                [local] = await local_reader.events(1)
                assert remote["event"]["alert"] == local["event"]["alert"] == alert
    assert max(delays) < 2.0, delays


async def test_deployments_on_distinct_redis_databases_do_not_hear_each_other(
    store: str, database_url: str, tmp_path: Path
) -> None:
    if store != "postgres":
        pytest.skip("deployments with a broker run on PostgreSQL")
    url = await redis_url()
    other_url = f"{REDIS_URL}/{int(url.rsplit('/', 1)[1]) % 15 + 1}"
    async with (
        fresh_database("postgres", tmp_path) as own_database,
        processes(own_database, tmp_path, 1, {"RELAY_BROKER_URL": url}, "ours") as [ours],
        processes(database_url, tmp_path, 1, {"RELAY_BROKER_URL": other_url}, "theirs") as [theirs],
        worlds([ours]) as [here],
        worlds([theirs]) as [there],
    ):
        ice = await here.ice_break()
        their_ice = await there.ice_break()
        async with Stream.open(ours.base_url, headers=ice.hk.headers) as stream:
            await stream.subscribe("op", ice.operation)
            for _ in range(2):  # their seqs now pass ours, whatever their store held
                await there.report(their_ice.kr, their_ice.operation, summary="Not for them")
            await asyncio.sleep(0.3)
            alert = await here.report(ice.kr, ice.operation)
            frames = await stream.drain(1.5)
    got = [(f["event"]["alert"]["id"], f["event"]["alert"]["summary"]) for f in frames]
    assert got == [(alert["id"], alert["summary"])]
