"""Durable alerts per second over HTTP (issue: alerts), on SQLite and PostgreSQL.

1. Closed loop: 32 keep-alive clients post alerts as fast as they are answered.
2. Open loop: alerts offered at 1,000/s; latency counted from when each was due.
Every 201 is a committed alert (group commit; see docs/event-log.md).

    python -m bench.ingest [--stores sqlite,postgres] [--duration 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
from datetime import UTC, datetime

import httpx

from bench import loadgen
from bench.machine import describe
from bench.report import write_section
from bench.server import ADMIN, fresh_store, relay_server

BODY = {
    "kind": "seizure",
    "priority": "routine",
    "occurred_at": "2020-06-17T09:30:00+09:00",
    "location": {
        "territory": "KR",
        "place": "Incheon International Mail Centre",
        "unlocode": "KRICN",
    },
    "transport_mode": "mail",
    "route": {"origin": "TH", "transit": ["MY"], "destination": "KR"},
    "items": [{"commodity": "methamphetamine", "form": "crystal", "quantity": 2.35, "unit": "kg"}],
    "concealment_methods": ["tea_packaging"],
    "concealment": "Vacuum-packed in Chinese tea bags inside a gift box",
    "detection_method": "x_ray",
    "identifiers": [{"type": "tracking_number", "value": "EE123456789TH"}],
    "tlp": "AMBER",
    "summary": "2.35 kg crystal methamphetamine in tea bags, parcel from TH",
    "narrative": "Found on x-ray at the mail centre; parcel declared as tea.",
    "audience": {"scope": "operation"},
}
PARTICIPANTS = [f"P{i}-BENCH" for i in range(8)]


def set_up(base: str, clients: int) -> list[str]:
    """An operation with eight participants; one member key per client."""
    with httpx.Client(base_url=base, headers=ADMIN, timeout=10) as http:
        for code in ("OCU-BENCH", *PARTICIPANTS):
            http.post("/v1/administrations", json={"code": code, "name": code, "territory": "KR"})
        http.post(
            "/v1/operations",
            json={
                "code": "BENCH",
                "name": "Bench",
                "coordinator": "OCU-BENCH",
                "participants": PARTICIPANTS,
                "starts_at": "2020-06-15T00:00:00Z",
                "ends_at": "2020-07-19T00:00:00Z",
            },
        ).raise_for_status()
        tokens = []
        for i in range(clients):
            created = http.post(
                "/v1/keys",
                json={
                    "administration": PARTICIPANTS[i % len(PARTICIPANTS)],
                    "role": "member",
                    "label": f"c{i}",
                },
            )
            created.raise_for_status()
            tokens.append(created.json()["token"])
        return tokens


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def measure(
    base: str, *, concurrency: int, duration: float, rate: float
) -> dict[str, dict[str, float]]:
    host, port = base.removeprefix("http://").split(":")
    tokens = set_up(base, concurrency)
    body = json.dumps(BODY).encode()
    requests = [
        loadgen.build_request(
            host, int(port), "/v1/operations/BENCH/alerts", body, {"Authorization": f"Bearer {t}"}
        )
        for t in tokens
    ]
    context = multiprocessing.get_context("spawn")
    figures: dict[str, dict[str, float]] = {}
    with context.Pool(1) as pool:
        pool.apply(
            loadgen.run, ("closed", host, int(port), requests, concurrency, 2.0, 0.0)
        )  # warm-up
        for mode in ("closed", "open"):
            result = pool.apply(
                loadgen.run, (mode, host, int(port), requests, concurrency, duration, rate)
            )
            created = result.statuses.get(201, 0)
            figures[mode] = {
                "alerts_per_s": created / result.elapsed,
                "p50_ms": percentile(result.latencies, 0.50),
                "p99_ms": percentile(result.latencies, 0.99),
                "mean_ms": statistics.fmean(result.latencies) * 1000 if result.latencies else 0,
                "errors": sum(n for status, n in result.statuses.items() if status != 201),
            }
            print(f"  {mode}: {figures[mode]}", flush=True)
    with httpx.Client(base_url=base, timeout=10) as http:
        metrics = http.get("/metrics").text
    batches = [line for line in metrics.splitlines() if line.startswith("relay_write_batch_jobs")]
    figures["_batches"] = {"lines": float(len(batches))}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--workers", default="1,2", help="server process counts to try")
    args = parser.parse_args()
    rows = []
    for store in args.stores.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            print(f"{store}, {workers} worker(s)", flush=True)
            with fresh_store(store) as url, relay_server(url, workers=workers) as base:
                figures = measure(
                    base, concurrency=args.concurrency, duration=args.duration, rate=args.rate
                )
            closed, opened = figures["closed"], figures["open"]
            rows.append(
                f"| {store} | {workers} | {closed['alerts_per_s']:,.0f} | {closed['p50_ms']:.1f} | "
                f"{closed['p99_ms']:.1f} | {opened['alerts_per_s']:,.0f} | {opened['p50_ms']:.1f} | "
                f"{opened['p99_ms']:.1f} | {int(closed['errors'] + opened['errors'])} |"
            )
    body = f"""
## Ingest: durable alerts per second over HTTP

`python -m bench.ingest` — {datetime.now(UTC):%Y-%m-%d}, {describe()}.
A real `relay serve` process (uvicorn, `--workers` as shown) and the load generator
(`bench/loadgen.py`, raw keep-alive sockets, its own process) share the machine.
Closed loop: {args.concurrency} clients post as fast as they are answered for {args.duration:g} s.
Open loop: {args.rate:,.0f} alerts/s offered for {args.duration:g} s, latency from when each was due.
Every 201 is a committed alert (SQLite `synchronous=FULL`; PostgreSQL default `fsync`).

| store | workers | closed: alerts/s | p50 ms | p99 ms | open: alerts/s | p50 ms | p99 ms | non-201 |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}
"""
    write_section("ingest", body)
    print(body)


if __name__ == "__main__":
    main()
