"""Carrying committed batches between processes, chosen by URL scheme.

No URL: one process serves alone (``LocalBroker``). ``redis://`` or ``rediss://``:
batches are published on a channel every process subscribes to. The broker only
speeds delivery up: a batch it loses is filled from the event log by the sequencer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from app.jsonenc import dumps, loads
from app.realtime.events import Batch

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("relay.broker")


class Broker(Protocol):
    async def start(self, on_batch: Callable[[Batch], None], *, namespace: str) -> None:
        """Start carrying batches of the event log named ``namespace`` (its epoch): processes
        on another store, sharing the same broker, never hear them."""

    def publish(self, batch: Batch) -> None: ...

    async def ping(self) -> None: ...

    async def stop(self) -> None: ...


class LocalBroker:
    """One process: nothing to carry."""

    async def start(self, on_batch: Callable[[Batch], None], *, namespace: str) -> None:
        return None

    def publish(self, batch: Batch) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisBroker:
    CHANNEL = "relay:batches"

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=None)
        # Redis pub/sub channels are not scoped by database number: the event log's epoch
        # in the name keeps deployments that share a Redis apart.
        self._channel = self.CHANNEL
        self._origin = uuid.uuid4().hex
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10_000)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, on_batch: Callable[[Batch], None], *, namespace: str) -> None:
        self._channel = f"{self.CHANNEL}:{namespace}"
        self._tasks = [
            asyncio.create_task(self._listen(on_batch), name="broker-listen"),
            asyncio.create_task(self._send(), name="broker-send"),
        ]

    def publish(self, batch: Batch) -> None:
        message = dumps({"origin": self._origin, "batch": batch.to_wire()})
        try:
            self._outgoing.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("broker backlog full; other processes will fill from the log")

    async def ping(self) -> None:
        await asyncio.wait_for(self._redis.ping(), timeout=2)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._redis.aclose()

    async def _send(self) -> None:
        while True:
            message = await self._outgoing.get()
            try:
                await self._redis.publish(self._channel, message)
            except Exception:
                log.warning("publishing to the broker failed; the log covers it", exc_info=True)
                await asyncio.sleep(0.5)

    async def _listen(self, on_batch: Callable[[Batch], None]) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        data = loads(message["data"])
                        if data.get("origin") != self._origin:
                            on_batch(Batch.from_wire(data["batch"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("broker subscription lost; reconnecting", exc_info=True)
                await asyncio.sleep(1)


def broker_for(url: str | None) -> Broker:
    """The broker a URL names; optional drivers are imported only when chosen."""
    if not url or url.startswith("memory://"):
        return LocalBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBroker(url)
    raise ValueError(f"unsupported broker URL scheme: {url.split(':', 1)[0]}")
