"""Real ``relay serve`` processes, for tests the in-process app cannot stand in for:
several processes on one store, or a process killed in the middle of a write.

Servers listen on 127.0.0.1 only, log to a file of their own, and are always
stopped by process group, so a failing test leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.api import ADMIN, ADMIN_TOKEN

RELAY = Path(sys.executable).with_name("relay")
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


def free_port() -> int:
    """A port that was free a moment ago on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(database_url: str) -> dict[str, str]:
    """The environment of a server on ``database_url``: no rate limit, ours alone."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("RELAY_")}
    env.update(
        RELAY_DATABASE_URL=database_url,
        RELAY_BOOTSTRAP_TOKEN=ADMIN_TOKEN,
        RELAY_RATE_LIMIT="0",
        RELAY_LOG_LEVEL="INFO",
    )
    return env


@dataclass
class RelayServer:
    """One ``relay serve`` process on ``database_url``, logging to ``log_path``."""

    database_url: str
    log_path: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra RELAY_* settings
    # Another server for the same app, started in place of `relay serve`; "{port}" is filled.
    argv: list[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, *, timeout: float = 30.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def start(self) -> None:
        """Spawn the process (the store is already migrated) and wait until it is ready."""
        argv = [str(RELAY), "serve", "--host", "127.0.0.1", "--port", "{port}", "--no-migrate"]
        argv = [arg.format(port=self.port) for arg in self.argv or argv]
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env={**server_env(self.database_url), **self.env},
                cwd=self.log_path.parent,
                start_new_session=True,
            )
        await self._wait_ready()

    async def __aenter__(self) -> RelayServer:
        """Started; stopped again if it does not become ready."""
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
        async with self.client(timeout=2.0) as client:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError(f"relay serve exited early:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        await self.stop()
        raise RuntimeError(f"relay serve was not ready in {READY_TIMEOUT} s:\n{self.log_tail()}")

    async def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        await self._signal(signal.SIGKILL, wait=STOP_TIMEOUT)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not gone within ``STOP_TIMEOUT``."""
        if not await self._signal(signal.SIGTERM, wait=STOP_TIMEOUT):
            await self._signal(signal.SIGKILL, wait=STOP_TIMEOUT)

    async def _signal(self, signum: int, *, wait: float) -> bool:
        """Signal the process group; True once the process has exited."""
        if self.process is None:
            return True
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)
        try:
            await asyncio.wait_for(self.process.wait(), wait)
        except TimeoutError:
            return False
        return True

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.asynccontextmanager
async def relay_servers(
    database_url: str, directory: Path, *, names: list[str]
) -> AsyncIterator[list[RelayServer]]:
    """Ready servers on one store, started together, all stopped on the way out."""
    servers = [RelayServer(database_url, directory / f"{name}.log") for name in names]
    try:
        # Let every start finish before stopping any, so no process is left behind.
        started = await asyncio.gather(*(s.start() for s in servers), return_exceptions=True)
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        yield servers
    finally:
        await asyncio.gather(*(server.stop() for server in servers))


@contextlib.asynccontextmanager
async def relay_server(
    database_url: str, directory: Path, *, name: str
) -> AsyncIterator[RelayServer]:
    """A ready server, stopped on the way out whatever happened."""
    async with relay_servers(database_url, directory, names=[name]) as (server,):
        yield server


async def admin_headers(server: RelayServer) -> dict[str, str]:
    """An admin key for the server's store.

    The bootstrap token works on a store that had no admin key; the session's
    shared store may hold another one, and then the CLI mints a key.
    """
    async with server.client() as client:
        if (await client.get("/v1/me", headers=ADMIN)).status_code == 200:
            return ADMIN
    process = await asyncio.create_subprocess_exec(
        str(RELAY),
        "keys",
        "create",
        "--role",
        "admin",
        "--label",
        f"tests {secrets.token_hex(3)}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=server_env(server.database_url),
        cwd=server.log_path.parent,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode(errors="replace")
    return {"Authorization": f"Bearer {json.loads(out)['token']}"}


@dataclass(frozen=True)
class LiveOperation:
    """An operation set up over HTTP with codes no other test uses."""

    code: str
    coordinator: dict[str, str]
    members: list[dict[str, str]]


async def set_up_operation(
    client: httpx.AsyncClient, admin: dict[str, str], *, administrations: int, member_keys: int
) -> LiveOperation:
    """A coordinator and ``administrations`` participants; ``member_keys`` keys spread over them.

    Codes carry a random suffix: the store is shared by every test of the session.
    """
    suffix = secrets.token_hex(3).upper()
    coordinator = f"OCU-{suffix}"
    participants = [f"P{i}-{suffix}" for i in range(administrations)]
    for code in (coordinator, *participants):
        response = await client.post(
            "/v1/administrations",
            json={"code": code, "name": code, "territory": "KR"},
            headers=admin,
        )
        assert response.status_code == 201, response.text
    operation = f"OP-{suffix}"
    response = await client.post(
        "/v1/operations",
        json={
            "code": operation,
            "name": f"Operation {operation}",
            "coordinator": coordinator,
            "participants": participants,
            "starts_at": "2020-06-15T00:00:00Z",
            "ends_at": "2020-07-19T23:59:59Z",
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text

    async def key(administration: str, label: str) -> dict[str, str]:
        body = {"administration": administration, "role": "member", "label": label}
        response = await client.post("/v1/keys", json=body, headers=admin)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    return LiveOperation(
        code=operation,
        coordinator=await key(coordinator, "coordinator"),
        members=[
            await key(participants[i % administrations], f"member {i}") for i in range(member_keys)
        ],
    )
