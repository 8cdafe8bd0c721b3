"""The floor for fan-out in Python: a bare ``websockets`` server and ``broadcast()``.

Subscribers send ``{"type": "subscribe", "token"}``; a token from the file is the whole
of authentication. A publisher sends ``{"type": "publish", "token"}`` and then frames,
each broadcast as is (bytes in, the same bytes out) to every subscriber. No
compression, no persistence, no per-subscriber queue: ``broadcast`` writes into each
connection's transport buffer and never waits.

    python -m bench.peers.raw_ws --port 8765 --tokens tokens.txt [--parent PID]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.peers.orphan import exit_with_parent

MAX_FRAME_BYTES = 64 * 1024


async def main(port: int, tokens: set[str]) -> None:
    subscribers: set[ServerConnection] = set()

    async def handler(connection: ServerConnection) -> None:
        try:
            hello = json.loads(await connection.recv())
        except Exception:
            return
        if not isinstance(hello, dict) or hello.get("token") not in tokens:
            await connection.close(4001, "invalid token")
            return
        if hello.get("type") == "publish":
            while True:
                frame = await connection.recv(decode=False)
                broadcast(subscribers, frame, text=True)
        subscribers.add(connection)
        try:
            await connection.send('{"type":"subscribed","id":"s1"}')
            async for _ in connection:
                pass
        finally:
            subscribers.discard(connection)

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.add_signal_handler(signal.SIGINT, stop.set_result, None)
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=MAX_FRAME_BYTES,
        ping_interval=20,
        ping_timeout=20,
        backlog=2048,
    ):
        await stop


if __name__ == "__main__":
    import uvloop

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--parent", type=int, help="stop when this process is gone")
    args = parser.parse_args()
    if args.parent:
        exit_with_parent(args.parent)
    uvloop.run(main(args.port, set(args.tokens.read_text().split())))
