"""The fan-out section of docs/benchmarks.md: method, figures, ratios and the issue's
targets, from the runs ``bench.fanout`` measured."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from app.realtime.outbox import FLUSH_SLICE
from app.server import SharedDeflate
from bench.machine import describe

if TYPE_CHECKING:
    from bench.fanout import Run

LABELS = {
    "relay": "Seizure Relay",
    "relay-deflate": "Seizure Relay, shared deflate",
    "raw": "websockets `broadcast()`",
    "socketio": "python-socketio",
}
TARGET_RATIO_RAW = 0.8
TARGET_P99_MS = 50.0
TARGET_P99_AT = (1000, 50.0)
TARGET_IDLE_KIB = 20.0
TARGET_IDLE_AT = 5000


def _num(value: float, digits: int = 0) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if a and b and not (math.isnan(a) or math.isnan(b)) else "—"


def _row(run: Run) -> str:
    if run.error:
        return f"| {LABELS[run.server]} | {run.subscribers:,} | failed: {run.error[:120]} |" + (
            " |" * 15
        )
    burst, steady = run.burst, run.steady
    closes = ", ".join(f"{n}x{code}" for code, n in sorted(run.closes.items())) or "0"
    if run.protocol_errors:  # frames a subscriber refused (bench/fanout_clients.py)
        closes += f"; {sum(run.protocol_errors.values())} refused a frame"
    checks = (
        f"{burst.duplicates + steady.duplicates:,} / {burst.out_of_order + steady.out_of_order:,}"
        f" / {burst.unaccepted_deliveries + steady.unaccepted_deliveries:,}"
        f" ({burst.unaccepted_alerts + steady.unaccepted_alerts})"
    )
    return (
        f"| {LABELS[run.server]} | {run.subscribers:,} | {run.ready:,} | "
        f"{_num(run.idle_kib_per_connection, 1)} | {_num(run.idle_kib_marginal, 1)} | {burst.alerts} | {_num(burst.per_second)} | "
        f"{_share(burst.delivered, burst.expected)} | {burst.server_cpu:.2f} / {burst.client_cpu:.2f} | "
        f"{run.steady_rate:g} | {_num(steady.per_second)} | {_share(steady.delivered, steady.expected)} | "
        f"{steady.server_cpu:.2f} / {steady.client_cpu:.2f} ({_num(steady.client_us_per_delivery, 1)}) | "
        f"{_num(steady.p50_ms, 1)} | {_num(steady.p99_ms, 1)} | "
        f"{_num(steady.answer_p50_ms, 1)} / {_num(steady.answer_p99_ms, 1)} | {checks} | {closes} |"
    )


def _by(runs: Sequence[Run], server: str, subscribers: int) -> Run | None:
    for run in runs:
        if run.server == server and run.subscribers == subscribers and not run.error:
            return run
    return None


def _ratios(runs: Sequence[Run]) -> list[str]:
    rows = []
    for subscribers in sorted({run.subscribers for run in runs}):
        relay = _by(runs, "relay", subscribers)
        if relay is None:
            continue
        cells = [f"{subscribers:,}"]
        for peer in ("raw", "socketio"):
            other = _by(runs, peer, subscribers)
            if other is None:
                cells += ["—"] * 4
                continue
            cells += [
                _ratio(relay.burst.per_second, other.burst.per_second),
                _ratio(relay.steady.per_second, other.steady.per_second),
                _ratio(relay.steady.p99_ms, other.steady.p99_ms),
                _ratio(relay.idle_kib_per_connection, other.idle_kib_per_connection),
            ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _per_delivery_us(cores: float, per_second: float) -> float:
    return cores / per_second * 1e6 if per_second else math.nan


def _compression(runs: Sequence[Run]) -> list[str]:
    rows = []
    for subscribers in sorted({run.subscribers for run in runs}):
        plain, deflate = (_by(runs, s, subscribers) for s in ("relay", "relay-deflate"))
        if plain is None or deflate is None:
            continue
        cells = [f"{subscribers:,}", _ratio(deflate.burst.per_second, plain.burst.per_second)]
        for run in (plain, deflate):
            cells.append(_num(_per_delivery_us(run.burst.server_cpu, run.burst.per_second), 1))
        for run in (plain, deflate):
            cells.append(f"{run.burst.client_cpu:.2f}")
        cells += [_num(plain.steady.p99_ms, 1), _num(deflate.steady.p99_ms, 1)]
        cells += [_num(plain.idle_kib_per_connection, 1), _num(deflate.idle_kib_per_connection, 1)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _targets(runs: Sequence[Run]) -> list[str]:
    rows = []
    for subscribers in sorted({run.subscribers for run in runs}):
        relay, raw, sio = (_by(runs, s, subscribers) for s in ("relay", "raw", "socketio"))
        if relay and raw:
            ratio = relay.burst.per_second / raw.burst.per_second if raw.burst.per_second else 0
            rows.append(
                f"| ≥ {TARGET_RATIO_RAW}x the raw delivery rate ({subscribers:,} subscribers, burst) "
                f"| {ratio:.2f}x | {'yes' if ratio >= TARGET_RATIO_RAW else 'no'} |"
            )
        if relay and sio:
            ahead = relay.burst.per_second > sio.burst.per_second
            rows.append(
                f"| ahead of python-socketio ({subscribers:,} subscribers, burst) | "
                f"{_num(relay.burst.per_second)} vs {_num(sio.burst.per_second)} deliveries/s "
                f"| {'yes' if ahead else 'no'} |"
            )
    for run in runs:
        if run.server != "relay" or run.error:
            continue
        at_target = (run.subscribers, run.steady_rate) == TARGET_P99_AT
        where = f"{run.subscribers:,} subscribers, {run.steady_rate:g} alerts/s"
        met = run.steady.p99_ms <= TARGET_P99_MS and run.steady.delivered == run.steady.expected
        rows.append(
            f"| p99 ≤ {TARGET_P99_MS:g} ms at 1,000 subscribers, 50 alerts/s (measured: {where}"
            f"{'' if at_target else '; not the target load'}) | {_num(run.steady.p99_ms, 1)} ms | "
            f"{'yes' if met else 'no'} |"
        )
    relays = [run for run in runs if run.server == "relay" and not run.error]
    if relays:
        run = max(relays, key=lambda r: r.subscribers)
        note = "" if run.subscribers == TARGET_IDLE_AT else "; not the target count"
        ok = run.idle_kib_per_connection <= TARGET_IDLE_KIB
        rows.append(
            f"| ≤ {TARGET_IDLE_KIB:g} KiB per idle connection at 5,000 (measured at "
            f"{run.subscribers:,}{note}) | {_num(run.idle_kib_per_connection, 1)} KiB | "
            f"{'yes' if ok else 'no'} |"
        )
    return rows


def _placement(args: argparse.Namespace) -> str:
    if not args.pin:
        return (
            "**CPUs**: not pinned (`--no-pin`): the scheduler places the server, the "
            "publisher and the subscriber processes on any core, so the server's latency "
            "includes waiting for a core the clients hold."
        )
    server, harness = (
        ", ".join(map(str, sorted(cpus))) for cpus in (args.server_cpus, args.harness_cpus)
    )
    return (
        f"**CPUs** (`--pin`): every thread of the server under test runs on CPU {server} "
        f"only, this harness (the publisher and the subscriber processes) on CPU {harness} "
        "only — the same for every server. Each server is one process with one event "
        "loop and uses one core at most; pinned, it has that core to itself, as it would "
        "facing remote clients, and its latency is not the scheduler's choice to run a "
        "subscriber on its core. (The relay's SQLite threads share the server's core.) "
        "Other work on the machine is not pinned: see the load average."
    )


def render(runs: Sequence[Run], args: argparse.Namespace, *, when: datetime, event: bytes) -> str:
    counts = ", ".join(f"{n:,}" for n in args.subscribers)
    deflated = len(SharedDeflate().frame(event, 12))
    load = args.load_average
    return f"""
## Fan-out: deliveries per second, latency and memory per connection

`python -m bench.fanout --subscribers {",".join(map(str, args.subscribers))} --rate {args.rate:g} --duration {args.duration:g} --processes {args.processes} {"--pin" if args.pin else "--no-pin"}`
— {when:%Y-%m-%d}, {describe()}; load average {load:.1f} when it started.

The same subscriber load ({counts} subscribers) against these servers on 127.0.0.1, each
started fresh for every row, one process each:

- **Seizure Relay**: a real `relay serve` (one worker) on a fresh SQLite store.
  Subscribers authenticate with member keys ({args.keys} keys shared round-robin, eight
  participating administrations) and subscribe to the operation; a publisher with another
  key POSTs alerts over HTTP (8 keep-alive connections). Each alert is validated and
  committed durably (`synchronous=FULL`) before it fans out, so its latency includes HTTP
  and the commit. Fan-out encodes each event once per subscription id, checks visibility
  once per administration, queues the frame in each connection's bounded outbox, then
  writes the outboxes straight to their transports, {FLUSH_SLICE} connections per turn of the event
  loop (no task per connection; the frames one commit queued for a connection leave in
  one write). With 8 POSTs in flight, the burst rate is bounded by how fast HTTP answers
  as much as by fan-out.
- **Seizure Relay, shared deflate**: the same with `RELAY_STREAM_COMPRESSION=shared` (the
  row above runs with `off`), its subscribers offering permessage-deflate as Chromium does
  (`permessage-deflate; client_max_window_bits`); the relay answers without server
  context takeover and deflates each distinct message once (here every subscriber uses
  the same subscription id, as the dashboard does, so once per event).
- **websockets `broadcast()`** (`bench/peers/raw_ws.py`, websockets 17 on uvloop, no
  compression): a token check, a subscriber set, and each frame from a publisher
  connection broadcast byte for byte. No persistence, no per-connection queue.
- **python-socketio** (`bench/peers/socketio_server.py`, `AsyncServer` under uvicorn with
  the relay's websocket protocol settings, websocket transport only): a token check on
  connect puts the client in a room; a publisher's `publish` event is emitted to the room.

All carry the same JSON: the relay's own `alert.created` event (about
{len(event):,} bytes; {deflated:,} as a deflated frame), with `bench-ts:<phase>:<due time>:<serial>` in the alert's
`reference`. Subscribers ({args.processes} processes on uvloop, no task per connection)
are the same minimal RFC 6455 client for every server: the upgrade by hand (its
accept key checked), then a parser that reads every frame a chunk of data holds in place,
inflates a deflated one (shared deflate only), checks each text message is UTF-8, answers
pings and closes, and fails the connection
(1002 or 1007, counted as "refused a frame") on anything else — so that the harness costs a few
µs of CPU per delivery and stays small next to what it measures. Each finds the stamp
with a byte search and bins `time.time()` at arrival minus the due time (0.1 ms bins).

{_placement(args)}

Per row, two connections per subscriber process open first and receive five warm-up
alerts. **Idle KiB/conn** is the server's VmRSS once the other connections are open,
authenticated, subscribed and idle, minus before, divided by their number. **Marginal**
is the same over the last four fifths only: by then pools and caches that grow with load
(the relay's pool of SQLite read connections, for one) have grown, so it is the cost of one more connection.
**Burst**: `{args.burst_deliveries:,} / subscribers` alerts (20 to 500) published at
once; deliveries per second from the first publish to the last delivery — the most the
server fans out. The CPU column is server / subscriber processes, in cores, over that
window: a server near 1.00 is the limit; subscribers near the machine's spare cores mean
the clients are. **Steady**: {args.rate:g} alerts/s for {args.duration:g} s, open loop;
latency from when each alert was due to its delivery; its CPU column is the same, with
the subscriber processes' CPU time per delivery in µs in brackets. Deliveries still missing
{args.quiet:g} s after the last one arrived (at most {args.drain:g} s after publishing)
count as not delivered; "closed" counts connections the server closed (4008: too slow).
Every connection checks what it receives (by `seq` on the relay, by the publisher's serial
number on the peers): **dup / disorder / unaccepted** counts, over both phases, events a
connection received a second time, events received after a higher one, and deliveries
of alerts the publisher never saw accepted (in brackets: how many such alerts; a POST
still unanswered when the phase's time ran out is one). Duplicates and unaccepted
deliveries do not count as delivered, so "delivered" never passes 100 %.
"201 p50 / p99" is the relay's answer to the publishing POST alone (HTTP and the durable
commit), the part of its latency the peers do not pay.

| server | subscribers | subscribed | idle KiB/conn | marginal KiB/conn | burst alerts | burst deliveries/s | burst delivered | burst CPU server / clients | steady alerts/s | steady deliveries/s | steady delivered | steady CPU server / clients (µs/delivery) | p50 ms | p99 ms | 201 p50 / p99 ms | dup / disorder / unaccepted | closed |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{chr(10).join(_row(run) for run in runs)}

Relay relative to the others (rates: higher is better; p99 and memory: lower is better):

| subscribers | burst rate ÷ raw | steady rate ÷ raw | p99 ÷ raw | memory ÷ raw | burst rate ÷ socketio | steady rate ÷ socketio | p99 ÷ socketio | memory ÷ socketio |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(_ratios(runs))}

Shared deflate against none (the relay both times; rates: higher is better; CPU per
delivery, p99 and memory: lower is better; subscribers' CPU in cores, as they inflate):

| subscribers | burst rate ÷ none | server µs/delivery, none | shared deflate | subscribers' CPU, none | shared deflate | p99 ms, none | shared deflate | idle KiB/conn, none | shared deflate |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(_compression(runs))}

Against the issue's targets:

| target | measured | met |
| --- | ---: | --- |
{chr(10).join(_targets(runs))}
"""
