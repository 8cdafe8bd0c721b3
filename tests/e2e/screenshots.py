"""Screenshots of the dashboard for docs/screenshots/, taken from a live ``relay demo``.

    python -m tests.e2e.screenshots

Starts ``relay demo`` on a free port with a store in a temporary directory, reads the
officer's and the analyst's keys from what it prints, lets simulated traffic run for a
while, then saves the feed, an alert's detail and the statistics at desktop
(1280x860) and phone (390x844) sizes. Console errors in the page are reported and make
the script exit non-zero. Not a test: pytest collects only ``test_*.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Browser, async_playwright, expect

from tests.e2e.browser import DESKTOP, PHONE, Dashboard, launch
from tests.server import RELAY, free_port

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TRAFFIC_SECONDS = 10.0
TRAFFIC_RATE = 1.0  # alerts per second: about ten cards in the feed
KEYS_TIMEOUT = 60.0
KEY_LINE = re.compile(r"^\s*(Officer|Analyst) key\s+(\S+)")


@dataclass(frozen=True)
class Demo:
    base_url: str
    officer: str
    analyst: str


@contextlib.asynccontextmanager
async def relay_demo(directory: Path) -> AsyncIterator[Demo]:
    """``relay demo`` on a free port, stopped (its whole process group) on the way out."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(RELAY),
        "demo",
        "--port",
        str(port),
        "--rate",
        str(TRAFFIC_RATE),
        "--database",
        str(directory / "demo.db"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=directory,
        start_new_session=True,
    )
    assert process.stdout is not None
    drain: asyncio.Task[None] | None = None
    try:
        keys = await asyncio.wait_for(read_keys(process.stdout), KEYS_TIMEOUT)
        drain = asyncio.create_task(discard(process.stdout))
        yield Demo(f"http://127.0.0.1:{port}", keys["Officer"], keys["Analyst"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 10)
        if drain is not None:
            drain.cancel()


async def read_keys(stdout: asyncio.StreamReader) -> dict[str, str]:
    """The keys from the demo's banner; what it printed before, if it never comes."""
    keys: dict[str, str] = {}
    printed: list[str] = []
    while len(keys) < 2:
        line = (await stdout.readline()).decode(errors="replace")
        if not line:
            raise RuntimeError("relay demo exited before printing its keys:\n" + "".join(printed))
        printed.append(line)
        if match := KEY_LINE.match(line):
            keys[match[1]] = match[2]
    return keys


async def discard(stdout: asyncio.StreamReader) -> None:
    """Keep reading what the simulator prints, so that its pipe never fills."""
    while await stdout.readline():
        pass


async def shoot(dashboard: Dashboard, name: str) -> None:
    path = OUT / f"{name}.png"
    await dashboard.page.mouse.move(0, 0)  # no hover outline left where "Sign in" was
    await dashboard.page.screenshot(path=path, animations="disabled")
    print(f"wrote {path.relative_to(OUT.parents[1])}")


async def feed_and_detail(
    browser: Browser, demo: Demo, size: str, viewport: dict[str, int]
) -> Dashboard:
    officer = await Dashboard.open(browser, demo.base_url, viewport=viewport)
    await officer.sign_in(demo.officer)
    await expect(officer.cards.first).to_be_visible()
    await shoot(officer, f"feed-{size}")
    # A seizure shows the most of the panel: goods, route, concealment.
    kind = officer.page.locator(".pill", has_text=re.compile("^seizure$"))
    seizure = officer.cards.filter(has=kind).first
    alert_id = await seizure.get_attribute("data-id")
    assert alert_id is not None
    await officer.open_detail(alert_id)
    await expect(officer.page.locator("#detail-body h2")).to_be_visible()
    await shoot(officer, f"detail-{size}")
    return officer


async def statistics(
    browser: Browser, demo: Demo, size: str, viewport: dict[str, int]
) -> Dashboard:
    analyst = await Dashboard.open(browser, demo.base_url, viewport=viewport)
    await analyst.sign_in(demo.analyst)
    await analyst.page.get_by_role("button", name="Statistics").click()
    await expect(analyst.page.locator("#stats-charts .chart .bar").first).to_be_visible()
    await shoot(analyst, f"stats-{size}")
    return analyst


async def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="relay-demo-") as directory:
        async with relay_demo(Path(directory)) as demo, async_playwright() as playwright:
            print(f"relay demo at {demo.base_url}; {TRAFFIC_SECONDS:.0f} s of traffic first")
            await asyncio.sleep(TRAFFIC_SECONDS)
            browser = await launch(playwright)
            dashboards: list[Dashboard] = []
            try:
                for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                    dashboards.append(await feed_and_detail(browser, demo, size, viewport))
                    dashboards.append(await statistics(browser, demo, size, viewport))
            finally:
                await browser.close()
    errors = [error for dashboard in dashboards for error in dashboard.unexpected_errors]
    for error in errors:
        print(f"console error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
