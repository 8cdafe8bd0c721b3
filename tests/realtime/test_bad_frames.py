"""Frames the server cannot grant or cannot read (API.md section 8, items 3 and 5): a bad
subscribe is answered with an error and the connection stays open; a flood of malformed
frames closes it with 1008, a frame over 64 KiB with 1009."""

from __future__ import annotations

from typing import Any

import pytest

from tests.realtime.conftest import Stream, World
from tests.server import RelayServer

pytestmark = pytest.mark.slow

MAX_FRAME = 64 * 1024


async def test_subscribe_to_an_operation_not_taken_part_in_is_404(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.jp.headers) as stream:
        await stream.send({"type": "subscribe", "id": "theirs", "operation": ice.operation})
        theirs = await stream.recv()
        await stream.send({"type": "subscribe", "id": "none", "operation": world.code("NOPE")})
        missing = await stream.recv()
        await world.report(ice.kr, ice.operation)
        await stream.send({"type": "ping"})
        assert await stream.recv() == {"type": "pong"}
    for frame, sub in ((theirs, "theirs"), (missing, "none")):
        assert frame["type"] == "error" and frame["id"] == sub and frame["status"] == 404
        assert isinstance(frame["detail"], str)
    # The answer does not tell an existing operation from a missing one.
    assert theirs["detail"] == missing["detail"].replace(world.code("NOPE"), ice.operation)


async def assert_each_subscribe_is_422(
    server: RelayServer, world: World, cases: list[dict[str, Any]]
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        for n, fields in enumerate(cases):
            frame = {"type": "subscribe", "id": f"bad{n}", "operation": ice.operation, **fields}
            await stream.send(frame)
            error = await stream.recv()
            assert error["type"] == "error", (fields, error)
            assert (error["id"], error["status"]) == (f"bad{n}", 422), (fields, error)
            assert isinstance(error["detail"], str) and error["detail"]
        await world.report(ice.hk, ice.operation)
        await stream.quiet(0.2)
        await stream.subscribe("good", ice.operation)
        alert = await world.report(ice.hk, ice.operation)
        [event] = await stream.events(1)
    assert event["sub"] == "good" and event["event"]["alert"]["id"] == alert["id"]


async def test_bad_subscribe_is_422_and_the_connection_stays_open(
    server: RelayServer, world: World
) -> None:
    await assert_each_subscribe_is_422(
        server,
        world,
        [
            {"since": -1},
            {"since": 1.5},
            {"filter": {"kind": ["smuggling"]}},
            {"filter": {"priority": ["URGENT"]}},
            {"filter": {"commodity": ["sugar"]}},
            {"filter": {"transport_mode": ["teleport"]}},
            {"filter": {"territory": ["XX"]}},
            {"filter": {"kind": "seizure"}},
            {"filter": {"kind": [1]}},
            {"filter": {"colour": ["red"]}},
            {"filter": ["kind"]},
            {"unexpected": 1},
        ],
    )


async def test_since_that_is_not_a_json_integer_is_422(server: RelayServer, world: World) -> None:
    await assert_each_subscribe_is_422(server, world, [{"since": "10"}, {"since": True}])


async def test_frame_missing_fields_is_400_and_the_connection_stays_open(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        for frame in [
            {"type": "subscribe", "operation": ice.operation},
            {"type": "subscribe", "id": "s1"},
            {"type": "subscribe", "id": 7, "operation": ice.operation},
            {"type": "subscribe", "id": "s1", "operation": None},
            {"type": "unsubscribe"},
        ]:
            await stream.send(frame)
            error = await stream.recv()
            assert error["type"] == "error" and error["status"] == 400, (frame, error)
            assert isinstance(error["detail"], str) and error["detail"]
        await stream.send({"type": "ping"})
        assert await stream.recv() == {"type": "pong"}


async def test_malformed_frame_is_400_and_the_connection_stays_open(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        await stream.subscribe("s1", ice.operation)
        for frame in [
            "not json",
            "{",
            "[]",
            '[{"type": "ping"}]',
            '"ping"',
            "42",
            "null",
            '{"type": "bogus"}',
            '{"type": null}',
            "{}",
        ]:
            await stream.send(frame)
            error = await stream.recv()
            assert error["type"] == "error" and error["status"] == 400, (frame, error)
            assert isinstance(error["detail"], str) and error["detail"]
        alert = await world.report(ice.hk, ice.operation)
        [event] = await stream.events(1)
    assert event["event"]["alert"]["id"] == alert["id"]


async def test_twenty_malformed_frames_within_10_seconds_are_tolerated(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        for _ in range(20):
            await stream.send("not json")
        errors = [await stream.recv() for _ in range(20)]
        assert {(e["type"], e["status"]) for e in errors} == {("error", 400)}
        await stream.send({"type": "ping"})
        assert await stream.recv() == {"type": "pong"}


async def test_a_flood_of_malformed_frames_is_closed_with_1008(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        for _ in range(25):
            await stream.send({"type": "bogus"})
        closed = await stream.closed()
    assert closed.code == 1008, closed
    # Errors still queued for the client when it is closed may be dropped.
    assert len(closed.frames) <= 20
    assert all((f["type"], f["status"]) == ("error", 400) for f in closed.frames)


def padded(frame: dict[str, Any], size: int) -> str:
    """``frame`` as JSON text of exactly ``size`` bytes."""
    text = f'{{"type": "{frame["type"]}", "pad": ""}}'
    return text.replace('"pad": ""', '"pad": "' + "x" * (size - len(text)) + '"')


async def test_a_frame_of_64_kib_is_read(server: RelayServer, world: World) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        await stream.send(padded({"type": "bogus"}, MAX_FRAME))
        error = await stream.recv()
        assert error["type"] == "error" and error["status"] == 400
        await stream.send({"type": "ping"})
        assert await stream.recv() == {"type": "pong"}


async def test_a_frame_over_64_kib_is_closed_with_1009(server: RelayServer, world: World) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        await stream.subscribe("s1", ice.operation)
        await stream.send(padded({"type": "ping"}, MAX_FRAME + 1))
        closed = await stream.closed()
    assert closed.code == 1009
    assert closed.frames == []


async def test_a_binary_frame_is_400_and_the_connection_stays_open(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        await stream.send(b'{"type": "ping"}')
        error = await stream.recv()
        assert error["type"] == "error" and error["status"] == 400, error
        await stream.send({"type": "ping"})
        assert await stream.recv() == {"type": "pong"}


async def test_a_text_frame_that_is_not_utf8_is_closed_with_1007(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        await stream.subscribe("s1", ice.operation)
        await stream.ws.send(b'{"type": "\xff"}', text=True)
        closed = await stream.closed()
    assert closed.code == 1007, closed
