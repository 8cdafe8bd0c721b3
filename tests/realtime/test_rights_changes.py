"""Changes of rights reach open streams (API.md sections 2 and 4): a revoked key's
connections are closed with 4001 within 2 seconds, and a removed participant stops
receiving others' alerts within 2 seconds while its own still arrive."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.realtime.conftest import Stream, World
from tests.server import RelayServer

pytestmark = pytest.mark.slow

WITHIN = 2.0


async def test_revoking_a_key_closes_its_open_connections_with_4001_within_2_seconds(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    sibling = await world.key(ice.codes["hk"])
    async with (
        Stream.open(server.base_url, headers=ice.hk.headers) as by_header,
        Stream.open(server.base_url, token=ice.hk.token) as by_frame,
        Stream.open(server.base_url, headers=sibling.headers) as other_key,
    ):
        for stream in (by_header, by_frame, other_key):
            await stream.subscribe("op", ice.operation)
        revoked_at = time.monotonic()
        await world.revoke(ice.hk)
        closes = await asyncio.gather(by_header.closed(WITHIN), by_frame.closed(WITHIN))
        elapsed = time.monotonic() - revoked_at
        alert = await world.report(ice.kr, ice.operation)
        [frame] = await other_key.events(1)
    assert [(c.code, c.frames) for c in closes] == [(4001, []), (4001, [])]
    assert elapsed < WITHIN
    assert frame["event"]["alert"]["id"] == alert["id"]


async def test_removed_participant_stops_receiving_others_alerts_within_2_seconds(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    own = await world.report(ice.hk, ice.operation)
    async with (
        Stream.open(server.base_url, headers=ice.hk.headers) as hk,
        Stream.open(server.base_url, headers=ice.ocu.headers) as ocu,
    ):
        await hk.subscribe("op", ice.operation)
        await ocu.subscribe("op", ice.operation)
        removed_at = time.monotonic()
        await world.remove_participant(ice.operation, ice.codes["hk"])
        await asyncio.sleep(max(0.0, removed_at + WITHIN - time.monotonic()))
        others = await world.report(ice.kr, ice.operation)
        ack = await world.post(ice.kr, f"/v1/alerts/{own['id']}/acks", {"status": "received"})
        comment = await world.post(ice.ocu, f"/v1/alerts/{own['id']}/comments", {"body": "Noted"})
        hk_frames = await hk.events(2)
        ocu_frames = await ocu.events(3)
        await hk.quiet(0.3)
    assert [(f["event"]["type"], f["event"]["alert_id"]) for f in hk_frames] == [
        ("alert.acknowledged", own["id"]),
        ("comment.created", own["id"]),
    ]
    assert hk_frames[0]["event"]["ack"] == ack
    assert hk_frames[1]["event"]["comment"] == comment
    assert ocu_frames[0]["event"]["alert"]["id"] == others["id"]


async def test_participant_added_while_connected_receives_every_event_after_subscribing(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    for attempt in range(3):
        newcomer = await world.administration(f"NEW{attempt}", "MO")
        key = await world.key(newcomer)
        async with Stream.open(server.base_url, headers=key.headers) as stream:
            response = await world.client.post(
                f"/v1/operations/{ice.operation}/participants",
                json={"administration": newcomer},
                headers=world.admin,
            )
            assert response.status_code == 201, response.text
            await stream.subscribe("op", ice.operation)
            alert = await world.report(ice.kr, ice.operation)
            frames = await stream.events(1, within=2.0)
        assert frames[0]["event"]["alert"]["id"] == alert["id"], attempt
