"""``create_app(settings)``: the ASGI application and the lifespan that builds its parts.

Nothing connects at import time; the lifespan builds the store, the committer and
the audit sink and keeps them, typed, in ``app.state.runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from functools import partial

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from app.committer import Committer
from app.config import Settings
from app.db import Database
from app.deps import Runtime
from app.errors import install_error_handlers
from app.metrics import Metrics
from app.middleware import RequestGuard
from app.ratelimit import RateLimiter
from app.realtime.broker import broker_for
from app.realtime.events import Batch, LiveEvent
from app.realtime.hub import Hub
from app.realtime.sequencer import Sequencer
from app.routers import (
    administrations,
    alerts,
    analysis,
    audit,
    docs,
    events,
    followups,
    health,
    keys,
    operations,
    stream,
    web,
)
from app.routers.reporting import ReportFastPath
from app.services import events as events_service
from app.services import idempotency
from app.services import stream as stream_service
from app.services.audit import AuditSink
from app.services.idempotency import InFlight
from app.services.keys import KeyCache, bootstrap_admin

log = logging.getLogger("relay")

MAINTENANCE_INTERVAL = 3600.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings)
        hub = Hub()
        broker = broker_for(settings.broker_url)

        async def fetch(after: int, up_to: int, limit: int) -> list[LiveEvent]:
            async with db.read_sessions() as session:
                return await events_service.fetch_live(
                    session, after=after, up_to=up_to, limit=limit
                )

        async def head() -> int:
            async with db.read_sessions() as session:
                return await events_service.head(session)

        sequencer = Sequencer(
            deliver=hub.dispatch, fetch=fetch, head=head, on_lag=metrics.delivery_lag.observe
        )

        def on_commit(committed: Batch) -> None:
            metrics.events_committed.inc(len(committed.events))
            metrics.alerts_created.inc(sum(e.type == "alert.created" for e in committed.events))
            sequencer.offer(committed)
            broker.publish(committed)

        committer = Committer(
            db.write_sessions,
            lock_counter_row=not db.is_sqlite,
            max_batch=settings.write_batch_max,
            on_commit=on_commit,
            observe_batch=metrics.write_batch_size.observe,
            writer_lock=db.writer_lock,
        )
        await sequencer.start()
        async with db.read_sessions() as session:
            epoch = await events_service.epoch(session)
        await broker.start(sequencer.offer, namespace=epoch)
        committer.start()
        sink = AuditSink(committer, interval=settings.audit_flush_interval)
        sink.start()
        app.state.runtime = Runtime(
            settings=settings,
            db=db,
            committer=committer,
            audit=sink,
            in_flight=InFlight(),
            keys=KeyCache(),
            limiter=RateLimiter(settings.rate_limit),
            metrics=metrics,
            hub=hub,
            broker=broker,
            stream=stream_service.StreamContext(
                settings=settings,
                db=db,
                hub=hub,
                audit=sink,
                metrics=metrics,
                delivered_head=lambda: sequencer.delivered_head,
            ),
        )
        if settings.bootstrap_token:
            created = await committer.run(partial(bootstrap_admin, token=settings.bootstrap_token))
            if created:
                log.info("bootstrap admin key created")
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's scans, and collect young objects less often. Fan-out allocates
        # many short-lived frames; full collections over thousands of connections paused
        # delivery for a third of a second (docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)
        background = [
            asyncio.create_task(_maintain(committer), name="maintenance"),
            asyncio.create_task(stream_service.refresh_forever(hub, db), name="stream-refresh"),
        ]
        try:
            yield
        finally:
            hub.close_all(1001, "server shutting down")
            for task in background:
                task.cancel()
            await sink.stop()
            await committer.stop()
            await sequencer.stop()
            await broker.stop()
            await db.dispose()

    app = FastAPI(
        title="Seizure Relay",
        version="1.0.0",
        summary="Real-time seizure information sharing for joint customs operations",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (
        health,
        administrations,
        operations,
        keys,
        alerts,
        followups,
        analysis,
        events,
        audit,
        stream,
        docs,
        web,
    ):
        app.include_router(module.router)
    app.mount("/assets", StaticFiles(directory=web.WEB), name="assets")
    app.add_middleware(ReportFastPath)  # inside the guard: the body is already screened
    app.add_middleware(RequestGuard, max_body=settings.max_body_bytes, metrics=metrics)
    return app


async def _maintain(committer: Committer) -> None:
    """Housekeeping that no request waits for."""
    while True:
        try:
            await committer.run(idempotency.prune)
        except Exception:
            log.warning("idempotency pruning failed; will retry")
        await asyncio.sleep(MAINTENANCE_INTERVAL)
