"""Headless Chromium and the dashboard seen as a page object, shared by the end-to-end
tests and ``python -m tests.e2e.screenshots``.

A ``Dashboard`` is one browser context (its own sessionStorage, so its own signed-in
key) with one page. It records every websocket frame the page sends and receives, and
every script error or console error, so that a test can say what it expected to see.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Playwright,
    WebSocket,
    expect,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
CONNECTED_TIMEOUT_MS = 10_000


async def launch(playwright: Playwright, *, executable: Path = CHROMIUM) -> Browser:
    """Debian's Chromium, headless."""
    return await playwright.chromium.launch(
        executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
    )


@dataclass
class Dashboard:
    """The officers' dashboard in a browser context of its own."""

    page: Page
    frames_sent: list[dict[str, Any]] = field(default_factory=list)
    frames_received: list[dict[str, Any]] = field(default_factory=list)
    socket_urls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tolerated: list[re.Pattern[str]] = field(default_factory=list)
    _frame_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def open(
        cls, browser: Browser, base_url: str, *, viewport: dict[str, int] = DESKTOP
    ) -> Dashboard:
        """A fresh context (nothing in sessionStorage) on the dashboard's sign-in form."""
        context = await browser.new_context(
            base_url=base_url, viewport=viewport, locale="en-GB", timezone_id="UTC"
        )
        dashboard = cls(await context.new_page())
        dashboard.page.on("pageerror", lambda error: dashboard.errors.append(str(error)))
        dashboard.page.on("console", dashboard._console)
        dashboard.page.on("websocket", dashboard._watch)
        await dashboard.page.goto("/")
        return dashboard

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _watch(self, socket: WebSocket) -> None:
        self.socket_urls.append(socket.url)
        socket.on("framesent", lambda payload: self.frames_sent.append(_decode(payload)))
        socket.on("framereceived", self._received)

    def _received(self, payload: str | bytes) -> None:
        self.frames_received.append(_decode(payload))
        self._frame_arrived.set()

    def tolerate(self, *patterns: str) -> None:
        """Console errors that this test causes on purpose (a refused key, a dead server)."""
        self.tolerated += [re.compile(pattern) for pattern in patterns]

    @property
    def unexpected_errors(self) -> list[str]:
        """Script errors, CSP violations and console errors nobody said to expect."""
        return [e for e in self.errors if not any(p.search(e) for p in self.tolerated)]

    async def close(self) -> None:
        await self.page.context.close()

    # --- signing in ----------------------------------------------------------------------

    async def submit_key(self, key: str) -> None:
        await self.page.locator("#key").fill(key)
        await self.page.get_by_role("button", name="Sign in").click()

    async def sign_in(self, key: str) -> None:
        """Sign in and wait until the feed is live: history loaded, stream subscribed."""
        await self.submit_key(key)
        await expect(self.page.locator("#app")).to_be_visible()
        await self.wait_subscribed()

    async def wait_subscribed(self, *, after: int = 0) -> None:
        """Until a ``subscribed`` frame beyond the first ``after`` ones has arrived."""
        await self.page.wait_for_function(
            "() => document.querySelector('#conn').classList.contains('live')",
            timeout=CONNECTED_TIMEOUT_MS,
        )
        try:
            async with asyncio.timeout(CONNECTED_TIMEOUT_MS / 1000):
                while len(self.frames_of("subscribed")) <= after:
                    self._frame_arrived.clear()
                    await self._frame_arrived.wait()
        except TimeoutError:
            raise AssertionError(f"no subscribed frame in {CONNECTED_TIMEOUT_MS} ms") from None

    def frames_of(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames_received if frame.get("type") == kind]

    # --- the feed ------------------------------------------------------------------------

    @property
    def cards(self) -> Locator:
        return self.page.locator("#feed > li")

    def card(self, alert_id: str) -> Locator:
        return self.page.locator(f'#feed > li[data-id="{alert_id}"]')

    async def shown_ids(self) -> list[str]:
        """The ids of the cards in the feed, top to bottom, repeats included."""
        ids: list[str] = await self.cards.evaluate_all("cards => cards.map(c => c.dataset.id)")
        return ids

    async def shown_seqs(self) -> list[int]:
        seqs: list[str] = await self.cards.evaluate_all("cards => cards.map(c => c.dataset.seq)")
        return [int(seq) for seq in seqs]

    async def choose(self, filter_name: str, value: str) -> None:
        """Set one select of the filter bar (``""`` is "all")."""
        await self.page.locator(f'#filters select[name="{filter_name}"]').select_option(value)

    async def territory(self, text: str) -> None:
        await self.page.locator('#filters input[name="territory"]').fill(text)

    # --- the detail panel ----------------------------------------------------------------

    @property
    def detail(self) -> Locator:
        return self.page.locator("#detail")

    async def open_detail(self, alert_id: str) -> None:
        """Click the card and wait until the panel shows the alert and its comments."""
        async with self.page.expect_response(re.compile(rf"/v1/alerts/{alert_id}/comments")):
            await self.card(alert_id).click()
        await expect(self.detail).to_be_visible()

    def detail_field(self, label: str) -> Locator:
        """The value the detail panel shows against ``label`` ("Route", "Identifiers"...)."""
        return self.page.locator("#detail-body dl dt", has_text=re.compile(f"^{label}$")).locator(
            "xpath=following-sibling::dd[1]"
        )

    def ack_button(self, status: str) -> Locator:
        return self.page.locator(f'#ack-buttons button[data-status="{status}"]')

    @property
    def acknowledgements(self) -> Locator:
        return self.page.locator("#detail-body ol.acks > li")


def _decode(payload: str | bytes) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(payload)
    return frame
