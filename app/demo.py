"""``relay demo``: a fresh SQLite store, an ICE BREAK II-like operation, keys printed,
and simulated traffic, so that a newcomer sees live alerts at once."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import typer
import uvicorn

from app.config import Settings
from app.logs import configure
from app.main import create_app
from app.migrate import upgrade
from app.server import SERVER_OPTIONS
from app.services.keys import new_token
from app.simulator import OCU, OPERATION, mint_key, seed_operation, simulate

BANNER = """
Seizure Relay demo: operation {operation}, coordinated by {ocu}, 21 administrations.

  Dashboard / API   http://{host}:{port}/          (API docs at /docs)
  Officer key       {officer}   (KR-KCS, member)
  Analyst key       {analyst}   (RILO-AP, analyst)
  Admin key         {admin}

  Follow the live events:
    curl -s -H 'Authorization: Bearer {officer}' 'http://{host}:{port}/v1/events?since=0'
  Stream them (websocket): ws://{host}:{port}/v1/stream with the same key.

Simulated traffic follows ({rate} alerts/s). Ctrl-C stops.
"""


async def run_demo(*, host: str, port: int, rate: float, database: Path) -> None:
    url = f"sqlite+aiosqlite:///{database}"
    await asyncio.to_thread(upgrade, url)
    admin_token = new_token()
    settings = Settings(
        database_url=url, bootstrap_token=admin_token, host=host, port=port, rate_limit=0
    )
    options: dict[str, Any] = {k: v for k, v in SERVER_OPTIONS.items() if k != "factory"}
    options["ws_per_message_deflate"] = settings.stream_compression == "shared"
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port, **options))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # raises what stopped it (a taken port, say)
            return
        await asyncio.sleep(0.05)
    admin = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=10) as client:
        await seed_operation(client, admin)
        officer = await mint_key(
            client,
            admin,
            administration="KR-KCS",
            role="member",
            label="Incheon mail centre officer",
        )
        analyst = await mint_key(
            client, admin, administration=OCU[0], role="analyst", label="OCU analyst"
        )
        typer.echo(
            BANNER.format(
                operation=OPERATION,
                ocu=OCU[0],
                host=host,
                port=port,
                officer=officer,
                analyst=analyst,
                admin=admin_token,
                rate=rate,
            )
        )
        traffic = asyncio.create_task(simulate(client, admin, rate=rate, report=typer.echo))
        await serving
        traffic.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await traffic


def main(*, host: str, port: int, rate: float, database: Path) -> None:
    configure("WARNING")
    for suffix in ("", "-wal", "-shm"):  # a fresh store every time
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(host=host, port=port, rate=rate, database=database))
