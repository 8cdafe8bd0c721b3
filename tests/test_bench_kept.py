"""Benchmark stores kept between runs (bench/kept.py): seeded once, reused after."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import kept
from bench.seeding import Seeded


def seeded(alerts: int) -> Seeded:
    return Seeded(
        alerts=alerts,
        events=2 * alerts,
        seconds=1.0,
        analyst_tokens={"RILO-AP": "sr_token"},
        identifiers=["MSCU1234567"],
        documents_checked=alerts,
    )


def test_a_kept_store_is_seeded_once_and_reused_with_what_was_known_of_it(
    tmp_path: Path,
) -> None:
    fills: list[str] = []

    def fill(url: str) -> Seeded:
        fills.append(url)
        return seeded(10)

    url, first, reused_first = kept.kept_store(tmp_path, "sqlite", alerts=10, seed=1, fill=fill)
    again, second, reused_again = kept.kept_store(tmp_path, "sqlite", alerts=10, seed=1, fill=fill)

    assert (reused_first, reused_again) == (False, True)
    assert fills == [url]
    assert again == url
    assert second == first
    assert Path(url.split("///", 1)[1]).is_file()


def test_a_store_kept_for_other_figures_is_refused(tmp_path: Path) -> None:
    kept.kept_store(tmp_path, "sqlite", alerts=10, seed=1, fill=lambda url: seeded(10))

    with pytest.raises(SystemExit, match="holds 10 alerts"):
        kept.load(tmp_path, "sqlite", alerts=20, seed=1)


def test_directories_of_the_same_name_keep_separate_postgresql_databases(
    tmp_path: Path,
) -> None:
    first = kept._database_name(tmp_path / "a" / "kept")
    second = kept._database_name(tmp_path / "b" / "kept")

    assert first != second
    assert first.startswith("relay_kept_kept_")
    assert len(kept._database_name(tmp_path / ("x" * 100))) < 63


def test_a_store_kept_under_older_migrations_is_brought_to_the_head_when_reused(
    tmp_path: Path,
) -> None:
    import json
    import sqlite3

    from alembic import command

    from app.migrate import alembic_config

    url, _, _ = kept.kept_store(tmp_path, "sqlite", alerts=10, seed=1, fill=lambda u: seeded(10))
    manifest = tmp_path / "sqlite.json"
    head = json.loads(manifest.read_text())["revision"]
    command.downgrade(alembic_config(url), "0003")
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "revision": "0003"}))

    def columns() -> set[str]:
        with sqlite3.connect(url.split("///", 1)[1]) as connection:
            return {row[1] for row in connection.execute("PRAGMA table_info(alert)")}

    assert "commodity_mask" not in columns()
    assert kept.load(tmp_path, "sqlite", alerts=10, seed=1) is not None

    assert "commodity_mask" in columns()
    assert json.loads(manifest.read_text())["revision"] == head is not None
