"""The sharing rule of API.md section 3 on the stream: a subscriber receives, live and in
replay, exactly the events its administration may see, and nothing of other operations."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import pre_alert
from tests.realtime.conftest import IceBreak, Stream, World, event_frame
from tests.server import RelayServer

pytestmark = pytest.mark.slow


async def follow_restricted_alert(world: World, ice: IceBreak) -> tuple[dict[str, Any], int]:
    """KR reports an alert restricted to HK, which HK comments and acknowledges and KR
    amends; then KR reports to the whole operation. Returns the last alert and the number of
    events about the restricted one."""
    restricted = await world.report(
        ice.kr, ice.operation, audience={"scope": "restricted", "recipients": [ice.codes["hk"]]}
    )
    path = f"/v1/alerts/{restricted['id']}"
    await world.post(ice.hk, f"{path}/comments", {"body": "Known consignee"})
    await world.post(ice.hk, f"{path}/acks", {"status": "actioning"})
    response = await world.client.patch(
        path, json={"summary": "Consignee known to HK"}, headers=ice.kr.headers
    )
    assert response.status_code == 200, response.text
    everyone = await world.report(ice.kr, ice.operation)
    return everyone, 4


async def test_restricted_alert_reaches_recipients_and_coordinator_only(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    start = await world.head(ice.kr)
    keys = {"kr": ice.kr, "hk": ice.hk, "th": ice.th, "ocu": ice.ocu}
    async with (
        Stream.open(server.base_url, headers=ice.kr.headers) as kr,
        Stream.open(server.base_url, headers=ice.hk.headers) as hk,
        Stream.open(server.base_url, token=ice.th.token) as th,
        Stream.open(server.base_url, headers=ice.ocu.headers) as ocu,
    ):
        streams = {"kr": kr, "hk": hk, "th": th, "ocu": ocu}
        for stream in streams.values():
            await stream.subscribe("op", ice.operation)
        last, about_restricted = await follow_restricted_alert(world, ice)
        received = {name: await s.events_until(last["seq"]) for name, s in streams.items()}
        for stream in streams.values():
            await stream.quiet(0.2)
    for name, frames in received.items():
        logged = await world.events(keys[name], since=start, operation=ice.operation)
        assert frames == [event_frame("op", event) for event in logged], name
        expected = 1 if name == "th" else about_restricted + 1
        assert len(frames) == expected, name
    assert [f["event"]["alert"]["id"] for f in received["th"]] == [last["id"]]


async def test_replay_sends_only_what_the_subscriber_may_see(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    start = await world.head(ice.kr)
    last, about_restricted = await follow_restricted_alert(world, ice)
    for key, expected in (
        (ice.th, 1),
        (ice.hk, about_restricted + 1),
        (ice.ocu, about_restricted + 1),
    ):
        async with Stream.open(server.base_url, headers=key.headers) as stream:
            await stream.subscribe("replay", ice.operation, since=start)
            frames = await stream.events(expected)
            await stream.quiet(0.2)
        logged = await world.events(key, since=start, operation=ice.operation)
        assert frames == [event_frame("replay", event) for event in logged]
        assert frames[-1]["event"]["alert"]["id"] == last["id"]


async def test_route_targeted_pre_alert_reaches_its_destinations_participants(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with (
        Stream.open(server.base_url, headers=ice.hk.headers) as hk,
        Stream.open(server.base_url, headers=ice.th.headers) as th,
    ):
        await hk.subscribe("op", ice.operation)
        await th.subscribe("op", ice.operation)
        response = await world.client.post(
            f"/v1/operations/{ice.operation}/alerts",
            json=pre_alert(route={"origin": "KR", "transit": [], "destination": "TH"}),
            headers=ice.kr.headers,
        )
        assert response.status_code == 201, response.text
        alert = response.json()
        [frame] = await th.events(1)
        assert frame["event"]["alert"] == alert
        await hk.quiet(0.3)


async def test_widening_the_audience_delivers_the_amendment_to_new_readers(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.th.headers) as th:
        await th.subscribe("op", ice.operation)
        restricted = await world.report(
            ice.kr,
            ice.operation,
            audience={"scope": "restricted", "recipients": [ice.codes["hk"]]},
        )
        await th.quiet(0.3)
        response = await world.client.patch(
            f"/v1/alerts/{restricted['id']}",
            json={"audience": {"scope": "operation", "recipients": None}},
            headers=ice.kr.headers,
        )
        assert response.status_code == 200, response.text
        [frame] = await th.events(1)
    assert frame["event"]["type"] == "alert.amended"
    assert frame["event"]["alert"] == response.json()


async def test_events_of_other_operations_never_arrive(server: RelayServer, world: World) -> None:
    ice = await world.ice_break()
    async with (
        Stream.open(server.base_url, headers=ice.kr.headers) as kr,
        Stream.open(server.base_url, headers=ice.jp.headers) as jp,
    ):
        await kr.subscribe("ice", ice.operation)
        await jp.subscribe("other", ice.other)
        theirs = await world.report(ice.jp, ice.other)
        await world.post(ice.kr, f"/v1/alerts/{theirs['id']}/acks", {"status": "received"})
        ours = await world.report(ice.hk, ice.operation)
        await world.post(ice.ocu, f"/v1/alerts/{ours['id']}/comments", {"body": "Noted"})
        kr_frames = await kr.events(2)
        jp_frames = await jp.events(2)
        await kr.quiet(0.2)
        await jp.quiet(0.2)
    assert [(f["sub"], f["event"]["operation"]) for f in kr_frames] == [("ice", ice.operation)] * 2
    assert [f["event"]["type"] for f in kr_frames] == ["alert.created", "comment.created"]
    assert [(f["sub"], f["event"]["operation"]) for f in jp_frames] == [("other", ice.other)] * 2
    assert [f["event"]["type"] for f in jp_frames] == ["alert.created", "alert.acknowledged"]
