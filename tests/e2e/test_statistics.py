"""The Statistics tab: for analysts, with its charts; members never see it."""

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

CHARTS = ["commodity", "transport_mode", "concealment_method", "week"]


async def test_analyst_sees_statistics_with_charts(
    open_dashboard: OpenDashboard, server: RelayServer, world: World, expect: Expect
) -> None:
    kr, th, _ = world.participants
    async with server.client() as client:
        await world.report(client, kr, seizure())
        await world.report(
            client,
            th,
            seizure(
                transport_mode="sea_container",
                items=[{"commodity": "cocaine", "form": "powder", "quantity": 40, "unit": "kg"}],
            ),
        )
    analyst = await open_dashboard()
    await analyst.sign_in(world.analyst)

    await analyst.page.get_by_role("button", name="Statistics").click()

    stats = analyst.page.locator("#stats-view")
    await expect(stats).to_be_visible()
    await expect(analyst.page.locator("#feed-view")).to_be_hidden()
    await expect(stats.locator(".chart")).to_have_count(len(CHARTS))
    charts = await stats.locator(".chart").evaluate_all("nodes => nodes.map(n => n.dataset.by)")
    assert charts == CHARTS
    await expect(stats.locator(".kpi").first).to_have_text("2alerts")
    by_commodity = stats.locator('.chart[data-by="commodity"] .bar')
    await expect(by_commodity).to_have_count(2)
    await expect(by_commodity.first).to_contain_text("cocaine")
    await expect(by_commodity.first).to_contain_text("40 kg")
    widths = await by_commodity.locator(".fill").evaluate_all(
        "fills => fills.map(f => f.getBoundingClientRect().width)"
    )
    assert widths[0] > widths[1] > 0, widths


async def test_member_does_not_see_the_statistics_tab(
    open_dashboard: OpenDashboard, world: World, expect: Expect
) -> None:
    officer = await open_dashboard()

    await officer.sign_in(world.members[world.participants[0]])

    await expect(officer.page.get_by_role("button", name="Feed")).to_be_visible()
    await expect(officer.page.locator("#tab-stats")).to_be_hidden()
    await expect(officer.page.get_by_role("button", name="Statistics")).to_have_count(0)
