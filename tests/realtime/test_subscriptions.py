"""Subscribing (API.md section 8, items 3 and 4): confirmation, live events, replay from
``since`` handed over to live, filters, unsubscribe and ping."""

from __future__ import annotations

from typing import Any

import pytest

from tests.realtime.conftest import Stream, World, event_frame, seqs
from tests.server import RelayServer

pytestmark = pytest.mark.slow


async def test_subscribe_without_since_is_confirmed_with_head_and_recovered(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    alert = await world.report(ice.kr, ice.operation)
    await world.settle(ice.ocu, ice.operation, alert["seq"])
    async with Stream.open(server.base_url, headers=ice.hk.headers) as stream:
        await stream.send({"type": "subscribe", "id": "s1", "operation": ice.operation})
        assert await stream.recv() == {
            "type": "subscribed",
            "id": "s1",
            "head": alert["seq"],
            "recovered": True,
        }
        await stream.quiet()


async def test_live_events_arrive_as_event_frames_equal_to_the_event_log(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.hk.headers) as stream:
        await stream.subscribe("live", ice.operation)
        alert = await world.report(ice.kr, ice.operation)
        path = f"/v1/alerts/{alert['id']}"
        await world.post(ice.th, f"{path}/acks", {"status": "received"})
        await world.post(ice.ocu, f"{path}/comments", {"body": "Controlled delivery?"})
        await world.post(ice.kr, f"{path}/withdraw", {"reason": "Duplicate report"})
        frames = await stream.events(4)
        await stream.quiet()
    logged = await world.events(ice.hk, since=alert["seq"] - 1, operation=ice.operation)
    assert [e["type"] for e in logged] == [
        "alert.created",
        "alert.acknowledged",
        "comment.created",
        "alert.withdrawn",
    ]
    assert frames == [event_frame("live", event) for event in logged]
    assert frames[0]["event"]["alert"] == alert


async def test_since_replays_every_visible_event_after_it_then_goes_live(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    before = await world.report(ice.kr, ice.operation)
    replayed = [await world.report(key, ice.operation) for key in (ice.kr, ice.th, ice.ocu)]
    await world.post(ice.th, f"/v1/alerts/{replayed[0]['id']}/acks", {"status": "actioning"})
    last = (await world.events(ice.ocu, since=before["seq"], operation=ice.operation))[-1]
    await world.settle(ice.ocu, ice.operation, last["seq"])
    async with Stream.open(server.base_url, headers=ice.hk.headers) as stream:
        head = stream.welcome["head"]
        await stream.send(
            {"type": "subscribe", "id": "r", "operation": ice.operation, "since": before["seq"]}
        )
        assert await stream.recv() == {
            "type": "subscribed",
            "id": "r",
            "head": head,
            "recovered": True,
        }
        replay = await stream.events(4)
        live_alert = await world.report(ice.th, ice.operation)
        live = await stream.events(1)
        await stream.quiet()
    logged = await world.events(ice.hk, since=before["seq"], operation=ice.operation)
    assert replay + live == [event_frame("r", event) for event in logged]
    assert live[0]["event"]["alert"] == live_alert


async def test_since_at_head_replays_nothing_and_then_goes_live(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    alert = await world.report(ice.kr, ice.operation)
    await world.settle(ice.ocu, ice.operation, alert["seq"])
    async with Stream.open(server.base_url, headers=ice.th.headers) as stream:
        subscribed = await stream.subscribe("s1", ice.operation, since=alert["seq"])
        assert subscribed["head"] == alert["seq"] and subscribed["recovered"] is True
        await stream.quiet()
        later = await world.report(ice.kr, ice.operation)
        [frame] = await stream.events(1)
    assert frame["event"]["seq"] == later["seq"]


async def test_subscribed_precedes_the_first_replayed_event_of_each_subscription(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    first = await world.report(ice.kr, ice.operation)
    for _ in range(5):
        await world.report(ice.kr, ice.operation)
    async with Stream.open(server.base_url, headers=ice.ocu.headers) as stream:
        for sub in ("a", "b", "c"):
            await stream.send(
                {"type": "subscribe", "id": sub, "operation": ice.operation, "since": 0}
            )
        frames = [await stream.recv() for _ in range(3 * 7)]
        await stream.quiet()
    for sub in ("a", "b", "c"):
        mine = [f for f in frames if f.get("id") == sub or f.get("sub") == sub]
        assert mine[0]["type"] == "subscribed", mine[:2]
        assert [f["type"] for f in mine[1:]] == ["event"] * 6
        assert seqs(mine[1:])[0] == first["seq"]
        assert seqs(mine[1:]) == sorted(seqs(mine[1:]))


async def test_events_arrive_in_seq_order_across_subscriptions_of_a_connection(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        await stream.subscribe("all", ice.operation)
        await stream.subscribe("urgent", ice.operation, filter={"priority": ["urgent"]})
        await stream.subscribe("other", ice.other)
        posted = [
            await world.report(ice.hk, ice.operation, priority="urgent"),
            await world.report(ice.th, ice.operation),
            await world.report(ice.jp, ice.other, priority="urgent"),
            await world.report(ice.kr, ice.operation, priority="urgent"),
        ]
        frames = await stream.events(6)
        await stream.quiet()
    assert seqs(frames) == sorted(seqs(frames))
    got = sorted((f["event"]["alert"]["id"], f["sub"]) for f in frames)
    assert got == sorted(
        [
            (posted[0]["id"], "all"),
            (posted[0]["id"], "urgent"),
            (posted[1]["id"], "all"),
            (posted[2]["id"], "other"),
            (posted[3]["id"], "all"),
            (posted[3]["id"], "urgent"),
        ]
    )


# --- filters ---------------------------------------------------------------------------

ITEM = {"form": "powder", "quantity": 1.5, "unit": "kg"}
COCAINE = {"commodity": "cocaine", **ITEM}
HEROIN = {"commodity": "heroin", **ITEM}
FILTERS: dict[str, dict[str, list[str]]] = {
    "kind": {"kind": ["pre_alert", "request"]},
    "priority": {"priority": ["urgent", "flash"]},
    "commodity": {"commodity": ["cocaine", "ephedrine"]},
    "transport_mode": {"transport_mode": ["air_cargo", "rail"]},
    "territory": {"territory": ["HK", "MO"]},
    "combined": {"priority": ["urgent"], "commodity": ["cocaine"], "territory": ["KR", "HK"]},
    "empty": {"kind": []},
}
# Each alert, and the filters that keep it.
ALERTS: list[tuple[dict[str, Any], set[str]]] = [
    ({}, {"empty"}),
    ({"kind": "pre_alert"}, {"kind", "empty"}),
    ({"kind": "request", "priority": "flash"}, {"kind", "priority", "empty"}),
    ({"priority": "urgent"}, {"priority", "empty"}),
    ({"items": [COCAINE]}, {"commodity", "empty"}),
    (
        {"items": [HEROIN, {"commodity": "ephedrine", **ITEM}], "transport_mode": "rail"},
        {"commodity", "transport_mode", "empty"},
    ),
    ({"transport_mode": "air_cargo"}, {"transport_mode", "empty"}),
    ({"location": {"territory": "MO"}}, {"territory", "empty"}),
    (
        {"priority": "urgent", "items": [COCAINE, HEROIN], "location": {"territory": "HK"}},
        {"priority", "commodity", "territory", "combined", "empty"},
    ),
    ({"priority": "urgent", "items": [COCAINE]}, {"priority", "commodity", "combined", "empty"}),
    (
        {"priority": "urgent", "items": [COCAINE], "location": {"territory": "TH"}},
        {"priority", "commodity", "empty"},
    ),
]


async def test_filters_apply_to_replay_and_live_alike(server: RelayServer, world: World) -> None:
    ice = await world.ice_break()

    async def post_all() -> dict[str, list[str]]:
        kept: dict[str, list[str]] = {name: [] for name in FILTERS}
        for overrides, keepers in ALERTS:
            alert = await world.report(ice.kr, ice.operation, **overrides)
            for name in keepers:
                kept[name].append(alert["id"])
        return kept

    start = await world.head(ice.hk)
    before = await post_all()
    async with Stream.open(server.base_url, headers=ice.hk.headers) as stream:
        for name, stream_filter in FILTERS.items():
            await stream.subscribe(name, ice.operation, since=start, filter=stream_filter)
            replayed = await stream.events(len(before[name]))
            assert [f["event"]["alert"]["id"] for f in replayed] == before[name], name
            assert {f["sub"] for f in replayed} == {name}
        after = await post_all()
        live = await stream.events(sum(map(len, after.values())))
        await stream.quiet(0.2)
    assert seqs(live) == sorted(seqs(live))
    for name in FILTERS:
        assert [f["event"]["alert"]["id"] for f in live if f["sub"] == name] == after[name], name


async def test_ping_gets_pong(server: RelayServer, world: World) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        for _ in range(3):
            await stream.send({"type": "ping"})
            assert await stream.recv() == {"type": "pong"}


async def test_unsubscribe_stops_delivery_to_that_subscription_only(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.hk.headers) as stream:
        await stream.subscribe("gone", ice.operation)
        await stream.subscribe("kept", ice.operation)
        await stream.send({"type": "unsubscribe", "id": "gone"})
        # The contract names no answer to unsubscribe; an acknowledgement is tolerated.
        await stream.send({"type": "ping"})
        answers = [await stream.recv()]
        if answers[0] != {"type": "pong"}:
            answers.append(await stream.recv())
        assert answers[-1] == {"type": "pong"}, answers
        alert = await world.report(ice.kr, ice.operation)
        [frame] = await stream.events(1)
        await stream.quiet()
    assert frame["sub"] == "kept" and frame["event"]["alert"]["id"] == alert["id"]


async def test_frames_sent_behind_subscribes_are_answered_in_the_order_sent(
    server: RelayServer, world: World
) -> None:
    # Each subscribe reads the store; the frames sent meanwhile wait their turn, more of
    # them than the server holds before it stops reading the connection.
    ice = await world.ice_break()
    expected: list[tuple[str, str | None]] = []
    async with Stream.open(server.base_url, headers=ice.hk.headers) as stream:
        for n in range(3):
            await stream.send({"type": "subscribe", "id": f"s{n}", "operation": ice.operation})
            expected.append(("subscribed", f"s{n}"))
            for _ in range(50):
                await stream.send({"type": "ping"})
                expected.append(("pong", None))
        await stream.send({"type": "unsubscribe", "id": "s1"})
        expected.append(("unsubscribed", "s1"))
        answers = [await stream.recv() for _ in expected]
        assert [(a["type"], a.get("id")) for a in answers] == expected
        alert = await world.report(ice.kr, ice.operation)
        frames = await stream.events(2)
        await stream.quiet()
    assert sorted(f["sub"] for f in frames) == ["s0", "s2"]
    assert {f["event"]["alert"]["id"] for f in frames} == {alert["id"]}


async def test_unsubscribe_right_after_subscribe_ends_the_subscription(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.hk.headers) as stream:
        for n in range(5):
            await stream.send({"type": "subscribe", "id": f"brief{n}", "operation": ice.operation})
            await stream.send({"type": "unsubscribe", "id": f"brief{n}"})
        await stream.send({"type": "subscribe", "id": "kept", "operation": ice.operation})
        answers = await stream.drain()
        assert {"kept"} <= {f["id"] for f in answers if f["type"] == "subscribed"}, answers
        alert = await world.report(ice.kr, ice.operation)
        frames = await stream.drain()
    assert [f["sub"] for f in frames if f["type"] == "event"] == ["kept"]
    assert frames[-1]["event"]["alert"]["id"] == alert["id"]
