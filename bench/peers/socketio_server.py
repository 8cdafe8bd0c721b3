"""python-socketio as people deploy it for fan-out: ``AsyncServer`` as an ASGI app under
uvicorn, websocket transport only, served with the same uvicorn websocket protocol
(sans-I/O ``websockets``, no per-message deflate) and keepalive as the relay.

Subscribers join the namespace with ``auth={"token"}`` and are put in room ``BENCH``;
a publisher joins with ``{"token", "role": "publisher"}`` and emits ``publish``, whose
data is emitted to the room as ``event``.

    python -m bench.peers.socketio_server --port 8766 --tokens tokens.txt [--parent PID]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import socketio
import uvicorn

from bench.peers.orphan import exit_with_parent

ROOM = "BENCH"


def build(tokens: set[str]) -> socketio.ASGIApp:
    server = socketio.AsyncServer(
        async_mode="asgi",
        transports=["websocket"],
        logger=False,
        engineio_logger=False,
        ping_interval=20,
        ping_timeout=20,
    )

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> bool:
        if not isinstance(auth, dict) or auth.get("token") not in tokens:
            return False
        if auth.get("role") != "publisher":
            await server.enter_room(sid, ROOM)
        return True

    async def publish(sid: str, data: Any) -> None:
        await server.emit("event", data, room=ROOM)

    server.on("connect", connect)
    server.on("publish", publish)
    return socketio.ASGIApp(server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--parent", type=int, help="stop when this process is gone")
    args = parser.parse_args()
    if args.parent:
        exit_with_parent(args.parent)
    uvicorn.run(
        build(set(args.tokens.read_text().split())),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=64 * 1024,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        backlog=2048,
        timeout_graceful_shutdown=5,
    )
