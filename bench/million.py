"""Filtered lists and statistics over a million alerts (issue: lists and stats at scale),
on SQLite and PostgreSQL. Targets: a filtered list page in p95 <= 20 ms, a stats query
in <= 500 ms.

1. A fresh migrated store is seeded by bulk insert (bench/seeding.py): two operations,
   27 administrations and N alerts drawn by bench/traffic.py, with every row the app
   would write for them (documents, child rows, events, acknowledgements, audit).
2. A real ``relay serve`` answers over HTTP, one request at a time, to the analyst keys
   of the coordinator (sees every alert) and of a participant (the visibility rule of
   API.md section 3 applies): list pages under several filter mixes, each first page
   followed by two cursor continuations, and stats by every dimension.

    python -m bench.million [--stores sqlite,postgres] [--alerts 1000000]
        [--keep DIR] [--no-write]

With ``--keep DIR`` the seeded stores are kept in DIR (bench/kept.py) and a later run
with the same DIR measures them again without reseeding.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.services.stats import DIMENSIONS
from bench import kept
from bench.machine import describe
from bench.report import write_section
from bench.seeding import Seeded, seed_postgres, seed_sqlite
from bench.server import fresh_store, relay_server
from bench.traffic import MAIN, STARTS, WEEKS

Params = dict[str, Any]
LIST_TARGET_MS = 20
STATS_TARGET_MS = 500
KINDS = ["seizure", "pre_alert", "request"]
COMMODITIES = ["methamphetamine", "heroin", "ketamine", "ephedrine", "cocaine", "fentanyl"]
MODES = ["mail", "express_courier", "air_passenger", "sea_container", "rail", "pedestrian"]
TERRITORIES = ["KR", "AU", "JP", "HK", "TH", "MY", "LK", "BN", "MN"]
# Full-text words from very common (summaries) to rare (a few hundred alerts in a million).
WORDS = ["methamphetamine", "tea", "speaker", "guitar amplifier", "Ulaanbaatar", "swallowed",
         "statue", "fentanyl", "Chittagong Busan"]  # fmt: skip


def _window(rng: random.Random, hours: int) -> Params:
    start = STARTS + timedelta(hours=rng.randrange(WEEKS * 7 * 24 - hours))
    end = start + timedelta(hours=hours)
    return {"occurred_from": _rfc3339(start), "occurred_to": _rfc3339(end)}


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


MIXES: dict[str, Callable[[random.Random, Seeded], Params]] = {
    "no filter": lambda rng, s: {},
    "kind + commodity": lambda rng, s: {
        "kind": rng.choice(KINDS[:2]),
        "commodity": rng.choice(COMMODITIES),
    },
    "transport_mode": lambda rng, s: {"transport_mode": rng.choice(MODES)},
    "territory": lambda rng, s: {"territory": rng.choice(TERRITORIES)},
    "occurred window (6 h to 3 d)": lambda rng, s: _window(rng, rng.choice([6, 24, 72])),
    "identifier (exact)": lambda rng, s: {"identifier": rng.choice(s.identifiers)},
    "q (full text)": lambda rng, s: {"q": rng.choice(WORDS)},
    "seizures + mode + territory + week": lambda rng, s: {
        "kind": "seizure",
        "transport_mode": rng.choice(MODES[:4]),
        "territory": rng.choice(TERRITORIES[:6]),
        **_window(rng, 168),
    },
}
# Filters that (almost) nothing in the operation passes: the page is only known to be
# short after the whole operation has been read. Reported apart from the mixes above.
FEW_OR_NONE: dict[str, Callable[[random.Random, Seeded], Params]] = {
    "few or none: requests + commodity": lambda rng, s: {
        "kind": "request",
        "commodity": rng.choice(COMMODITIES),
    },
    "few or none: rare mode + rare territory": lambda rng, s: {
        "transport_mode": rng.choice(MODES[4:]),
        "territory": rng.choice(TERRITORIES[6:]),
    },
}


@dataclass
class Timings:
    first: list[float] = field(default_factory=list)
    more: list[float] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def _get(http: httpx.Client, path: str, params: Params) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    response = http.get(path, params=params)
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} {params}: {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return elapsed, body


def measure_lists(
    http: httpx.Client,
    seeded: Seeded,
    *,
    draws: int,
    pages: int,
    rng: random.Random,
    mixes: dict[str, Callable[[random.Random, Seeded], Params]],
) -> dict[str, Timings]:
    """``draws`` parameter sets per mix; each first page and up to ``pages - 1`` more."""
    path = f"/v1/operations/{MAIN}/alerts"
    out: dict[str, Timings] = {}
    for name, mix in mixes.items():
        timings = out[name] = Timings()
        for _ in range(draws):
            params = mix(rng, seeded)
            elapsed, page = _get(http, path, params)
            timings.first.append(elapsed)
            for _ in range(pages - 1):
                if page["next_cursor"] is None:
                    break
                elapsed, page = _get(http, path, {**params, "cursor": page["next_cursor"]})
                timings.more.append(elapsed)
    return out


def measure_stats(http: httpx.Client, *, runs: int) -> dict[str, list[float]]:
    path = f"/v1/operations/{MAIN}/stats"
    return {by: [_get(http, path, {"by": by})[0] for _ in range(runs)] for by in DIMENSIONS}


@dataclass
class StoreResult:
    store: str
    seeded: Seeded
    lists: dict[str, dict[str, Timings]]  # caller -> mix -> timings
    stats: dict[str, dict[str, list[float]]]  # caller -> by -> seconds


@contextlib.contextmanager
def seeded_store(store: str, args: argparse.Namespace) -> Iterator[tuple[str, Seeded]]:
    """A store holding ``args.alerts`` alerts: fresh (dropped afterwards), or kept in
    ``args.keep`` and reused by later runs."""
    seed = seed_sqlite if store == "sqlite" else seed_postgres

    def fill(url: str) -> Seeded:
        print(f"{store}: seeding {args.alerts:,} alerts", flush=True)
        seeded = seed(url, args.alerts, seed=args.seed)
        print(f"  seeded in {seeded.seconds:,.0f} s", flush=True)
        return seeded

    if args.keep is None:
        with fresh_store(store) as url:
            yield url, fill(url)
        return
    url, seeded, reused = kept.kept_store(
        args.keep, store, alerts=args.alerts, seed=args.seed, fill=fill
    )
    if reused:
        print(f"{store}: reusing the {args.alerts:,} alerts kept in {args.keep}", flush=True)
    yield url, seeded


def run_store(store: str, args: argparse.Namespace) -> StoreResult:
    with seeded_store(store, args) as (url, seeded):
        result = StoreResult(store, seeded, {}, {})
        with relay_server(url) as base:
            for code, token in seeded.analyst_tokens.items():
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
                    rng = random.Random(args.seed)  # the same requests for every caller
                    measure_lists(http, seeded, draws=3, pages=2, rng=rng, mixes=MIXES)  # warm-up
                    result.lists[code] = measure_lists(
                        http, seeded, draws=args.draws, pages=3, rng=rng, mixes=MIXES
                    )
                    result.lists[code].update(
                        measure_lists(http, seeded, draws=5, pages=1, rng=rng, mixes=FEW_OR_NONE)
                    )
                    result.stats[code] = measure_stats(http, runs=args.stats_runs)
                _print(code, result.lists[code], result.stats[code])
    return result


def _print(code: str, lists: dict[str, Timings], stats: dict[str, list[float]]) -> None:
    for name, t in lists.items():
        print(
            f"  {code:8} {name:36} first p50 {percentile(t.first, 0.5):6.1f} "
            f"p95 {percentile(t.first, 0.95):6.1f}  next p50 {percentile(t.more, 0.5):6.1f} "
            f"p95 {percentile(t.more, 0.95):6.1f} ms",
            flush=True,
        )
    for by, seconds in stats.items():
        print(f"  {code:8} stats by {by:20} median {statistics.median(seconds) * 1000:7.1f} "
              f"max {max(seconds) * 1000:7.1f} ms", flush=True)  # fmt: skip


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.1f}" if values else "-"


def _pages(mixes: dict[str, Timings]) -> list[float]:
    """Every page of the filter mixes (not the few-or-none ones)."""
    return [t for name, m in mixes.items() if name in MIXES for t in m.first + m.more]


def verdict(results: list[StoreResult]) -> str:
    lines = []
    for r in results:
        for code in r.lists:
            p95 = percentile(_pages(r.lists[code]), 0.95)
            slowest, seconds = max(r.stats[code].items(), key=lambda kv: statistics.median(kv[1]))
            stats_ms = statistics.median(seconds) * 1000
            lists = "met" if p95 <= LIST_TARGET_MS else f"missed by {p95 - LIST_TARGET_MS:.1f} ms"
            stats = (
                "met"
                if stats_ms <= STATS_TARGET_MS
                else f"missed by {stats_ms - STATS_TARGET_MS:,.0f} ms"
            )
            lines.append(
                f"- {r.store}, {code}: list pages p95 {p95:.1f} ms ({lists}); slowest stats "
                f"`by={slowest}` {stats_ms:,.0f} ms ({stats})."
            )
    return "\n".join(lines)


def render(results: list[StoreResult], args: argparse.Namespace) -> str:
    seeding = "\n".join(
        f"| {r.store} | {r.seeded.alerts:,} | {r.seeded.events:,} | {r.seeded.seconds:,.0f} | "
        f"{r.seeded.alerts / r.seeded.seconds:,.0f} |"
        for r in results
    )
    lists = []
    for r in results:
        for code, mixes in r.lists.items():
            for name, t in mixes.items():
                every = t.first + t.more
                lists.append(
                    f"| {r.store} | {code} | {name} | {_ms(t.first, 0.5)} | {_ms(t.first, 0.95)} "
                    f"| {_ms(t.more, 0.5)} | {_ms(t.more, 0.95)} | {_ms(every, 0.95)} | "
                    f"{max(every) * 1000:.1f} |"
                )
    overall = []
    for r in results:
        for code, mixes in r.lists.items():
            every = _pages(mixes)
            overall.append(
                f"| {r.store} | {code} | {len(every)} | {_ms(every, 0.5)} | {_ms(every, 0.95)} "
                f"| {_ms(every, 0.99)} |"
            )
    stats = []
    for r in results:
        for code, dimensions in r.stats.items():
            cells = " | ".join(f"{statistics.median(s) * 1000:,.0f}" for s in dimensions.values())
            worst = max(max(s) for s in dimensions.values()) * 1000
            stats.append(f"| {r.store} | {code} | {cells} | {worst:,.0f} |")
    return f"""
## Lists and statistics over {args.alerts:,} alerts

`python -m bench.million --alerts {args.alerts}` — {datetime.now(UTC):%Y-%m-%d}, {describe()}.
Targets: a filtered list page in p95 ≤ {LIST_TARGET_MS} ms, a stats query in ≤ {STATS_TARGET_MS} ms.

{verdict(results)}

Method. A fresh migrated store (or one kept by an earlier run: `--keep DIR`) is seeded
by bulk insert (`bench/seeding.py`; SQLite through Core `executemany` with its full-text
triggers, PostgreSQL through `COPY`, then `VACUUM ANALYZE` as autovacuum would do). The data (`bench/traffic.py`, `bench/rows.py`):
27 administrations, ICE BREAK II (OCU + 21 participants, 95 % of the alerts) and a second
operation; alerts over {WEEKS} weeks with realistic mixes of kinds, commodities (1 to 3
items), transport modes, concealments, identifiers and texts; about a quarter restricted
to recipients (pre-alerts targeted by route); 2 % withdrawn; a third acknowledged; every
event, acknowledgement and audit row the app writes for them. Then a real `relay serve`
(one worker) answers requests one at a time over HTTP/1.1 keep-alive, measured at the
client (so every figure includes authentication, the visibility rule, rendering 50
alerts and the HTTP round trip), caches warm, while the machine runs other work: for the
analyst keys of the coordinator (RILO-AP, sees everything) and of a participant (KR-KCS,
sees what API.md section 3 lets it), {args.draws} random parameter sets per filter mix on
ICE BREAK II, default sort (`-occurred_at`), 50 per page; each first page is followed by
up to two cursor continuations. Stats: every `by`, {args.stats_runs} runs each.

How. Lists: two indexes (`ix_alert_list_occurred`, `ix_alert_list_seq`) hold, after the
sort order, every column a filter or the visibility rule tests, so a page is found by
reading one index in order (on PostgreSQL an index-only scan) and only its 50 alerts are
then read whole, in the same query with their reporter's code and acknowledgements (a
page is three statements: the key, the caller's standing in the operation, the page).
The indexes carry an alert's commodities as bits (`commodity_mask`, kept up on every
write), so a commodity filter is tested on the index entry; the other filters on child
rows (concealment, identifier) are tested per alert (`EXISTS`), so reading
stops as soon as the page is full. SQLite keeps no statistics, so the query says where to
start: from an identifier's few alerts, from rare words' matches (found by seq in the
list index), else from the list index in sort order (see `app/services/search.py`).
PostgreSQL stores the full-text document (a generated `tsvector` column under GIN); as
its planner takes the words of `q` as independent (for words that go together, such as
"guitar amplifier", it expects a handful of matches, fetches tens of thousands through
GIN and sorts them), a `q` page is first looked for among the next 1,000 alerts in sort
order, and the share of them that matched picks the read if they do not fill it: from 1 %
on, the list index in sort order again; below, every match after the cursor through GIN,
sorted.
Stats: read from `stat_rollup`, the figures every write keeps added up in its own
transaction per operation, dimension, group and audience slice (docs/statistics.md): a
stats request reads rows per group and audience slice, however many alerts there are.

Limits. Filters that almost nothing passes (the "few or none" rows) read the operation's whole
list index before they know the page is short.

| store | alerts | events | seeding s | alerts/s |
| --- | ---: | ---: | ---: | ---: |
{seeding}

Every list page of the filter mixes together (ms):

| store | caller | pages | p50 | p95 | p99 |
| --- | --- | ---: | ---: | ---: | ---: |
{chr(10).join(overall)}

List pages by filter mix (ms; "few or none" rows: 5 first pages each, not in the line above):

| store | caller | filters | first p50 | first p95 | next p50 | next p95 | all p95 | max |
| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(lists)}

Stats, median of {args.stats_runs} runs (ms):

| store | caller | {" | ".join(DIMENSIONS)} | max |
| --- | --- | {" | ".join("---:" for _ in DIMENSIONS)} | ---: |
{chr(10).join(stats)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--draws", type=int, default=20, help="parameter sets per filter mix")
    parser.add_argument("--stats-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the seeded stores in DIR; reuse them if DIR already holds them",
    )
    args = parser.parse_args()
    results = [run_store(store, args) for store in args.stores.split(",")]
    body = render(results, args)
    if not args.no_write:
        write_section("million", body)
    print(body)


if __name__ == "__main__":
    main()
