"""The websocket stream of API.md section 8, tested against real ``relay serve`` processes.

``server`` is one process per store, shared by the tests that need no process of their own;
``world`` sets up administrations, operations and keys with codes no other test uses (the
store is shared by the session); ``Stream`` is a websocket client that reads frames as JSON
and tells how the server closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests.api import seizure
from tests.server import RelayServer, admin_headers
from tests.stores import missing_service

ALLOWED_ORIGIN = "https://ocu.example.org"
FRAME_TIMEOUT = 5.0
REDIS_URL = "redis://127.0.0.1:6379"


# --- servers ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RelayServer]:
    """One ``relay serve`` per store; it allows two foreign origins."""
    async with RelayServer(
        database_url,
        tmp_path_factory.mktemp("relay") / "relay.log",
        env={"RELAY_ALLOWED_ORIGINS": f"https://other.example.net, {ALLOWED_ORIGIN}"},
    ) as relay:
        yield relay


@pytest.fixture
async def admin(server: RelayServer) -> dict[str, str]:
    return await admin_headers(server)


@pytest.fixture
async def world(server: RelayServer, admin: dict[str, str]) -> AsyncIterator[World]:
    async with server.client() as client:
        yield World(client, admin)


async def redis_url() -> str:
    """A Redis URL on a database of its own (pub/sub channels are shared by all of them)."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    url = f"{REDIS_URL}/{secrets.randbelow(15) + 1}"
    redis = Redis.from_url(url, socket_connect_timeout=2)
    try:
        await redis.ping()
    except (OSError, RedisError):
        missing_service("Redis")
    finally:
        await redis.aclose()
    return url


# --- the world over HTTP ---------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    id: str
    token: str
    administration: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class IceBreak:
    """An operation coordinated by ``ocu`` with participants ``kr``, ``hk`` and ``th`` (in
    territories KR, HK and TH); ``jp`` takes part only in ``other``, with ``kr``."""

    operation: str
    other: str
    ocu: Key
    kr: Key
    hk: Key
    th: Key
    jp: Key
    codes: dict[str, str] = field(default_factory=dict)


class World:
    """Setting up and reading through the public HTTP API only."""

    def __init__(self, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
        self.client = client
        self.admin = admin
        self.suffix = secrets.token_hex(3).upper()

    def via(self, client: httpx.AsyncClient) -> World:
        """The same world, reached through another server's client."""
        other = World(client, self.admin)
        other.suffix = self.suffix
        return other

    def code(self, name: str) -> str:
        return f"{name}-{self.suffix}"

    async def administration(self, name: str, territory: str) -> str:
        code = self.code(name)
        response = await self.client.post(
            "/v1/administrations",
            json={"code": code, "name": code, "territory": territory},
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        return code

    async def operation(self, name: str, *, coordinator: str, participants: list[str]) -> str:
        code = self.code(name)
        response = await self.client.post(
            "/v1/operations",
            json={
                "code": code,
                "name": code,
                "coordinator": coordinator,
                "participants": participants,
                "starts_at": "2020-06-15T00:00:00Z",
                "ends_at": "2020-07-19T23:59:59Z",
            },
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        return code

    async def key(self, administration: str, role: str = "member") -> Key:
        response = await self.client.post(
            "/v1/keys",
            json={"administration": administration, "role": role, "label": f"{role} stream"},
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return Key(id=body["id"], token=body["token"], administration=administration)

    async def ice_break(self) -> IceBreak:
        ocu = await self.administration("OCU", "KR")
        kr = await self.administration("KR", "KR")
        hk = await self.administration("HK", "HK")
        th = await self.administration("TH", "TH")
        jp = await self.administration("JP", "JP")
        operation = await self.operation("ICEBREAK", coordinator=ocu, participants=[kr, hk, th])
        other = await self.operation("OTHER", coordinator=jp, participants=[kr])
        return IceBreak(
            operation=operation,
            other=other,
            ocu=await self.key(ocu),
            kr=await self.key(kr),
            hk=await self.key(hk),
            th=await self.key(th),
            jp=await self.key(jp),
            codes={"ocu": ocu, "kr": kr, "hk": hk, "th": th, "jp": jp},
        )

    async def report(self, key: Key, operation: str, **overrides: Any) -> dict[str, Any]:
        """Report a seizure (``overrides`` replace fields of ``tests.api.seizure``)."""
        response = await self.client.post(
            f"/v1/operations/{operation}/alerts", json=seizure(**overrides), headers=key.headers
        )
        assert response.status_code == 201, response.text
        alert: dict[str, Any] = response.json()
        return alert

    async def post(self, key: Key, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=key.headers)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    async def events(
        self, key: Key, *, since: int = 0, operation: str | None = None
    ) -> list[dict[str, Any]]:
        """Every event ``key`` may read after ``since`` through ``GET /v1/events``."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"since": since, "limit": 500}
        if operation is not None:
            params["operation"] = operation
        while True:
            response = await self.client.get("/v1/events", params=params, headers=key.headers)
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["items"])
            if not page["items"]:
                return items
            params["since"] = page["next_since"]

    async def head(self, key: Key) -> int:
        """The newest ``seq``, as a welcome frame reports it."""
        async with Stream.open(self.client.base_url, headers=key.headers) as stream:
            return int(stream.welcome["head"])

    async def settle(self, key: Key, operation: str, seq: int) -> None:
        """Wait until the server delivers live past ``seq`` (an event ``key`` may see), so
        that a subscription made next is confirmed with a head of at least ``seq``."""
        async with Stream.open(self.client.base_url, headers=key.headers) as stream:
            head = (await stream.subscribe("settle", operation))["head"]
            while head < seq:
                head = (await stream.events(1))[0]["event"]["seq"]

    async def revoke(self, key: Key) -> None:
        response = await self.client.delete(f"/v1/keys/{key.id}", headers=self.admin)
        assert response.status_code == 204, response.text

    async def remove_participant(self, operation: str, administration: str) -> None:
        response = await self.client.delete(
            f"/v1/operations/{operation}/participants/{administration}", headers=self.admin
        )
        assert response.status_code == 204, response.text


# --- the websocket client --------------------------------------------------------------


def stream_url(base_url: httpx.URL | str) -> str:
    return str(base_url).replace("http://", "ws://", 1).rstrip("/") + "/v1/stream"


def small_buffer_socket(base_url: httpx.URL | str, receive_buffer: int = 4096) -> socket.socket:
    """A connected TCP socket whose receive buffer cannot grow: a reader that stops reading
    pushes back on the server almost at once."""
    url = httpx.URL(str(base_url))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((url.host, url.port or 80))
    sock.setblocking(False)
    return sock


@dataclass(frozen=True)
class Closed:
    """How the server closed a stream: code and reason of its close frame."""

    code: int | None
    reason: str
    frames: list[dict[str, Any]]  # what arrived before the close


class Stream:
    """One websocket connection to ``/v1/stream``, frames as parsed JSON."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        base_url: httpx.URL | str,
        *,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        origin: str | None = None,
        welcome: bool = True,
        **options: Any,
    ) -> AsyncIterator[Stream]:
        """Connect, authenticate by header (``headers``) or first frame (``token``), and
        (if ``welcome``) read the welcome frame."""
        async with connect(
            stream_url(base_url),
            additional_headers=headers,
            origin=None if origin is None else Origin(origin),
            max_size=None,
            open_timeout=FRAME_TIMEOUT,
            close_timeout=2,
            **options,
        ) as ws:
            stream = cls(ws)
            if token is not None:
                await stream.send({"type": "auth", "token": token})
            if welcome:
                stream.welcome = await stream.recv()
                assert stream.welcome["type"] == "welcome", stream.welcome
            yield stream

    async def send(self, frame: dict[str, Any] | list[Any] | str | bytes) -> None:
        if isinstance(frame, dict | list):
            frame = json.dumps(frame)
        await self.ws.send(frame)

    async def recv(self, within: float = FRAME_TIMEOUT) -> dict[str, Any]:
        """The next frame, which must arrive ``within`` seconds."""
        raw = await asyncio.wait_for(self.ws.recv(), within)
        frame: dict[str, Any] = json.loads(raw)
        return frame

    async def subscribe(
        self,
        sub_id: str,
        operation: str,
        *,
        since: int | None = None,
        filter: dict[str, list[str]] | None = None,
    ) -> dict[str, Any]:
        """Subscribe and return the ``subscribed`` frame (which must come next)."""
        frame: dict[str, Any] = {"type": "subscribe", "id": sub_id, "operation": operation}
        if since is not None:
            frame["since"] = since
        if filter is not None:
            frame["filter"] = filter
        await self.send(frame)
        answer = await self.recv()
        assert answer["type"] == "subscribed" and answer["id"] == sub_id, answer
        return answer

    async def events(self, count: int, *, within: float = FRAME_TIMEOUT) -> list[dict[str, Any]]:
        """The next ``count`` frames, each of which must be an event frame."""
        frames = [await self.recv(within) for _ in range(count)]
        assert all(f["type"] == "event" for f in frames), frames
        return frames

    async def events_until(self, seq: int, *, within: float = 15.0) -> list[dict[str, Any]]:
        """Event frames up to and including the first one with ``seq`` or above."""
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            assert frame["type"] == "event", frame
            frames.append(frame)
            if frame["event"]["seq"] >= seq:
                return frames

    async def drain(self, silence: float = 0.5) -> list[dict[str, Any]]:
        """Every frame that arrives until none has for ``silence`` seconds."""
        frames: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            while True:
                frames.append(await self.recv(silence))
        return frames

    async def quiet(self, seconds: float = 0.3) -> None:
        """Nothing arrives for ``seconds``."""
        with contextlib.suppress(TimeoutError):
            frame = await self.recv(seconds)
            raise AssertionError(f"expected no frame, got {frame}")

    async def closed(self, within: float = FRAME_TIMEOUT) -> Closed:
        """Read until the server closes; the close frame it sent and the frames before it."""
        frames: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(within):
                while True:
                    frames.append(json.loads(await self.ws.recv()))
        except ConnectionClosed as closed:
            frame = closed.rcvd
            return Closed(
                code=None if frame is None else frame.code,
                reason="" if frame is None else frame.reason,
                frames=frames,
            )


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["event"]["seq"] for f in frames]


def event_frame(sub: str, event: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event", "sub": sub, "event": event}
