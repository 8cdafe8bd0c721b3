"""Opening a stream (API.md section 8, items 1 and 2): authentication by header or by a
first frame, the welcome frame, and the Origin check before the upgrade."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from tests.realtime.conftest import ALLOWED_ORIGIN, Stream, World
from tests.server import RelayServer

pytestmark = pytest.mark.slow


async def test_header_auth_is_welcomed_with_administration_role_head_and_epoch(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    analyst = await world.key(ice.codes["hk"], role="analyst")
    alert = await world.report(ice.kr, ice.operation)

    async with Stream.open(server.base_url, headers=analyst.headers) as stream:
        welcome = stream.welcome
    assert set(welcome) == {"type", "administration", "role", "head", "epoch"}
    assert welcome["administration"] == ice.codes["hk"]
    assert welcome["role"] == "analyst"
    assert welcome["head"] == alert["seq"]
    assert isinstance(welcome["epoch"], str) and welcome["epoch"]


async def test_first_frame_auth_is_welcomed_like_header_auth(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    alert = await world.report(ice.kr, ice.operation)

    async with Stream.open(server.base_url, headers=ice.th.headers) as by_header:
        pass
    async with Stream.open(server.base_url, token=ice.th.token) as by_frame:
        pass
    assert by_frame.welcome == {
        "type": "welcome",
        "administration": ice.codes["th"],
        "role": "member",
        "head": alert["seq"],
        "epoch": by_header.welcome["epoch"],
    }
    assert by_header.welcome == by_frame.welcome


async def test_first_frame_auth_then_subscribe_receives_events(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, token=ice.hk.token) as stream:
        await stream.subscribe("s1", ice.operation)
        alert = await world.report(ice.kr, ice.operation)
        [frame] = await stream.events(1)
    assert frame["sub"] == "s1"
    assert frame["event"]["type"] == "alert.created"
    assert frame["event"]["alert"] == alert


@pytest.mark.parametrize(
    "authorization",
    ["Bearer sr_not_a_key_at_all_0123456789abcdef", "Basic dXNlcjpwYXNz", "Bearer "],
)
async def test_bad_header_token_is_refused_with_401_before_upgrade(
    server: RelayServer, authorization: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with Stream.open(server.base_url, headers={"Authorization": authorization}):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_revoked_header_token_is_refused_with_401(server: RelayServer, world: World) -> None:
    ice = await world.ice_break()
    await world.revoke(ice.kr)
    with pytest.raises(InvalidStatus) as refused:
        async with Stream.open(server.base_url, headers=ice.kr.headers):
            pass
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize(
    "first_frame",
    [
        {"type": "auth", "token": "sr_not_a_key_at_all_0123456789abcdef"},
        {"type": "auth", "token": ""},
        {"type": "auth"},
        {"type": "subscribe", "id": "s1", "operation": "ICEBREAK-II"},
        "not json",
    ],
)
async def test_bad_first_frame_is_closed_with_4001(
    server: RelayServer, first_frame: dict[str, str] | str
) -> None:
    async with Stream.open(server.base_url, welcome=False) as stream:
        await stream.send(first_frame)
        closed = await stream.closed()
    assert closed.code == 4001
    assert closed.frames == []


async def test_no_auth_frame_within_10_seconds_is_closed_with_4001(
    store: str, server: RelayServer
) -> None:
    if store != "sqlite":
        pytest.skip("the handshake timer does not depend on the store; run once")
    async with Stream.open(server.base_url, welcome=False) as stream:
        closed = await stream.closed(within=13)
    assert closed.code == 4001
    assert closed.frames == []


async def test_admin_key_is_refused_with_403_before_upgrade(
    server: RelayServer, admin: dict[str, str]
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with Stream.open(server.base_url, headers=admin):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example.com", "https://ocu.example.org.evil.com", "null", "http://127.0.0.1"],
)
async def test_disallowed_origin_is_refused_with_403_before_upgrade(
    server: RelayServer, world: World, origin: str
) -> None:
    ice = await world.ice_break()
    with pytest.raises(InvalidStatus) as refused:
        async with Stream.open(server.base_url, headers=ice.kr.headers, origin=origin):
            pass
    assert refused.value.response.status_code == 403


async def test_own_host_under_another_scheme_or_port_is_refused(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    for origin in (
        f"https://127.0.0.1:{server.port}",
        f"http://127.0.0.1:{server.port + 1}",
        f"http://localhost:{server.port}",
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with Stream.open(server.base_url, headers=ice.kr.headers, origin=origin):
                pass
        assert refused.value.response.status_code == 403, origin


async def test_disallowed_origin_is_refused_before_first_frame_auth(server: RelayServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with Stream.open(server.base_url, welcome=False, origin="https://evil.example.com"):
            pass
    assert refused.value.response.status_code == 403


async def test_listed_origin_is_accepted(server: RelayServer, world: World) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, token=ice.kr.token, origin=ALLOWED_ORIGIN) as stream:
        assert stream.welcome["administration"] == ice.codes["kr"]


async def test_servers_own_origin_is_accepted(server: RelayServer, world: World) -> None:
    ice = await world.ice_break()
    async with Stream.open(
        server.base_url, token=ice.kr.token, origin=f"http://127.0.0.1:{server.port}"
    ) as stream:
        assert stream.welcome["administration"] == ice.codes["kr"]


async def test_no_origin_is_accepted(server: RelayServer, world: World) -> None:
    ice = await world.ice_break()
    async with Stream.open(server.base_url, headers=ice.kr.headers) as stream:
        assert "origin" not in {name.lower() for name in stream.ws.request.headers}  # type: ignore[union-attr]
        assert stream.welcome["administration"] == ice.codes["kr"]
