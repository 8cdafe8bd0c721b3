"""The dashboard at phone width, 390 by 844 CSS pixels: the feed fits, the detail takes
the whole screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.api import seizure

if TYPE_CHECKING:
    from playwright.async_api import Expect

    from tests.e2e.conftest import OpenDashboard
    from tests.e2e.world import World
    from tests.server import RelayServer

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}


async def test_phone_shows_the_feed_and_opens_the_detail_full_screen(
    open_dashboard: OpenDashboard, server: RelayServer, world: World, expect: Expect
) -> None:
    kr, th, _ = world.participants
    async with server.client() as client:
        alert_id = await world.report(client, th, seizure())
    officer = await open_dashboard(viewport=PHONE)
    await officer.sign_in(world.members[kr])

    card = officer.card(alert_id)
    await expect(card).to_be_in_viewport()
    box = await card.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]
    assert await officer.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    await officer.open_detail(alert_id)

    assert await officer.detail.bounding_box() == {"x": 0, "y": 0, **PHONE}
    await expect(officer.page.get_by_role("button", name="Close ✕")).to_be_in_viewport()
    await expect(officer.detail_field("Route")).to_have_text("TH → MY → KR")
    await officer.page.get_by_role("button", name="Close ✕").click()
    await expect(officer.detail).to_be_hidden()
    await expect(card).to_be_in_viewport()
