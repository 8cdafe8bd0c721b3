"""End-to-end fixtures: Debian's Chromium driven by Playwright against real ``relay serve``
processes on the session's store.

Chromium and the playwright package are checked once per session; Chromium is installed
with apt when it is missing and we are root. What cannot be had fails the run under CI
(``CI=true``) and skips the end-to-end tests elsewhere.

The dashboard speaks only HTTP and the websocket, so the tests run on the SQLite store
alone: the PostgreSQL store behind the same API is covered by tests/routers and
tests/realtime, and a second browser run would double the time and find nothing new.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.world import World, set_up_world
from tests.server import RelayServer, admin_headers
from tests.stores import IN_CI

if TYPE_CHECKING:
    from playwright.async_api import Browser

    from tests.e2e.browser import Dashboard

CHROMIUM = Path("/usr/bin/chromium")
APT_TIMEOUT = 600
ONLY_STORE = "sqlite"

OpenDashboard = Callable[..., Awaitable["Dashboard"]]


def unavailable(what: str) -> None:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI but is not available")
    pytest.skip(f"{what} is not available")


def install_chromium(request: pytest.FixtureRequest) -> None:
    """``apt-get install chromium``, bounded by ``APT_TIMEOUT``, its output shown as it goes."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with capture.global_and_fixture_disabled():
        print(f"\n{CHROMIUM} is missing: installing Debian's chromium package", flush=True)
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            print("$", " ".join(command), flush=True)
            try:
                subprocess.run(command, env=env, timeout=APT_TIMEOUT, check=True)
            except (subprocess.SubprocessError, OSError) as exc:
                print(f"{' '.join(command)} failed: {exc}", flush=True)
                return


@pytest.fixture(scope="session")
def chromium(request: pytest.FixtureRequest) -> Path:
    """Debian's Chromium and the playwright package, installing Chromium if we may."""
    if importlib.util.find_spec("playwright") is None:
        unavailable("the playwright package (pip install -e '.[dev]')")
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        install_chromium(request)
    if not CHROMIUM.exists():
        unavailable(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    from tests.e2e.browser import launch

    async with async_playwright() as playwright:
        browser = await launch(playwright, executable=chromium)
        yield browser
        await browser.close()


@pytest.fixture(scope="session")
def expect(chromium: Path) -> Any:
    """Playwright's ``expect``, imported only once the package is known to be there."""
    from playwright.async_api import expect

    return expect


@pytest.fixture(scope="session")
def e2e_database_url(store: str, request: pytest.FixtureRequest) -> str:
    """The session's store, SQLite only (see the module docstring)."""
    if store != ONLY_STORE:
        pytest.skip("the dashboard is store-agnostic: end-to-end tests run on SQLite only")
    url: str = request.getfixturevalue("database_url")
    return url


@pytest.fixture(scope="session")
async def server(
    e2e_database_url: str, chromium: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RelayServer]:
    """One ``relay serve`` for every end-to-end test that does not stop its server."""
    async with RelayServer(e2e_database_url, tmp_path_factory.mktemp("e2e") / "relay.log") as relay:
        yield relay


@pytest.fixture
async def world(server: RelayServer) -> World:
    async with server.client() as client:
        return await set_up_world(client, await admin_headers(server))


@pytest.fixture
async def open_dashboard(browser: Browser, server: RelayServer) -> AsyncIterator[OpenDashboard]:
    """Opens dashboards (``viewport=``, ``on=`` another server); each is checked for
    unexpected script or console errors and closed afterwards."""
    from tests.e2e.browser import DESKTOP, Dashboard

    opened: list[Dashboard] = []

    async def open_one(
        *, viewport: dict[str, int] = DESKTOP, on: RelayServer | None = None
    ) -> Dashboard:
        dashboard = await Dashboard.open(browser, (on or server).base_url, viewport=viewport)
        opened.append(dashboard)
        return dashboard

    yield open_one
    for dashboard in opened:
        await dashboard.close()
    errors = {i: d.unexpected_errors for i, d in enumerate(opened) if d.unexpected_errors}
    assert not errors, f"errors in the page's console: {errors}"
