"""The ``relay`` command line."""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from app.config import Settings
from app.logs import configure

cli = typer.Typer(
    help="Seizure Relay: real-time seizure sharing for joint customs operations.",
    no_args_is_help=True,
)
keys_cli = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


@cli.command()
def migrate() -> None:
    """Bring the database to the newest schema."""
    from app.migrate import upgrade

    settings = Settings()
    upgrade(settings.database_url)
    typer.echo("database is up to date")


@cli.command()
def rollup() -> None:
    """Recount the statistics kept added up (stat_rollup) from the stored alerts.

    Every write keeps them exact; this repairs them after a restore or a bulk load that
    bypassed the server. Safe while servers run: writes wait while it works."""
    rows = asyncio.run(_recount())
    typer.echo(f"statistics recounted: {rows:,} rows")


async def _recount() -> int:
    from app.db import Database
    from app.services.rollup import rebuild_store

    db = Database(Settings())
    try:
        return await rebuild_store(db)
    finally:
        await db.dispose()


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (RELAY_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (RELAY_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Migrate before serving")
    ] = True,
) -> None:
    """Migrate, then serve the API."""
    settings = Settings()
    configure(settings.log_level)
    if migrate_first:
        from app.migrate import upgrade

        upgrade(settings.database_url)
    from app.server import run

    run(
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        compression=settings.stream_compression == "shared",
    )


@cli.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    rate: Annotated[float, typer.Option(min=0.01, help="Simulated alerts per second")] = 0.5,
    database: Annotated[Path, typer.Option(help="SQLite file, replaced on start")] = Path(
        "demo.db"
    ),
) -> None:
    """Serve a fresh demo operation with simulated traffic; prints keys to try."""
    from app.demo import main as run_demo

    run_demo(host=host, port=port, rate=rate, database=database)


@cli.command()
def simulate(
    url: Annotated[str, typer.Option(help="The server, e.g. http://127.0.0.1:8000")],
    token: Annotated[str, typer.Option(help="An admin token (keys are minted per participant)")],
    operation: Annotated[str, typer.Option(help="Operation code")] = "ICEBREAK-II",
    rate: Annotated[float, typer.Option(min=0.01, help="Alerts per second")] = 1.0,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many")] = None,
    seed: Annotated[
        bool, typer.Option(help="First create the demo's administrations and ICEBREAK-II")
    ] = False,
) -> None:
    """Post realistic traffic to any server."""
    import httpx

    from app.simulator import seed_operation
    from app.simulator import simulate as run

    async def go() -> int:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            headers = {"Authorization": f"Bearer {token}"}
            if seed:
                await seed_operation(client, headers)
            return await run(
                client, headers, operation=operation, rate=rate, count=count, report=typer.echo
            )

    try:
        posted = asyncio.run(go())
    except (RuntimeError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        return
    typer.echo(f"posted {posted} alerts")


@cli.command()
def report(
    operation: Annotated[str, typer.Argument(help="Operation code, e.g. ICEBREAK-II")],
    url: Annotated[str, typer.Option(help="The server, e.g. http://127.0.0.1:8000")],
    token: Annotated[str, typer.Option(help="An analyst key", envvar="RELAY_TOKEN")],
    fmt: Annotated[str, typer.Option("--format", help="html or md")] = "html",
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout)")] = None,
) -> None:
    """Write an operation report from the API: totals, breakdowns, trend, largest seizures."""
    import httpx
    from rich.progress import Progress

    from app.report import STEPS, ReportError, build

    if fmt not in ("html", "md"):
        raise typer.BadParameter("--format is html or md")
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task("gathering", total=STEPS)

            def advance(step: str) -> None:
                progress.update(task, advance=1, description=step)

            text = build(url, token, operation, fmt=fmt, advance=advance)
    except (ReportError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}", err=True)


async def _in_committer(job: object) -> object:
    from app.committer import Committer
    from app.db import Database

    db = Database(Settings())
    committer = Committer(db.write_sessions, lock_counter_row=not db.is_sqlite)
    committer.start()
    try:
        return await committer.run(job)  # type: ignore[arg-type]
    finally:
        await committer.stop()
        await db.dispose()


@keys_cli.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, member or analyst")],
    label: Annotated[str, typer.Option(help="Who or what holds the key")],
    administration: Annotated[
        str | None, typer.Option(help="Administration code (not for admin)")
    ] = None,
    expires_at: Annotated[
        datetime | None, typer.Option(help="Expiry, RFC 3339 with offset")
    ] = None,
) -> None:
    """Create a key and print its token once."""
    from pydantic import ValidationError

    from app.errors import AppError
    from app.schemas.admin import KeyIn
    from app.services.keys import create_key

    try:
        data = KeyIn.model_validate(
            {
                "role": role,
                "label": label,
                "administration": administration,
                "expires_at": expires_at.isoformat() if expires_at else None,
            }
        )
        created = asyncio.run(_in_committer(partial(create_key, caller=None, data=data)))
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(e["msg"] for e in exc.errors())) from None
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(created.model_dump_json(indent=2))  # type: ignore[attr-defined]


@keys_cli.command("list")
def keys_list() -> None:
    """List keys (never their tokens)."""
    from app.db import Database
    from app.services.keys import list_keys
    from app.services.pagination import Cursor

    async def run() -> None:
        db = Database(Settings())
        try:
            async with db.read_sessions() as session:
                cursor = None
                while True:
                    items, next_cursor = await list_keys(session, limit=500, cursor=cursor)
                    for key in items:
                        state = "revoked" if key.revoked_at else "active"
                        owner = key.administration or "-"
                        typer.echo(f"{key.id}  {key.role:8} {owner:14} {state:8} {key.label}")
                    if next_cursor is None:
                        break
                    cursor = Cursor.decode(next_cursor)
        finally:
            await db.dispose()

    asyncio.run(run())


@keys_cli.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once."""
    from app.errors import AppError
    from app.services.keys import revoke_key

    try:
        asyncio.run(_in_committer(partial(revoke_key, caller=None, key_id=key_id)))
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {key_id}")


def main() -> None:
    cli()
