"""The stream under a server that offers neither of ``relay serve``'s websocket extensions
(``relay.wire``, ``relay.handoff``; app/server.py): plain uvicorn. The application then
sends through ASGI and reads with a loop of its own, and must keep the same contract."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import pytest

from tests.realtime.conftest import Stream, World
from tests.server import RelayServer, admin_headers

pytestmark = pytest.mark.slow

PLAIN_UVICORN = [
    sys.executable,
    "-m",
    "uvicorn",
    "app.main:create_app",
    "--factory",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
    "--ws",
    "websockets-sansio",
    "--ws-max-size",
    str(64 * 1024),
]


@pytest.fixture(scope="module")
async def plain(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RelayServer]:
    async with RelayServer(
        database_url, tmp_path_factory.mktemp("plain") / "uvicorn.log", argv=PLAIN_UVICORN
    ) as relay:
        yield relay


@pytest.fixture
async def plain_world(plain: RelayServer) -> AsyncIterator[World]:
    admin = await admin_headers(plain)
    async with plain.client() as client:
        yield World(client, admin)


async def test_replay_then_live_in_order(plain: RelayServer, plain_world: World) -> None:
    world = plain_world
    ice = await world.ice_break()
    before = await world.report(ice.kr, ice.operation)
    replayed = [await world.report(key, ice.operation) for key in (ice.kr, ice.th)]
    async with Stream.open(plain.base_url, headers=ice.hk.headers) as stream:
        await stream.subscribe("r", ice.operation, since=before["seq"])
        replay = await stream.events(2)
        live = await world.report(ice.ocu, ice.operation)
        [event] = await stream.events(1)
        await stream.quiet()
    assert [f["event"]["alert"]["id"] for f in replay] == [a["id"] for a in replayed]
    assert event["event"]["alert"]["id"] == live["id"]


async def test_frames_behind_a_subscribe_keep_their_order(
    plain: RelayServer, plain_world: World
) -> None:
    ice = await plain_world.ice_break()
    async with Stream.open(plain.base_url, headers=ice.hk.headers) as stream:
        await stream.send({"type": "subscribe", "id": "a", "operation": ice.operation})
        await stream.send({"type": "unsubscribe", "id": "a"})
        await stream.send({"type": "ping"})
        answers = [await stream.recv() for _ in range(3)]
    assert [(a["type"], a.get("id")) for a in answers] == [
        ("subscribed", "a"),
        ("unsubscribed", "a"),
        ("pong", None),
    ]


async def test_a_revoked_key_is_closed_with_4001(plain: RelayServer, plain_world: World) -> None:
    ice = await plain_world.ice_break()
    async with Stream.open(plain.base_url, headers=ice.kr.headers) as stream:
        await stream.subscribe("s", ice.operation)
        await plain_world.revoke(ice.kr)
        closed = await stream.closed(within=5)
    assert closed.code == 4001, closed
