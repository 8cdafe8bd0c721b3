"""The live feed: what arrives, how fast, what the filters leave, and who never sees what."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from tests.api import pre_alert, seizure

if TYPE_CHECKING:
    from playwright.async_api import Expect

    from tests.e2e.conftest import OpenDashboard
    from tests.e2e.world import World
    from tests.server import RelayServer

pytestmark = pytest.mark.slow

LIVE_WITHIN_MS = 2_000


async def test_alert_reported_by_another_administration_appears_within_two_seconds(
    open_dashboard: OpenDashboard, server: RelayServer, world: World, expect: Expect
) -> None:
    kr, th, _ = world.participants
    officer = await open_dashboard()
    await officer.sign_in(world.members[kr])

    async with server.client() as client:
        alert_id = await world.report(client, th, seizure(priority="urgent"))
    posted_at = time.monotonic()

    await expect(officer.card(alert_id)).to_be_visible(timeout=LIVE_WITHIN_MS)
    assert time.monotonic() - posted_at < LIVE_WITHIN_MS / 1000
    await expect(officer.card(alert_id)).to_contain_text(th)
    await expect(officer.card(alert_id)).to_contain_text("2.35 kg methamphetamine")
    await expect(officer.page.locator("#feed-empty")).to_be_hidden()


async def test_filters_hide_and_show_the_matching_cards(
    open_dashboard: OpenDashboard, server: RelayServer, world: World, expect: Expect
) -> None:
    kr, th, hk = world.participants
    async with server.client() as client:
        meth_by_mail = await world.report(client, kr, seizure())
        cocaine_by_sea = await world.report(
            client,
            th,
            seizure(
                priority="urgent",
                transport_mode="sea_container",
                location={"territory": "TH", "place": "Laem Chabang"},
                items=[{"commodity": "cocaine", "form": "powder", "quantity": 40, "unit": "kg"}],
            ),
        )
        courier_pre_alert = await world.report(
            client, th, pre_alert(priority="flash", audience={"scope": "operation"})
        )
        meth_by_air = await world.report(
            client,
            hk,
            seizure(
                priority="flash",
                transport_mode="air_passenger",
                location={"territory": "HK", "place": "Hong Kong International Airport"},
            ),
        )
    everything = {meth_by_mail, cocaine_by_sea, courier_pre_alert, meth_by_air}
    officer = await open_dashboard()
    await officer.sign_in(world.members[kr])
    await expect(officer.cards).to_have_count(len(everything))

    async def shown() -> set[str]:
        return set(await officer.shown_ids())

    await officer.choose("kind", "pre_alert")
    assert await shown() == {courier_pre_alert}
    await officer.choose("kind", "")
    await officer.choose("priority", "flash")
    assert await shown() == {courier_pre_alert, meth_by_air}
    await officer.choose("priority", "")
    await officer.choose("commodity", "methamphetamine")
    assert await shown() == {meth_by_mail, meth_by_air}
    await officer.territory("hk")
    assert await shown() == {meth_by_air}
    await officer.choose("commodity", "")
    await officer.territory("TH")
    assert await shown() == {cocaine_by_sea, courier_pre_alert}
    await officer.territory("")
    await officer.choose("transport_mode", "sea_container")
    assert await shown() == {cocaine_by_sea}

    # A live alert that does not match stays hidden until the filter is cleared.
    async with server.client() as client:
        by_road = await world.report(client, hk, seizure(transport_mode="road_vehicle"))
        by_sea = await world.report(client, hk, seizure(transport_mode="sea_container"))
    await expect(officer.card(by_sea)).to_be_visible()
    await expect(officer.card(by_road)).to_have_count(0)
    await officer.choose("transport_mode", "")
    await expect(officer.cards).to_have_count(len(everything) + 2)
    assert await shown() == everything | {by_road, by_sea}


async def test_restricted_alert_never_reaches_a_participant_outside_its_audience(
    open_dashboard: OpenDashboard, server: RelayServer, world: World, expect: Expect
) -> None:
    kr, th, hk = world.participants
    recipient, outsider = await open_dashboard(), await open_dashboard()
    await recipient.sign_in(world.members[th])
    await outsider.sign_in(world.members[hk])

    async with server.client() as client:
        restricted = await world.report(
            client, kr, seizure(audience={"scope": "restricted", "recipients": [th]})
        )
        public = await world.report(client, kr, seizure(summary="For everyone in the operation"))

    await expect(recipient.card(restricted)).to_be_visible()
    await expect(recipient.card(public)).to_be_visible()
    # Events arrive in order: once the later public alert is shown, the restricted one
    # would have been too.
    await expect(outsider.card(public)).to_be_visible()
    assert await outsider.shown_ids() == [public]
    assert all(restricted not in str(frame) for frame in outsider.frames_received)

    # Nor does the history a fresh page loads hold it.
    reloaded = await open_dashboard()
    await reloaded.sign_in(world.members[hk])
    await expect(reloaded.card(public)).to_be_visible()
    assert await reloaded.shown_ids() == [public]
