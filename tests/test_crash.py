"""201 means durably committed (API.md section 5): a server killed in the middle of
ingest keeps every alert it acknowledged, and retrying the requests it never answered,
with their ``Idempotency-Key``, creates each alert exactly once."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api import seizure
from tests.server import LiveOperation, RelayServer, admin_headers, relay_server, set_up_operation

pytestmark = pytest.mark.slow

CLIENTS = 8
KILL_AFTER_CREATED = 40
MAX_REQUESTS_PER_CLIENT = 200


@dataclass(frozen=True)
class Sent:
    """One request as it went out, to be sent again byte for byte."""

    key: str
    client: int
    body: dict[str, Any]


@dataclass
class Ingest:
    """Every request sent before the kill, and what became of it."""

    sent: list[Sent] = field(default_factory=list)
    acknowledged: dict[str, httpx.Response] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)


async def ingest(
    server: RelayServer,
    operation: LiveOperation,
    client_no: int,
    run: str,
    result: Ingest,
    enough: asyncio.Event,
) -> None:
    """Report alerts one after another until the server stops answering."""
    headers = operation.members[client_no]
    async with server.client(timeout=10.0) as client:
        for n in range(MAX_REQUESTS_PER_CLIENT):
            key = f"crash-{run}-{client_no}-{n}"
            sent = Sent(key, client_no, seizure(reference=key, summary=f"Ingest {key}"))
            result.sent.append(sent)
            try:
                response = await client.post(
                    f"/v1/operations/{operation.code}/alerts",
                    json=sent.body,
                    headers={**headers, "Idempotency-Key": key},
                )
            except httpx.TransportError:
                result.unanswered.append(key)
                return
            if response.status_code == 201:
                result.acknowledged[key] = response
                if len(result.acknowledged) >= KILL_AFTER_CREATED:
                    enough.set()
            else:
                result.refused[key] = response.status_code


async def ingest_until_killed(server: RelayServer, operation: LiveOperation) -> Ingest:
    """``CLIENTS`` concurrent reporters; SIGKILL once enough alerts were acknowledged."""
    result = Ingest()
    enough = asyncio.Event()
    run = secrets.token_hex(3)
    clients = [
        asyncio.create_task(ingest(server, operation, i, run, result, enough))
        for i in range(CLIENTS)
    ]
    try:
        await asyncio.wait_for(enough.wait(), 30)
    finally:
        await server.kill()
        await asyncio.wait_for(asyncio.gather(*clients), 30)
    return result


async def all_alerts(client: httpx.AsyncClient, operation: LiveOperation) -> list[dict[str, Any]]:
    """Every alert of the operation, through the list endpoint's pages."""
    alerts: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        response = await client.get(
            f"/v1/operations/{operation.code}/alerts", params=params, headers=operation.coordinator
        )
        assert response.status_code == 200, response.text
        page = response.json()
        alerts += page["items"]
        if page["next_cursor"] is None:
            return alerts
        params["cursor"] = page["next_cursor"]


async def read_alert(client: httpx.AsyncClient, headers: dict[str, str], alert_id: str) -> Any:
    response = await client.get(f"/v1/alerts/{alert_id}", headers=headers)
    assert response.status_code == 200, (alert_id, response.text)
    return response.json()


async def send_again(
    client: httpx.AsyncClient, operation: LiveOperation, requests: list[Sent]
) -> list[httpx.Response]:
    """Send ``requests`` again with their keys, one at a time."""
    responses = []
    for sent in requests:
        responses.append(
            await client.post(
                f"/v1/operations/{operation.code}/alerts",
                json=sent.body,
                headers={**operation.members[sent.client], "Idempotency-Key": sent.key},
            )
        )
    return responses


async def test_acknowledged_alerts_survive_a_kill_and_retries_create_each_alert_once(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_server(database_url, tmp_path, name="before-kill") as server:
        admin = await admin_headers(server)
        async with server.client() as client:
            operation = await set_up_operation(
                client, admin, administrations=4, member_keys=CLIENTS
            )
        result = await ingest_until_killed(server, operation)
    assert result.acknowledged, "nothing was acknowledged before the kill"
    assert result.unanswered, "the kill interrupted no request"
    acknowledged_ids = {key: r.json()["id"] for key, r in result.acknowledged.items()}

    async with (
        relay_server(database_url, tmp_path, name="after-restart") as server,
        server.client() as client,
    ):
        read_back = await asyncio.gather(
            *(read_alert(client, operation.coordinator, i) for i in acknowledged_ids.values())
        )
        listed = Counter(alert["id"] for alert in await all_alerts(client, operation))

        by_client = [[s for s in result.sent if s.client == i] for i in range(CLIENTS)]
        retried = await asyncio.gather(*(send_again(client, operation, s) for s in by_client))
        alerts = await all_alerts(client, operation)

    assert [a["reference"] for a in read_back] == list(acknowledged_ids)
    assert {listed[i] for i in acknowledged_ids.values()} == {1}
    sent_again = [s for group in by_client for s in group]
    for sent, retry in zip(sent_again, [r for group in retried for r in group], strict=True):
        assert retry.status_code == 201, (sent.key, retry.text)
        if sent.key in result.acknowledged:
            assert retry.headers["idempotent-replayed"] == "true"
            assert retry.content == result.acknowledged[sent.key].content
    references = Counter(alert["reference"] for alert in alerts)
    assert [ref for ref, n in references.items() if n > 1] == []
    assert set(references) == {sent.key for sent in result.sent}
    assert len(alerts) == len(result.sent), f"answered other than 201: {result.refused}"
