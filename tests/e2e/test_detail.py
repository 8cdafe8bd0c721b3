"""The detail panel: the whole alert, and acknowledgements that reach everyone live."""

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


async def test_detail_shows_items_route_concealment_and_identifiers(
    open_dashboard: OpenDashboard, server: RelayServer, world: World, expect: Expect
) -> None:
    kr, th, _ = world.participants
    async with server.client() as client:
        alert_id = await world.report(client, th, seizure())
    officer = await open_dashboard()
    await officer.sign_in(world.members[kr])

    await officer.open_detail(alert_id)

    body = officer.page.locator("#detail-body")
    await expect(body.locator("h2")).to_have_text(
        "2.35 kg crystal methamphetamine in tea bags, parcel from TH"
    )
    await expect(body.locator("table tr")).to_have_text(
        ["CommodityFormQuantity", "methamphetaminecrystal2.35 kg"]
    )
    await expect(officer.detail_field("Route")).to_have_text("TH → MY → KR")
    await expect(officer.detail_field("Concealment")).to_have_text(
        "tea packaging — Vacuum-packed in Chinese tea bags inside a gift box"
    )
    await expect(officer.detail_field("Identifiers")).to_have_text("tracking number: EE123456789TH")
    await expect(officer.detail_field("Reported by")).to_contain_text(th)
    await expect(officer.detail_field("Audience")).to_have_text("Everyone in the operation")
    await expect(officer.acknowledgements).to_have_text(["None yet"])


async def test_acknowledgement_from_one_administration_appears_live_for_another(
    open_dashboard: OpenDashboard, server: RelayServer, world: World, expect: Expect
) -> None:
    kr, th, hk = world.participants
    async with server.client() as client:
        alert_id = await world.report(client, hk, seizure(priority="urgent"))
    acknowledging, watching = await open_dashboard(), await open_dashboard()
    await acknowledging.sign_in(world.members[kr])
    await watching.sign_in(world.members[th])
    await acknowledging.open_detail(alert_id)
    await watching.open_detail(alert_id)
    await expect(watching.acknowledgements).to_have_text(["None yet"])
    await watching.page.evaluate("window.sameDocument = true")  # gone if the page reloads

    await acknowledging.ack_button("actioning").click()

    await expect(watching.acknowledgements).to_have_count(1)
    await expect(watching.acknowledgements.first).to_contain_text(f"{kr} actioning")
    await expect(watching.card(alert_id)).to_contain_text("1 ack")
    await expect(acknowledging.ack_button("actioning")).to_have_class("mine")
    await expect(watching.ack_button("actioning")).not_to_have_class("mine")
    assert await watching.page.evaluate("window.sameDocument") is True
