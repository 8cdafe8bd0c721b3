"""When the store is unreachable or too busy: 503 with Retry-After within 5 s, nothing
half-written, and recovery without a restart (API.md section 10)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.main import create_app
from tests.api import ADMIN, assert_problem
from tests.conftest import client_for, reset, settings_for
from tests.stores import fresh_database


class TcpProxy:
    """Forwards a local port to PostgreSQL; ``cut()`` drops all connections and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def postgres_behind_proxy(tmp_path: Path) -> AsyncIterator[tuple[str, TcpProxy]]:
    async with fresh_database("postgres", tmp_path) as url:
        target = make_url(url)
        proxy = TcpProxy(target.port or 5432)
        await proxy.start()
        yield target.set(port=proxy.port).render_as_string(hide_password=False), proxy
        with contextlib.suppress(Exception):
            await proxy.cut()


async def test_unreachable_postgres_answers_503_then_recovers_without_restart(
    tmp_path: Path,
) -> None:
    async with postgres_behind_proxy(tmp_path) as (url, proxy):
        app = create_app(settings_for(url, db_timeout=2.0))
        async with app.router.lifespan_context(app), client_for(app) as client:
            await reset(app.state.runtime)
            assert (await client.get("/v1/me", headers=ADMIN)).status_code == 200

            await proxy.cut()
            for request in (
                client.get("/v1/me", headers=ADMIN),
                client.post(
                    "/v1/administrations",
                    json={"code": "KR-KCS", "name": "Korea Customs Service", "territory": "KR"},
                    headers=ADMIN,
                ),
                client.get("/readyz"),
            ):
                started = time.monotonic()
                response = await request
                assert time.monotonic() - started < 5
                assert_problem(response, 503)
                assert response.headers["Retry-After"].isdigit()

            await proxy.start()  # the database is back, on the same port
            deadline = time.monotonic() + 10
            while (await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "did not recover"
                await asyncio.sleep(0.2)
            created = await client.post(
                "/v1/administrations",
                json={"code": "KR-KCS", "name": "Korea Customs Service", "territory": "KR"},
                headers=ADMIN,
            )
            assert created.status_code == 201, created.text
            listed = await client.get("/v1/administrations", headers=ADMIN)
            assert [a["code"] for a in listed.json()["items"]] == ["KR-KCS"]


async def test_sqlite_locked_by_another_writer_answers_503_and_stores_nothing(
    tmp_path: Path,
) -> None:
    async with fresh_database("sqlite", tmp_path) as url:
        app = create_app(settings_for(url, db_timeout=1.0))
        async with app.router.lifespan_context(app), client_for(app) as client:
            await reset(app.state.runtime)
            locker = create_engine(url.replace("+aiosqlite", ""), isolation_level="AUTOCOMMIT")
            with locker.connect() as connection:
                connection.execute(text("BEGIN EXCLUSIVE"))
                started = time.monotonic()
                response = await client.post(
                    "/v1/administrations",
                    json={"code": "HK-CED", "name": "Hong Kong Customs", "territory": "HK"},
                    headers=ADMIN,
                )
                assert time.monotonic() - started < 5
                assert_problem(response, 503)
                assert "Retry-After" in response.headers
                connection.execute(text("ROLLBACK"))
            locker.dispose()
            listed = await client.get("/v1/administrations", headers=ADMIN)
            assert listed.json()["items"] == []
            again = await client.post(
                "/v1/administrations",
                json={"code": "HK-CED", "name": "Hong Kong Customs", "territory": "HK"},
                headers=ADMIN,
            )
            assert again.status_code == 201
