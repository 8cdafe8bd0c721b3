"""Fixtures: every store-touching test runs on SQLite and on PostgreSQL, each run in a
database of its own; the app runs its real lifespan; HTTP goes through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, text

from app.committer import WriteTx
from app.config import Settings
from app.deps import Runtime
from app.main import create_app
from app.models import Base
from app.services.keys import bootstrap_admin
from tests.api import ADMIN_TOKEN, Api
from tests.stores import fresh_database

STORES = ["sqlite", "postgres"]


@pytest.fixture(scope="session", params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def database_url(store: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with fresh_database(store, tmp_path_factory.mktemp(store)) as url:
        yield url


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Test settings: no rate limit, quick audit flushes, unless overridden."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "rate_limit": 0,
        "audit_flush_interval": 0.05,
        "bootstrap_token": None,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(settings_for(database_url))
    async with app.router.lifespan_context(app):
        yield app


async def _wipe(tx: WriteTx) -> None:
    if tx.session.get_bind().dialect.name == "sqlite":
        await tx.session.execute(text("DELETE FROM alert_fts"))
    for table in reversed(Base.metadata.sorted_tables):
        if table.name != "event_counter":
            await tx.session.execute(delete(table))


async def reset(runtime: Runtime) -> None:
    """Empty the store (the event counter keeps counting) and mint the admin key again."""
    await runtime.audit.flush()
    await runtime.committer.run(_wipe)
    await runtime.committer.run(partial(bootstrap_admin, token=ADMIN_TOKEN))


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay.test")


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[Api]:
    runtime: Runtime = app.state.runtime
    await reset(runtime)
    async with client_for(app) as client:
        yield Api(client, runtime)
