"""A lost connection: the dashboard says so, reconnects, and resumes from the last event it
applied, so that every alert reported meanwhile is shown once and only once."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.api import seizure
from tests.e2e.world import set_up_world
from tests.server import RelayServer, admin_headers, relay_servers

if TYPE_CHECKING:
    from playwright.async_api import Expect

    from tests.e2e.conftest import OpenDashboard

pytestmark = pytest.mark.slow

RECONNECTED_WITHIN_MS = 15_000  # the page backs off 0.5, 1, 2, 4 s... between attempts


@pytest.fixture
async def restarted_and_writer(
    e2e_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[RelayServer, RelayServer]]:
    """Two processes on the session's store: one the test restarts, one that stays up to
    take reports while the other is down."""
    async with relay_servers(e2e_database_url, tmp_path, names=["restarted", "writer"]) as pair:
        yield pair[0], pair[1]


async def test_feed_resumes_after_a_server_restart_with_nothing_missed_or_repeated(
    open_dashboard: OpenDashboard,
    restarted_and_writer: tuple[RelayServer, RelayServer],
    expect: Expect,
) -> None:
    restarted, writer = restarted_and_writer
    async with writer.client() as client:
        world = await set_up_world(client, await admin_headers(writer))
    kr, th, hk = world.participants
    officer = await open_dashboard(on=restarted)
    officer.tolerate(r"WebSocket connection to .* failed", r"ERR_CONNECTION_REFUSED")
    await officer.sign_in(world.members[kr])

    async def report(server: RelayServer, by: str, label: str, n: int) -> list[str]:
        async with server.client() as client:
            bodies = [seizure(summary=f"{label} {i}") for i in range(n)]
            return [await world.report(client, by, body) for body in bodies]

    before = await report(restarted, th, "before the restart", 2)
    for alert_id in before:
        await expect(officer.card(alert_id)).to_be_visible()

    applied_before_cut = max(frame["event"]["seq"] for frame in officer.frames_of("event"))
    await restarted.stop()
    banner = officer.page.locator("#banner")
    await expect(banner).to_contain_text("Connection lost")
    await expect(officer.page.locator("#conn")).to_have_class("conn down")
    while_down = await report(writer, hk, "while the server is down", 3)

    await restarted.start()
    # Most likely before the page's next attempt: they come back by replay, not live.
    just_back = await report(restarted, th, "as soon as it is back", 2)
    await officer.wait_subscribed(after=1)
    await expect(banner).to_be_hidden(timeout=RECONNECTED_WITHIN_MS)
    after = await report(restarted, hk, "after reconnecting", 2)

    posted = before + while_down + just_back + after
    await expect(officer.cards).to_have_count(len(posted))
    for alert_id in posted:
        await expect(officer.card(alert_id)).to_have_count(1)
    shown = await officer.shown_ids()
    assert Counter(shown) == Counter(posted)
    seqs = await officer.shown_seqs()
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == len(seqs)
    # Resumed from ``since``, not reloaded; no event was delivered twice.
    assert [frame["recovered"] for frame in officer.frames_of("subscribed")] == [True, True]
    resubscribe = [f for f in officer.frames_sent if f["type"] == "subscribe"][1]
    assert resubscribe["since"] == applied_before_cut
    delivered = [frame["event"]["seq"] for frame in officer.frames_of("event")]
    assert len(delivered) == len(set(delivered)) == len(posted)
