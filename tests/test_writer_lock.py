"""SQLite's writer lock across processes (``app/db.WriterLock``): a committer that finds
another process's transaction under way waits in the kernel and goes on the moment the
other lets go, instead of sleeping in SQLite's busy handler; one that waits too long
answers 503 and lets go of the lock it was waiting for.

Two ``WriterLock`` objects on one path stand for two processes: each opens the lock file
for itself, and ``flock`` locks belong to the open file, not to the process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.db import WriterLock


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "relay.db-writer.lock")


async def test_a_second_writer_waits_for_the_first_and_goes_on_when_it_lets_go(
    path: str,
) -> None:
    first, second = WriterLock(path, timeout=5), WriterLock(path, timeout=5)
    order: list[str] = []

    async def write(lock: WriterLock, name: str, hold: float) -> None:
        async with lock.held():
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    try:
        held = asyncio.create_task(write(first, "first", 0.3))
        await asyncio.sleep(0.05)
        await write(second, "second", 0)
        await held
    finally:
        first.close()
        second.close()

    assert order == ["first in", "first out", "second in", "second out"]


async def test_a_writer_that_waits_too_long_gives_up_and_its_next_lock_is_its_own(
    path: str,
) -> None:
    holder, waiter, other = (WriterLock(path, timeout=0.2) for _ in range(3))
    release = asyncio.Event()

    async def hold() -> None:
        async with holder.held():
            await release.wait()

    try:
        held = asyncio.create_task(hold())
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            async with waiter.held():
                pytest.fail("got a lock that another writer holds")
        release.set()
        await held
        async with waiter.held():
            # The abandoned wait has taken the old file's lock and let it go by now; the
            # lock this batch holds is still held against everyone else.
            await asyncio.sleep(0.1)
            with pytest.raises(TimeoutError):
                async with other.held():
                    pytest.fail("two writers hold the lock")
        async with other.held():  # and let go once the batch is done
            pass
    finally:
        for lock in (holder, waiter, other):
            lock.close()
