"""The server's CPU time per list page, for decisions on a busy machine: wall-clock
figures swing with the load, the CPU a request costs the server much less.

    python -m bench.listprofile DIR [--store sqlite] [--requests 600] [--py-spy out.svg]
        [--against PYTHONPATH]

DIR is a directory kept by ``python -m bench.million --keep DIR``. A real ``relay serve``
answers one request at a time: bench.million's filter mixes in turn, for each analyst
key, each first page followed by up to two continuations. Printed: the server process's
CPU time per page (from /proc) in batches, least and median, and the client's wall time.
``--against`` serves another revision too (``git archive HEAD app | tar -x -C DIR``), the
two answering the same batches in turn, so that both see the same load. ``--py-spy``
records the first server meanwhile (``--gil``: the samples holding the GIL), as a flame
graph (``.svg``) or for speedscope (``.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.fanout_proc import cpu_seconds, pid_listening
from bench.million import MIXES, percentile
from bench.seeding import Seeded
from bench.server import relay_server
from bench.traffic import MAIN

# First pages per batch: on a busy machine the least CPU time per page of any batch is
# the steadiest figure (other work only ever adds to it).
BATCH = 24


def requests_of(seeded: Seeded, rng: random.Random, count: int) -> list[tuple[int, Any]]:
    """(analyst index, params) for ``count`` first pages, the mixes in turn."""
    mixes = list(MIXES.values())
    return [
        (n % len(seeded.analyst_tokens), mixes[n % len(mixes)](rng, seeded)) for n in range(count)
    ]


def run(http: httpx.Client, seeded: Seeded, draws: list[tuple[int, Any]]) -> list[float]:
    path = f"/v1/operations/{MAIN}/alerts"
    tokens = list(seeded.analyst_tokens.values())
    wall: list[float] = []
    for who, params in draws:
        headers = {"Authorization": f"Bearer {tokens[who]}"}
        for _ in range(3):
            began = time.perf_counter()
            response = http.get(path, params=params, headers=headers)
            wall.append(time.perf_counter() - began)
            if response.status_code != 200:
                raise RuntimeError(f"{params}: {response.status_code} {response.text[:300]}")
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break
            params = {**params, "cursor": cursor}
    return wall


@dataclass
class Server:
    """One server under measurement and what it cost, batch by batch."""

    name: str
    http: httpx.Client
    pid: int
    per_page: list[float] = field(default_factory=list)  # server CPU per page, by batch
    wall: list[float] = field(default_factory=list)

    def batch(self, seeded: Seeded, draws: list[tuple[int, Any]]) -> None:
        cpu0 = cpu_seconds(self.pid)
        wall = run(self.http, seeded, draws)
        self.per_page.append((cpu_seconds(self.pid) - cpu0) / len(wall))
        self.wall += wall

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.wall)} pages; server CPU ms/page: least of "
            f"{len(self.per_page)} batches {min(self.per_page) * 1000:.2f}, median "
            f"{statistics.median(self.per_page) * 1000:.2f}; wall p50 "
            f"{statistics.median(self.wall) * 1000:.1f} ms, p95 "
            f"{percentile(self.wall, 0.95):.1f} ms"
        )


def py_spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    kind = "speedscope" if out.endswith(".json") else "flamegraph"
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--gil", "--pid", str(pid),
         "--rate", "250", "--format", kind, "-o", out],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--store", default="sqlite")
    parser.add_argument("--requests", type=int, default=600, help="about this many pages")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--py-spy", dest="py_spy", help="record the server into this file")
    parser.add_argument(
        "--against",
        metavar="PYTHONPATH",
        help="also serve the app found there (a checkout of another revision), batch for "
        "batch with this one, on the same store",
    )
    args = parser.parse_args()
    data = json.loads((args.directory / f"{args.store}.json").read_text())
    seeded = Seeded(**data["seeded"])
    draws = requests_of(seeded, random.Random(args.seed), args.requests // 2)
    variants = {"this": None, "against": args.against} if args.against else {"this": None}
    with contextlib.ExitStack() as stack:
        servers: list[Server] = []
        for name, path in variants.items():
            env = {"PYTHONPATH": path} if path else None
            base = stack.enter_context(relay_server(data["url"], env=env))
            http = stack.enter_context(httpx.Client(base_url=base, timeout=120))
            server = Server(name, http, pid_listening(int(base.rsplit(":", 1)[1])))
            run(http, seeded, requests_of(seeded, random.Random(args.seed + 1), 40))  # warm-up
            servers.append(server)
        spy = py_spy(servers[0].pid, args.py_spy) if args.py_spy else None
        if spy is not None:
            time.sleep(1)
        for n, start in enumerate(range(0, len(draws), BATCH)):
            # Each goes first in turn: the second to read a batch finds the caches warmer.
            for server in servers[n % 2 :] + servers[: n % 2]:
                server.batch(seeded, draws[start : start + BATCH])
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
    for server in servers:
        print(f"{args.store}, {server.summary()}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
