"""The servers ``bench.fanout`` measures, each started fresh on 127.0.0.1, and
the publisher that feeds each of them the same alert.

``relay``: a real ``relay serve`` (one worker) on a fresh SQLite store; alerts are
POSTed over HTTP and committed durably before they fan out, compression declined
(``RELAY_STREAM_COMPRESSION=off``). ``relay-deflate``: the same with ``shared``
compression, its subscribers offering permessage-deflate.
``raw``: ``bench.peers.raw_ws``, websockets ``broadcast()``; alerts come in as
websocket frames and go out unchanged.
``socketio``: ``bench.peers.socketio_server``, python-socketio on uvicorn; alerts come
in as a ``publish`` event and are emitted to a room.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from bench import loadgen
from bench.fanout_proc import pid_listening
from bench.ingest import BODY, set_up
from bench.server import free_port, fresh_store, relay_server, stop_group

ROOT = Path(__file__).resolve().parent.parent
MARKER = "bench-ts:"
SERVERS = ("relay", "relay-deflate", "raw", "socketio")


def marker(phase: int, at: float, serial: int = 0) -> str:
    """What every alert carries: its phase, the wall-clock time it was due and its serial
    number (per publisher), by which deliveries are matched to what was published."""
    return f"{MARKER}{phase}:{at:.6f}:{serial}"


@dataclass(frozen=True, slots=True)
class Payload:
    """An event's JSON split around its ``reference`` value, where the marker goes."""

    head: str
    tail: str

    def event(self, mark: str) -> str:
        return self.head + mark + self.tail

    @classmethod
    def around_marker(cls, event_json: str) -> Payload:
        start = event_json.index(MARKER)
        end = event_json.index('"', start)
        return cls(event_json[:start], event_json[end:])

    @classmethod
    def synthetic(cls) -> Payload:
        """An alert.created event shaped like the relay's, for runs without the relay."""
        alert = {
            "id": "01J0BENCH0000000000000000",
            "operation": "BENCH",
            "reporter": "P0-BENCH",
            **BODY,
            "reference": MARKER,
            "status": "active",
            "created_at": "2020-06-17T00:31:07.412Z",
            "updated_at": "2020-06-17T00:31:07.412Z",
            "version": 1,
        }
        event = {
            "seq": 1,
            "type": "alert.created",
            "operation": "BENCH",
            "at": "2020-06-17T00:31:07.412Z",
            "alert": alert,
        }
        return cls.around_marker(orjson.dumps(event).decode())


class Publisher(Protocol):
    refusals: Counter[str]
    answered: list[float]  # seconds from sending an alert to the server's answer (HTTP only)
    accepted: set[int]  # serials the server accepted (201, or a websocket frame sent)

    async def publish(self, phase: int, due: float | None = None) -> bool:
        """Send one alert; ``due`` is its timestamp (now if None). True if accepted."""
        ...

    async def close(self) -> None: ...


@dataclass
class Server:
    """A running server, as the benchmark sees it."""

    name: str
    host: str
    port: int
    path: str  # the websocket path subscribers open
    pid: int
    tokens: list[str]  # for subscribers
    publisher_token: str
    base: str = ""


# --- publishers ----------------------------------------------------------------------


class HttpPublisher:
    """POSTs alerts to the relay over a few raw keep-alive connections."""

    def __init__(self, host: str, port: int, token: str, connections: int = 8) -> None:
        self.host, self.port, self.token = host, port, token
        self.connections = connections
        body = orjson.dumps({**BODY, "reference": MARKER}).decode()
        self.body = Payload.around_marker(body)
        self.pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self.opened: list[asyncio.StreamWriter] = []
        self.refusals: Counter[str] = Counter()  # what answered other than 201
        self.answered: list[float] = []
        self.accepted: set[int] = set()
        self._serials = itertools.count(1)

    async def start(self) -> None:
        for _ in range(self.connections):
            self.pool.put_nowait(await self._connect())

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 10)
        self.opened.append(writer)
        return reader, writer

    def _request(self, body: bytes) -> bytes:
        head = (
            f"POST /v1/operations/BENCH/alerts HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def publish(self, phase: int, due: float | None = None) -> bool:
        serial = next(self._serials)
        reader, writer = await self.pool.get()
        status: int | None = None
        raised: str | None = None
        try:
            if reader.at_eof():  # the server closed it while idle (keep-alive timeout)
                writer.close()
                reader, writer = await self._connect()
            body = self.body.event(marker(phase, time.time() if due is None else due, serial))
            request = self._request(body.encode())
            sent = time.perf_counter()
            status = await loadgen.exchange(reader, writer, request)
            if status is None:  # closed before it read the request: send it again
                writer.close()
                reader, writer = await self._connect()
                status = await loadgen.exchange(reader, writer, request)
            self.answered.append(time.perf_counter() - sent)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            raised = type(exc).__name__
            writer.close()
            reader, writer = await self._connect()
        self.pool.put_nowait((reader, writer))
        if status != 201:
            # One reason per failed publish: the exception's name, else the status (None:
            # the server closed the connection twice without answering).
            self.refusals[raised or str(status)] += 1
            return False
        self.accepted.add(serial)
        return True

    async def close(self) -> None:
        for writer in self.opened:
            writer.close()


class WebSocketPublisher:
    """Sends alerts as websocket frames to a peer server (``raw`` or ``socketio``)."""

    def __init__(self, server: Server, payload: Payload) -> None:
        self.server, self.payload = server, payload
        self.connection: ClientConnection | None = None
        self.refusals: Counter[str] = Counter()
        self.answered: list[float] = []  # a websocket send has no answer
        self.accepted: set[int] = set()
        self._serials = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        server = self.server
        url = f"ws://{server.host}:{server.port}{server.path}"
        self.connection = await connect(url, compression=None, open_timeout=10)
        token = server.publisher_token
        if server.name == "raw":
            await self.connection.send(orjson.dumps({"type": "publish", "token": token}).decode())
            return
        opened = await asyncio.wait_for(self.connection.recv(), 10)  # Engine.IO open
        assert str(opened).startswith("0{"), opened
        await self.connection.send(
            "40" + orjson.dumps({"token": token, "role": "publisher"}).decode()
        )
        joined = await asyncio.wait_for(self.connection.recv(), 10)
        assert str(joined).startswith("40"), joined
        self._reader = asyncio.create_task(self._answer_pings(self.connection))

    @staticmethod
    async def _answer_pings(connection: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for message in connection:
                if message == "2":
                    await connection.send("3")

    def frame(self, phase: int, due: float | None, serial: int) -> str:
        event = self.payload.event(marker(phase, time.time() if due is None else due, serial))
        if self.server.name == "raw":
            return '{"type":"event","sub":"s1","event":' + event + "}"
        return '42["publish",' + event + "]"

    async def publish(self, phase: int, due: float | None = None) -> bool:
        assert self.connection is not None
        serial = next(self._serials)
        try:
            await self.connection.send(self.frame(phase, due, serial))
        except Exception as exc:
            self.refusals[type(exc).__name__] += 1
            return False
        self.accepted.add(serial)
        return True

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.close(), 5)


async def publisher_for(server: Server, payload: Payload) -> Publisher:
    publisher: HttpPublisher | WebSocketPublisher
    if server.name.startswith("relay"):
        publisher = HttpPublisher(server.host, server.port, server.publisher_token)
    else:
        publisher = WebSocketPublisher(server, payload)
    await publisher.start()
    return publisher


# --- servers -------------------------------------------------------------------------


@contextlib.contextmanager
def start(name: str, *, keys: int) -> Iterator[Server]:
    """A fresh server of kind ``name`` with ``keys`` subscriber keys (and one publisher key)."""
    if name.startswith("relay"):
        compression = "shared" if name == "relay-deflate" else "off"
        env = {"RELAY_STREAM_COMPRESSION": compression}
        with fresh_store("sqlite") as url, relay_server(url, workers=1, env=env) as base:
            tokens = set_up(base, keys + 1)
            host, port_text = base.removeprefix("http://").split(":")
            yield Server(
                name=name,
                host=host,
                port=int(port_text),
                path="/v1/stream",
                pid=pid_listening(int(port_text)),
                tokens=tokens[1:],
                publisher_token=tokens[0],
                base=base,
            )
        return
    module = {"raw": "bench.peers.raw_ws", "socketio": "bench.peers.socketio_server"}[name]
    path = {"raw": "/", "socketio": "/socket.io/?EIO=4&transport=websocket"}[name]
    tokens = [f"bench_{secrets.token_urlsafe(24)}" for _ in range(keys + 1)]
    with tempfile.NamedTemporaryFile("w", suffix=".tokens") as file:
        file.write("\n".join(tokens))
        file.flush()
        port = free_port()
        with _peer_process(module, port, Path(file.name)) as pid:
            yield Server(
                name=name,
                host="127.0.0.1",
                port=port,
                path=path,
                pid=pid,
                tokens=tokens[1:],
                publisher_token=tokens[0],
            )


@contextlib.contextmanager
def _peer_process(module: str, port: int, tokens: Path) -> Iterator[int]:
    command = [sys.executable, "-m", module, "--port", str(port), "--tokens", str(tokens)]
    command += ["--parent", str(os.getpid())]
    # stderr goes to a file, not a pipe: a chatty peer must never block on a full pipe.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while not _accepts(port):
                if process.poll() is not None:
                    errors.seek(0)
                    raise RuntimeError(f"{module} exited: {errors.read().decode()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{module} did not start")
                time.sleep(0.1)
            yield process.pid
        finally:
            stop_group(process)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def relay_event_payload(server: Server) -> Payload | None:
    """The JSON of an event the relay wrote for a published alert, to send the peers."""
    with httpx.Client(base_url=server.base, timeout=10) as http:
        answer = http.get(
            "/v1/events",
            params={"since": 0, "operation": "BENCH", "limit": 50},
            headers={"Authorization": f"Bearer {server.tokens[0]}"},
        )
    if answer.status_code != 200:
        return None
    for item in answer.json().get("items", []):
        if item.get("type") == "alert.created":
            return Payload.around_marker(orjson.dumps(item).decode())
    return None
