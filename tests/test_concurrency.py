"""The event log's ordering guarantee under concurrent writers (API.md section 7), checked
against real server processes: a reader that has seen ``seq = N`` never later finds an
event below N, and reading on from ``next_since`` misses nothing and repeats nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.api import seizure
from tests.server import (
    LiveOperation,
    RelayServer,
    admin_headers,
    relay_server,
    relay_servers,
    set_up_operation,
)

pytestmark = pytest.mark.slow

WRITERS = 16
ADMINISTRATIONS = 4
WRITE_FOR = 3.0
MAX_ALERTS_PER_WRITER = 60
# (page size, whether the reader narrows the feed to the operation)
READERS = ((7, False), (50, True), (500, False))
DRAIN_TIMEOUT = 30.0


@dataclass
class Written:
    """What one writer was told: alert ids and the references it sent with them."""

    created: dict[str, str] = field(default_factory=dict)
    refused: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Read:
    """What one reader saw, in the order it saw it."""

    seqs: list[int] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    backwards: list[tuple[int, int]] = field(default_factory=list)
    bad_next_since: list[tuple[int, int]] = field(default_factory=list)
    pages_while_writing: int = 0


async def write(
    server: RelayServer, operation: LiveOperation, writer: int, stop_at: float
) -> Written:
    """Report alerts until ``stop_at``, one request at a time, on a client of its own."""
    written = Written()
    headers = operation.members[writer]
    loop = asyncio.get_running_loop()
    async with server.client() as client:
        for n in range(MAX_ALERTS_PER_WRITER):
            if loop.time() >= stop_at:
                break
            reference = f"w{writer}-{n}"
            try:
                response = await client.post(
                    f"/v1/operations/{operation.code}/alerts",
                    json=seizure(reference=reference, summary=f"Concurrent report {reference}"),
                    headers=headers,
                )
            except httpx.TransportError as exc:
                written.refused.append((0, repr(exc)))
                break
            if response.status_code == 201:
                written.created[response.json()["id"]] = reference
            else:
                written.refused.append((response.status_code, response.text))
    return written


async def read(
    server: RelayServer,
    operation: LiveOperation,
    reader: tuple[int, bool],
    writers_done: asyncio.Event,
) -> Read:
    """Follow ``/v1/events`` from the start until a page after the writers stopped is empty."""
    page_size, by_operation = reader
    params: dict[str, int | str] = {"limit": page_size}
    if by_operation:
        params["operation"] = operation.code
    seen = Read()
    since = 0
    async with server.client() as client:
        while True:
            finished = writers_done.is_set()
            response = await client.get(
                "/v1/events", params={**params, "since": since}, headers=operation.coordinator
            )
            assert response.status_code == 200, response.text
            page = response.json()
            for event in page["items"]:
                if seen.seqs and event["seq"] <= seen.seqs[-1]:
                    seen.backwards.append((seen.seqs[-1], event["seq"]))
                seen.seqs.append(event["seq"])
                if event["type"] == "alert.created":
                    seen.created.append(event["alert"]["id"])
            expected_next = page["items"][-1]["seq"] if page["items"] else since
            if page["next_since"] != expected_next:
                seen.bad_next_since.append((expected_next, page["next_since"]))
            since = page["next_since"]
            if page["items"] and not finished:
                seen.pages_while_writing += 1
            if finished and not page["items"]:
                return seen
            if not page["items"]:
                await asyncio.sleep(0.005)


async def run_traffic(
    servers: list[RelayServer], operation: LiveOperation
) -> tuple[dict[str, str], list[tuple[int, str]], list[Read]]:
    """Writers spread over ``servers`` while readers follow the log; returns what each saw."""
    writers_done = asyncio.Event()
    readers = [
        asyncio.create_task(read(servers[i % len(servers)], operation, reader, writers_done))
        for i, reader in enumerate(READERS)
    ]
    stop_at = asyncio.get_running_loop().time() + WRITE_FOR
    try:
        written = await asyncio.gather(
            *(write(servers[i % len(servers)], operation, i, stop_at) for i in range(WRITERS))
        )
    finally:
        writers_done.set()
    reads = await asyncio.wait_for(asyncio.gather(*readers), DRAIN_TIMEOUT)
    created = {alert_id: ref for w in written for alert_id, ref in w.created.items()}
    refused = [r for w in written for r in w.refused]
    return created, refused, reads


def assert_every_reader_saw_the_log_in_order_and_whole(
    created: dict[str, str], refused: list[tuple[int, str]], reads: list[Read]
) -> None:
    assert not refused, refused[:5]
    assert len(created) >= WRITERS, "too few alerts to say anything about concurrency"
    for reader in reads:
        assert reader.backwards == [], "a reader saw a seq at or below one it had already seen"
        assert reader.bad_next_since == []
        assert reader.pages_while_writing >= 2, "the reader did not overlap the writers"
        duplicates = [alert_id for alert_id, n in Counter(reader.created).items() if n > 1]
        assert duplicates == []
        assert set(reader.created) == set(created)


async def test_readers_see_strictly_increasing_seqs_and_every_event_once(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_server(database_url, tmp_path, name="relay") as server:
        admin = await admin_headers(server)
        async with server.client() as client:
            operation = await set_up_operation(
                client, admin, administrations=ADMINISTRATIONS, member_keys=WRITERS
            )
        created, refused, reads = await run_traffic([server], operation)
    assert_every_reader_saw_the_log_in_order_and_whole(created, refused, reads)


@pytest.fixture(scope="module")
async def two_servers(
    store: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[RelayServer]]:
    """Two processes on one PostgreSQL store (SQLite serves one process only)."""
    if store != "postgres":
        pytest.skip("several processes share a store on PostgreSQL only")
    directory = tmp_path_factory.mktemp("two-servers")
    async with relay_servers(database_url, directory, names=["relay-a", "relay-b"]) as servers:
        yield servers


async def test_two_processes_on_one_store_keep_the_log_in_seq_order(
    two_servers: list[RelayServer],
) -> None:
    admin = await admin_headers(two_servers[0])
    async with two_servers[0].client() as client:
        operation = await set_up_operation(
            client, admin, administrations=ADMINISTRATIONS, member_keys=WRITERS
        )
    created, refused, reads = await run_traffic(two_servers, operation)
    assert_every_reader_saw_the_log_in_order_and_whole(created, refused, reads)


async def test_one_idempotency_key_sent_to_two_processes_at_once_creates_one_alert(
    two_servers: list[RelayServer],
) -> None:
    admin = await admin_headers(two_servers[0])
    async with two_servers[0].client() as client:
        operation = await set_up_operation(client, admin, administrations=1, member_keys=1)
    headers = {**operation.members[0], "Idempotency-Key": "twin-0001"}
    clients = [server.client() for server in two_servers for _ in range(10)]
    try:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/v1/operations/{operation.code}/alerts",
                    json=seizure(reference="twin"),
                    headers=headers,
                )
                for client in clients
            )
        )
        listed = await clients[0].get(
            f"/v1/operations/{operation.code}/alerts", headers=operation.coordinator
        )
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))

    first = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(first) == 1, [
        (r.status_code, r.headers.get("idempotent-replayed")) for r in responses
    ]
    for response in responses:
        if response is not first[0]:
            assert response.status_code in (201, 409), response.text
            if response.status_code == 201:
                assert response.headers["idempotent-replayed"] == "true"
                assert response.content == first[0].content
    assert listed.status_code == 200, listed.text
    assert [a["id"] for a in listed.json()["items"]] == [first[0].json()["id"]]
