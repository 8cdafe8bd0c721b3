"""Signing in to the dashboard: which keys open it, and what the others are told."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Expect

    from tests.e2e.conftest import OpenDashboard
    from tests.e2e.world import World

pytestmark = pytest.mark.slow


async def test_member_key_opens_the_live_feed_and_stays_out_of_urls(
    open_dashboard: OpenDashboard, world: World, expect: Expect
) -> None:
    officer = await open_dashboard()
    member = world.participants[0]
    key = world.members[member]

    await officer.sign_in(key)

    await expect(officer.page.locator("#signin")).to_be_hidden()
    await expect(officer.page.locator("#who")).to_contain_text(f"{member} · member e2e (member)")
    await expect(officer.page.locator("#operation")).to_have_value(world.operation)
    await expect(officer.page.locator("#feed-empty")).to_be_visible()
    assert await officer.page.evaluate("sessionStorage.getItem('relay.key')") == key
    assert officer.frames_sent[0] == {"type": "auth", "token": key}
    assert all(key not in url for url in [officer.page.url, *officer.socket_urls])


async def test_wrong_key_is_refused_with_a_clear_error(
    open_dashboard: OpenDashboard, expect: Expect
) -> None:
    stranger = await open_dashboard()
    stranger.tolerate(r"Failed to load resource: .* 401")

    await stranger.submit_key("sr_this_key_was_never_issued_0123456789")

    await expect(stranger.page.locator("#signin-error")).to_have_text(
        "This key is not recognised, or it has expired or been revoked."
    )
    await expect(stranger.page.locator("#app")).to_be_hidden()
    assert await stranger.page.evaluate("sessionStorage.getItem('relay.key')") is None
    assert stranger.socket_urls == []


async def test_admin_key_is_refused_with_a_message(
    open_dashboard: OpenDashboard, world: World, expect: Expect
) -> None:
    administrator = await open_dashboard()

    await administrator.submit_key(world.admin)

    await expect(administrator.page.locator("#signin-error")).to_have_text(
        "Admin keys read no alerts: use a member or analyst key."
    )
    await expect(administrator.page.locator("#app")).to_be_hidden()
    assert await administrator.page.evaluate("sessionStorage.getItem('relay.key')") is None
    assert administrator.socket_urls == []
