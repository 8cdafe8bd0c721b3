"""The parent's handle on the subscriber processes of bench/fanout_clients.py: starts
them, shares connections between them, merges what they measured, and stops them
whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.process
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from bench.fanout_clients import run
from bench.fanout_record import BUCKETS


def _answer(pipe: Connection, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError("a subscriber process did not answer")
    return pipe.recv()


class SubscriberPool:
    """``processes`` subscriber processes, sharing the connections between them."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for i in range(processes):
            parent, child = context.Pipe()
            process = context.Process(
                target=run, args=(child,), name=f"fanout-subscribers-{i}", daemon=True
            )
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    async def _ask(self, messages: list[tuple[Any, ...]], patience: float) -> list[Any]:
        loop = asyncio.get_running_loop()
        for pipe, message in zip(self.pipes, messages, strict=True):
            pipe.send(message)
        return list(
            await asyncio.gather(
                *(loop.run_in_executor(None, _answer, pipe, patience) for pipe in self.pipes)
            )
        )

    async def open(
        self,
        *,
        kind: str,
        host: str,
        port: int,
        path: str,
        tokens: list[str],
        count: int,
        concurrency: int,
        limit: float,
    ) -> dict[str, Any]:
        """Open ``count`` more subscribed connections, spread evenly over the processes."""
        n = len(self.pipes)
        shares = [count // n + (i < count % n) for i in range(n)]
        messages = [
            (
                "open",
                {
                    "kind": kind,
                    "host": host,
                    "port": port,
                    "path": path,
                    "tokens": tokens[i::n] or tokens,
                    "count": share,
                    "concurrency": concurrency,
                    "limit": limit,
                },
            )
            for i, share in enumerate(shares)
        ]
        answers = await self._ask(messages, limit + 30)
        errors: Counter[str] = Counter()
        for answer in answers:
            errors.update(answer["errors"])
        return {
            "ready": sum(a["ready"] for a in answers),
            "errors": dict(errors),
            "seconds": max(a["seconds"] for a in answers),
        }

    async def delivered(self, phase: int) -> int:
        answers = await self._ask([("counts",)] * len(self.pipes), 30)
        return sum(answer.get(phase, 0) for answer in answers)

    async def stats(self, phase: int) -> dict[str, Any]:
        """This phase's deliveries, merged over the processes."""
        answers = await self._ask([("stats", phase)] * len(self.pipes), 60)
        buckets = [0] * BUCKETS
        closes: Counter[int] = Counter()
        protocol_errors: Counter[str] = Counter()
        by_serial: Counter[int] = Counter()
        for answer in answers:
            for index, count in enumerate(answer["buckets"]):
                if count:
                    buckets[index] += count
            closes.update(answer["closes"])
            protocol_errors.update(answer["protocol_errors"])
            by_serial.update(answer["by_serial"])
        firsts = [a["first"] for a in answers if a["count"]]
        return {
            "count": sum(a["count"] for a in answers),
            "first": min(firsts) if firsts else 0.0,
            "last": max(a["last"] for a in answers),
            "buckets": buckets,
            "open": sum(a["open"] for a in answers),
            "lost": sum(a["lost"] for a in answers),
            "closes": dict(closes),
            "protocol_errors": dict(protocol_errors),
            "duplicates": sum(a["duplicates"] for a in answers),
            "out_of_order": sum(a["out_of_order"] for a in answers),
            "by_serial": dict(by_serial),
        }

    def close(self) -> None:
        """Stop every process: politely, then by force."""
        for pipe in self.pipes:
            with contextlib.suppress(OSError, ValueError):
                pipe.send(("stop",))
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(3)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in self.pipes:
            pipe.close()
