"""Fan-out: the same subscriber load on the relay, a bare websockets broadcast server and
python-socketio (issue: fan-out), all on 127.0.0.1 in one invocation.

For each server and each subscriber count, on a freshly started server:

1. Memory: server RSS once a few connections are warm, and again after the rest are
   open, authenticated, subscribed and idle; the difference per connection.
2. Burst: ``burst-deliveries / N`` alerts (20 to 500) published as fast as the publisher
   can; deliveries per second from the first publish to the last delivery: the most
   the server fans out.
3. Steady: ``--rate`` alerts/s for ``--duration`` s; deliveries per second and
   publish-to-deliver latency, from the wall-clock time each alert was due (it rides
   in the alert) to its arrival, on the same machine.

Subscribers are spread over ``--processes`` lean processes (bench/fanout_clients.py).
Every phase is time-limited and every process is stopped whatever happens.

CPUs (``--pin``, the default when this process may use two or more CPUs): every thread
of the server under test runs only on the first CPU this process may run on, and this
process (the publisher) and the subscriber processes only on the others, the same for
every server. Each server is one process with one event loop, so it can use one
core whatever happens; pinned, that core is its own, and a latency figure is the
server's, not the scheduler's choice to run a subscriber process on the server's core
while the server waits. ``--no-pin`` leaves the placement to the scheduler.

    python -m bench.fanout [--servers relay,relay-deflate,raw,socketio] [--subscribers 1000,5000]
        [--rate 50] [--duration 10] [--processes 2] [--pin | --no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.fanout_clients import raise_open_files_limit
from bench.fanout_pool import SubscriberPool
from bench.fanout_proc import affinity, cpu_list, cpu_seconds, pin, rss_kib
from bench.fanout_record import percentile_ms
from bench.fanout_report import render
from bench.fanout_targets import (
    SERVERS,
    Payload,
    Publisher,
    Server,
    marker,
    publisher_for,
    relay_event_payload,
    start,
)
from bench.report import write_section

WARM, BURST, STEADY = 1, 2, 3
WARM_CONNECTIONS_PER_PROCESS = 2
WARM_ALERTS = 5


@dataclass
class PhaseResult:
    alerts: int = 0  # accepted by the server
    failed: int = 0  # publishes the server refused or that broke
    expected: int = 0  # alerts x subscribers connected
    delivered: int = 0  # of accepted alerts, each at most once per connection
    duplicates: int = 0  # an event delivered again to a connection that had it
    out_of_order: int = 0  # delivered after a higher seq (relay) or serial (peers)
    unaccepted_alerts: int = 0  # delivered, though the publisher did not see them accepted
    unaccepted_deliveries: int = 0
    seconds: float = 0.0  # first publish to last delivery
    per_second: float = 0.0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    server_cpu: float = 0.0  # cores, over the delivery window
    client_cpu: float = 0.0
    client_us_per_delivery: float = math.nan  # subscriber processes' CPU time per delivery
    answer_p50_ms: float = math.nan  # HTTP publish: sent to 201
    answer_p99_ms: float = math.nan


@dataclass
class Run:
    server: str
    subscribers: int
    ready: int = 0
    connect_seconds: float = 0.0
    rss_before_kib: int = 0
    rss_mid_kib: int = 0
    rss_after_kib: int = 0
    idle_kib_per_connection: float = math.nan  # (after - before) / connections opened
    idle_kib_marginal: float = math.nan  # (after - mid) / connections opened after mid
    burst: PhaseResult = field(default_factory=PhaseResult)
    steady: PhaseResult = field(default_factory=PhaseResult)
    steady_rate: float = 0.0
    closes: dict[int, int] = field(default_factory=dict)
    protocol_errors: dict[str, int] = field(default_factory=dict)  # what the clients refused
    server_cpus: str = ""  # the CPUs the server's threads may run on, as measured at the end
    connect_errors: dict[str, int] = field(default_factory=dict)
    publish_refusals: dict[str, int] = field(default_factory=dict)
    error: str | None = None


# --- phases ---------------------------------------------------------------------------


async def publish(
    publisher: Publisher, phase: int, count: int, rate: float | None, limit: float
) -> tuple[int, int]:
    """Publish ``count`` alerts, paced at ``rate``/s (open loop, each stamped with the time
    it was due) or, with no rate, all at once. Returns (accepted, failed)."""
    tasks: list[asyncio.Task[bool]] = []
    if rate is None:
        tasks = [asyncio.create_task(publisher.publish(phase)) for _ in range(count)]
    else:
        began, began_wall = time.monotonic(), time.time()
        for i in range(count):
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(publisher.publish(phase, began_wall + i / rate)))
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    accepted = sum(
        1 for task in done if not task.cancelled() and task.exception() is None and task.result()
    )
    return accepted, count - accepted


async def drain(
    pool: SubscriberPool, phase: int, expected: int, *, limit: float, quiet: float
) -> None:
    """Wait until every expected delivery has arrived, none has for ``quiet`` seconds,
    or ``limit`` seconds have passed."""
    deadline = time.monotonic() + limit
    seen, changed = -1, time.monotonic()
    while True:
        delivered = await pool.delivered(phase)
        now = time.monotonic()
        if delivered >= expected or now > deadline:
            return
        if delivered != seen:
            seen, changed = delivered, now
        elif now - changed > quiet:
            return
        await asyncio.sleep(0.2)


async def run_phase(
    *,
    phase: int,
    server: Server,
    pool: SubscriberPool,
    publisher: Publisher,
    subscribers: int,
    alerts: int,
    rate: float | None,
    args: argparse.Namespace,
) -> PhaseResult:
    cpu_server, cpu_clients = cpu_seconds(server.pid), sum(map(cpu_seconds, pool.pids))
    began_wall, answered = time.time(), len(publisher.answered)
    accepted_before = set(publisher.accepted)
    publish_limit = (alerts / rate if rate else 0) + args.drain
    accepted, failed = await publish(publisher, phase, alerts, rate, publish_limit)
    accepted_serials = publisher.accepted - accepted_before
    expected = accepted * subscribers
    await drain(pool, phase, expected, limit=args.drain, quiet=args.quiet)
    cpu_server = cpu_seconds(server.pid) - cpu_server
    cpu_clients = sum(map(cpu_seconds, pool.pids)) - cpu_clients
    stats = await pool.stats(phase)
    answers = sorted(publisher.answered[answered:])
    seconds = max(stats["last"] - began_wall, 1e-3) if stats["count"] else 0.0
    by_serial: dict[int, int] = stats["by_serial"]
    unaccepted = {serial: n for serial, n in by_serial.items() if serial not in accepted_serials}
    return PhaseResult(
        alerts=accepted,
        failed=failed,
        expected=expected,
        delivered=stats["count"] - sum(unaccepted.values()),
        duplicates=stats["duplicates"],
        out_of_order=stats["out_of_order"],
        unaccepted_alerts=len(unaccepted),
        unaccepted_deliveries=sum(unaccepted.values()),
        seconds=seconds,
        per_second=stats["count"] / seconds if seconds else 0.0,
        p50_ms=percentile_ms(stats["buckets"], 0.50),
        p99_ms=percentile_ms(stats["buckets"], 0.99),
        server_cpu=cpu_server / seconds if seconds else 0.0,
        client_cpu=cpu_clients / seconds if seconds else 0.0,
        client_us_per_delivery=cpu_clients / stats["count"] * 1e6 if stats["count"] else math.nan,
        answer_p50_ms=_quantile_ms(answers, 0.50),
        answer_p99_ms=_quantile_ms(answers, 0.99),
    )


def _quantile_ms(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def settled_rss(pid: int) -> int:
    """RSS once the server has finished the work the new connections caused."""
    await asyncio.sleep(2.0)
    previous = rss_kib(pid)
    for _ in range(10):
        await asyncio.sleep(0.5)
        current = rss_kib(pid)
        if abs(current - previous) < 256:
            return current
        previous = current
    return previous


async def enter_in_thread(
    stack: contextlib.AsyncExitStack, manager: contextlib.AbstractContextManager[Server]
) -> Server:
    """Enter a blocking context manager (it may run its own event loop: migrations do)
    in a worker thread, and have ``stack`` leave it there too."""
    value = await asyncio.to_thread(manager.__enter__)

    async def leave(*exc_info: Any) -> bool | None:
        return await asyncio.to_thread(manager.__exit__, *exc_info)

    stack.push_async_exit(leave)
    return value


# --- one server at one size --------------------------------------------------------------


class Payloads:
    """The relay's own event JSON, once a relay run has produced one."""

    def __init__(self) -> None:
        self.captured: Payload | None = None

    @property
    def current(self) -> Payload:
        return self.captured or Payload.synthetic()


async def measure(name: str, subscribers: int, args: argparse.Namespace, payloads: Payloads) -> Run:
    run = Run(server=name, subscribers=subscribers)
    async with contextlib.AsyncExitStack() as stack:
        server = await enter_in_thread(stack, start(name, keys=min(subscribers, args.keys)))
        pool = SubscriberPool(args.processes)
        stack.callback(pool.close)
        if args.server_cpus:
            threads = pin(server.pid, args.server_cpus)  # the subscribers inherit ours
            print(
                f"  pinned: the server's {threads} threads (pid {server.pid}) to CPU "
                f"{cpu_list(args.server_cpus)}, publisher and subscriber processes "
                f"(pids {' '.join(map(str, pool.pids))}) to CPU {cpu_list(args.harness_cpus)}",
                flush=True,
            )
        publisher = await publisher_for(server, payloads.current)
        stack.push_async_callback(publisher.close)

        async def open_connections(count: int) -> dict[str, Any]:
            return await pool.open(
                kind=name,
                host=server.host,
                port=server.port,
                path=server.path,
                tokens=server.tokens,
                count=count,
                concurrency=args.connect_concurrency,
                limit=args.connect_timeout,
            )

        warm = min(subscribers, WARM_CONNECTIONS_PER_PROCESS * args.processes)
        opened = await open_connections(warm)
        if opened["ready"] == 0:
            raise RuntimeError(f"no subscriber could connect: {opened['errors']}")
        accepted, _ = await publish(publisher, WARM, WARM_ALERTS, 20.0, 30.0)
        await drain(pool, WARM, accepted * opened["ready"], limit=10, quiet=3)
        if (await pool.delivered(WARM)) == 0:
            raise RuntimeError("the warm-up alerts reached no subscriber")
        if name == "relay" and payloads.captured is None:
            payloads.captured = relay_event_payload(server)

        # Memory: RSS with the warm connections only, after a fifth of the rest (by then
        # pools, caches and buffers that grow with load have grown), and after all of them.
        run.rss_before_kib = await settled_rss(server.pid)
        ready = opened["ready"]
        rest = subscribers - warm
        first = await open_connections(rest // 5)
        run.rss_mid_kib = await settled_rss(server.pid)
        second = await open_connections(rest - rest // 5)
        run.rss_after_kib = await settled_rss(server.pid)
        run.ready = ready + first["ready"] + second["ready"]
        run.connect_seconds = first["seconds"] + second["seconds"]
        run.connect_errors = dict(Counter(first["errors"]) + Counter(second["errors"]))
        if run.ready > ready:
            run.idle_kib_per_connection = (run.rss_after_kib - run.rss_before_kib) / (
                run.ready - ready
            )
        if second["ready"]:
            run.idle_kib_marginal = (run.rss_after_kib - run.rss_mid_kib) / second["ready"]
        print(
            f"  {name} x {subscribers}: {run.ready} subscribed in {run.connect_seconds:.1f} s; "
            f"idle {run.idle_kib_per_connection:.1f} KiB/connection "
            f"(marginal {run.idle_kib_marginal:.1f}); errors {run.connect_errors or 'none'}",
            flush=True,
        )

        burst_alerts = max(20, min(500, math.ceil(args.burst_deliveries / subscribers)))
        run.burst = await run_phase(
            phase=BURST,
            server=server,
            pool=pool,
            publisher=publisher,
            subscribers=run.ready,
            alerts=burst_alerts,
            rate=None,
            args=args,
        )
        print(f"  burst: {_brief(run.burst)}", flush=True)
        run.steady_rate = args.rate
        run.steady = await run_phase(
            phase=STEADY,
            server=server,
            pool=pool,
            publisher=publisher,
            subscribers=run.ready,
            alerts=max(1, round(args.rate * args.duration)),
            rate=args.rate,
            args=args,
        )
        print(f"  steady: {_brief(run.steady)}", flush=True)
        final = await pool.stats(STEADY)
        run.closes, run.protocol_errors = final["closes"], final["protocol_errors"]
        if run.protocol_errors:
            print(f"  the subscribers refused frames: {run.protocol_errors}", flush=True)
        run.server_cpus = cpu_list(affinity(server.pid))
        run.publish_refusals = dict(publisher.refusals)
        if run.publish_refusals:
            print(f"  publishes refused: {run.publish_refusals}", flush=True)
    return run


def _brief(result: PhaseResult) -> str:
    return (
        f"{result.delivered:,}/{result.expected:,} delivered "
        f"({result.duplicates:,} duplicates, {result.out_of_order:,} out of order, "
        f"{result.unaccepted_deliveries:,} of {result.unaccepted_alerts} alerts not seen accepted), "
        f"{result.per_second:,.0f}/s, "
        f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms "
        f"(publish answered p50 {result.answer_p50_ms:.1f}, p99 {result.answer_p99_ms:.1f} ms), "
        f"server CPU {result.server_cpu:.2f}, clients CPU {result.client_cpu:.2f} "
        f"({result.client_us_per_delivery:.1f} µs per delivery)"
    )


async def measure_all(args: argparse.Namespace) -> tuple[list[Run], int]:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    payloads = Payloads()
    runs = []
    for subscribers in args.subscribers:
        for name in args.servers:
            print(f"{name}, {subscribers:,} subscribers", flush=True)
            try:
                run = await asyncio.wait_for(
                    measure(name, subscribers, args, payloads), args.run_timeout
                )
            except Exception as exc:
                traceback.print_exc()
                run = Run(
                    server=name, subscribers=subscribers, error=f"{type(exc).__name__}: {exc}"
                )
            runs.append(run)
    event = payloads.current.event(marker(STEADY, 1_700_000_000.0, 1))
    return runs, event.encode()


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", default=",".join(SERVERS), type=lambda s: s.split(","))
    parser.add_argument("--subscribers", default="1000,5000", type=_counts)
    parser.add_argument("--rate", type=float, default=50.0, help="steady alerts per second")
    parser.add_argument("--duration", type=float, default=10.0, help="steady phase, seconds")
    parser.add_argument("--burst-deliveries", type=int, default=200_000)
    parser.add_argument("--processes", type=int, default=2, help="subscriber processes")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=len(os.sched_getaffinity(0)) >= 2,
        help="server on the first CPU, publisher and subscribers on the others",
    )
    parser.add_argument("--keys", type=int, default=256, help="distinct subscriber keys")
    parser.add_argument("--connect-concurrency", type=int, default=64, help="per process")
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument("--drain", type=float, default=20.0, help="max wait after publishing")
    parser.add_argument("--quiet", type=float, default=3.0, help="give up after this long idle")
    parser.add_argument("--run-timeout", type=float, default=900.0, help="per server and size")
    args = parser.parse_args()
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    args.open_files = raise_open_files_limit()
    args.server_cpus, args.harness_cpus = set(), set()
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs two CPUs")
        args.server_cpus, args.harness_cpus = {cpus[0]}, set(cpus[1:])
        # Before any thread or process starts: they all inherit it (servers are re-pinned).
        os.sched_setaffinity(0, args.harness_cpus)
    args.load_average = os.getloadavg()[0]  # a busy machine shows in every figure
    import uvloop

    try:
        runs, event = uvloop.run(measure_all(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: every process stopped, nothing written", flush=True)
        raise SystemExit(130) from None
    print(json.dumps([asdict(run) for run in runs], indent=1, default=str))
    body = render(runs, args, when=datetime.now(UTC), event=event)
    write_section("fanout", body)
    print(body)


if __name__ == "__main__":
    main()
