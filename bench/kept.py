"""Seeded stores kept between benchmark runs: seeding a million alerts takes minutes, a
measurement seconds. A kept store lives in a directory: the SQLite file itself, or for
PostgreSQL a database named in the directory's manifest, with what the benchmark needs
to know of it (``Seeded``: the analyst tokens, sample identifiers) in ``<store>.json``.

A store kept under older migrations is migrated to the head when it is reused, then
compacted (``VACUUM``; ``VACUUM FULL`` on PostgreSQL) so that it reads like a fresh seed.

Reading a kept store adds audit rows (every list request is audited) and nothing else a
list or stats request reads. To drop one: remove the directory and, for PostgreSQL, its
database (``dropdb relay_kept_<directory name>_<hash>``, the name in the manifest's url)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
from alembic.script import ScriptDirectory

from app.migrate import alembic_config, upgrade
from bench.seeding import Seeded
from bench.server import POSTGRES_ADMIN_URL

Seed = Callable[[str], Seeded]


async def _postgres(*statements: str, url: str = POSTGRES_ADMIN_URL) -> None:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def _manifest(directory: Path, store: str) -> Path:
    return directory / f"{store}.json"


def _database_name(directory: Path) -> str:
    """A PostgreSQL database name of the directory's name and a hash of its whole path, so
    that ``/a/kept`` and ``/b/kept`` do not share (and drop) one database; at most 60
    characters, within PostgreSQL's 63."""
    resolved = directory.resolve()
    slug = re.sub(r"[^a-z0-9_]", "_", resolved.name.lower())[:40]
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    return f"relay_kept_{slug}_{digest}"


def _url(directory: Path, store: str) -> str:
    if store == "sqlite":
        return f"sqlite+aiosqlite:///{directory.resolve()}/bench.db"
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{_database_name(directory)}"


def load(directory: Path, store: str, *, alerts: int, seed: int) -> tuple[str, Seeded] | None:
    """The kept ``store`` of ``directory`` if it holds ``alerts`` alerts seeded from ``seed``;
    None if nothing is kept there; an error if what is kept was seeded otherwise."""
    path = _manifest(directory, store)
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    if (data["alerts"], data["seed"]) != (alerts, seed):
        raise SystemExit(
            f"{path} holds {data['alerts']:,} alerts seeded from {data['seed']}, not "
            f"{alerts:,} from {seed}: choose another directory or remove this one"
        )
    seeded = Seeded(**data["seeded"])
    head = _head()
    if data.get("revision") != head:
        _migrate(data["url"], store)
        data["revision"] = head
        path.write_text(json.dumps(data, indent=1))
    return data["url"], seeded


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _migrate(url: str, store: str) -> None:
    """Bring a store seeded under older migrations to the head, then compact it as a fresh
    seed would be: a migration that rewrites rows leaves the old versions' space behind
    (and, on PostgreSQL, a cleared visibility map), which would slow what is measured."""
    print(f"{store}: migrating the kept store to the head, then compacting it", flush=True)
    upgrade(url)
    if store == "sqlite":
        path = url.split("///", 1)[1]
        with sqlite3.connect(path) as connection:
            connection.execute("VACUUM")
    else:
        asyncio.run(_postgres("VACUUM FULL ANALYZE", url=url))


def kept_store(
    directory: Path, store: str, *, alerts: int, seed: int, fill: Seed
) -> tuple[str, Seeded, bool]:
    """(url, what was seeded, reused): the kept store, else a fresh one filled by ``fill``
    and kept."""
    found = load(directory, store, alerts=alerts, seed=seed)
    if found is not None:
        return found[0], found[1], True
    directory.mkdir(parents=True, exist_ok=True)
    url = _url(directory, store)
    if store == "sqlite":
        Path(url.split("///", 1)[1]).unlink(missing_ok=True)
    else:
        name = _database_name(directory)
        drop, create = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
        asyncio.run(_postgres(drop, create))
    upgrade(url)
    seeded = fill(url)
    manifest = {
        "url": url,
        "alerts": alerts,
        "seed": seed,
        "revision": _head(),
        "seeded": dataclasses.asdict(seeded),
    }
    _manifest(directory, store).write_text(json.dumps(manifest, indent=1))
    return url, seeded, False
