"""A lean HTTP/1.1 load generator over raw keep-alive sockets, so that the client costs
little CPU next to the server on a small machine. Runs in its own process."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {len(body)}",
        "Content-Type: application/json",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int | None:
    """Send one request on a keep-alive connection and read its whole response; the
    status, or None if the server had closed the connection."""
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        return None
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _answered(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    status = await exchange(reader, writer, request)
    if status is None:
        raise ConnectionError("the server closed a keep-alive connection")
    return status


async def closed_loop(
    host: str, port: int, requests: list[bytes], *, concurrency: int, duration: float
) -> Result:
    """``concurrency`` clients, each sending its next request as soon as the last is answered."""
    result = Result()
    stop = time.perf_counter() + duration

    async def client(i: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        request = requests[i % len(requests)]
        while time.perf_counter() < stop:
            started = time.perf_counter()
            status = await _answered(reader, writer, request)
            result.latencies.append(time.perf_counter() - started)
            result.statuses[status] = result.statuses.get(status, 0) + 1
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result


async def open_loop(
    host: str, port: int, requests: list[bytes], *, concurrency: int, duration: float, rate: float
) -> Result:
    """Requests offered at ``rate`` a second whatever the answers; latency counts from the
    moment each request was due, so queueing behind slow answers is measured too."""
    result = Result()
    due: asyncio.Queue[float | None] = asyncio.Queue()
    began = time.perf_counter()

    async def schedule() -> None:
        count = int(duration * rate)
        for n in range(count):
            at = began + n / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due.put_nowait(at)
        for _ in range(concurrency):
            due.put_nowait(None)

    async def client(i: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        request = requests[i % len(requests)]
        while (at := await due.get()) is not None:
            status = await _answered(reader, writer, request)
            result.latencies.append(time.perf_counter() - at)
            result.statuses[status] = result.statuses.get(status, 0) + 1
        writer.close()

    await asyncio.gather(schedule(), *(client(i) for i in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result


def run(
    mode: str,
    host: str,
    port: int,
    requests: list[bytes],
    concurrency: int,
    duration: float,
    rate: float,
) -> Result:
    """Entry point for a child process."""
    import uvloop

    if mode == "closed":
        coro = closed_loop(host, port, requests, concurrency=concurrency, duration=duration)
    else:
        coro = open_loop(
            host, port, requests, concurrency=concurrency, duration=duration, rate=rate
        )
    return uvloop.run(coro)
