"""The reporting fast path (``app/routers/reporting.py``): a well-formed report from a key
that may make it is answered below FastAPI, everything else by the route, and a client
cannot tell the two apart (the rest of the suite posts through both)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import Receive, Scope, Send

from app.committer import WriteTx
from app.routers.reporting import ReportFastPath
from app.services import keys
from tests.api import ADMIN, Api, assert_problem, seizure
from tests.conftest import client_for, reset

ALERTS = "/v1/operations/ICEBREAK-II/alerts"


@dataclass
class Route:
    """Stands for the route behind the fast path: counts what reaches it, answers with the
    whole app (whose own fast path hands it on again)."""

    app: FastAPI
    reached: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached.append(scope["path"])
        await self.app(scope, receive, send)


@dataclass
class Reporting:
    api: Api
    keys: dict[str, dict[str, str]]
    client: httpx.AsyncClient  # through the fast path alone
    route: Route


@pytest.fixture
async def reporting(app: FastAPI) -> AsyncIterator[Reporting]:
    await reset(app.state.runtime)
    route = Route(app)
    fast = ReportFastPath(route)

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app
        await fast(scope, receive, send)

    transport = httpx.ASGITransport(app=outer)
    async with (
        client_for(app) as plain,
        httpx.AsyncClient(transport=transport, base_url="http://relay.test") as client,
    ):
        api = Api(plain, app.state.runtime)
        yield Reporting(api, await api.ice_break(), client, route)


async def test_a_well_formed_report_is_answered_below_the_route(reporting: Reporting) -> None:
    response = await reporting.client.post(ALERTS, json=seizure(), headers=reporting.keys["KR-KCS"])

    assert response.status_code == 201, response.text
    assert reporting.route.reached == []
    assert response.headers["content-type"] == "application/json"
    stored = await reporting.api.client.get(
        response.headers["location"], headers=reporting.keys["KR-KCS"]
    )
    assert stored.status_code == 200 and stored.json() == response.json()


async def test_a_replayed_report_and_a_refused_one_are_answered_below_the_route(
    reporting: Reporting,
) -> None:
    headers = {**reporting.keys["KR-KCS"], "Idempotency-Key": "fast-path-1"}
    first = await reporting.client.post(ALERTS, json=seizure(), headers=headers)
    again = await reporting.client.post(ALERTS, json=seizure(), headers=headers)
    other = await reporting.client.post(
        ALERTS, json=seizure(summary="another body"), headers=headers
    )
    missing = await reporting.client.post(
        "/v1/operations/NO-SUCH-OP/alerts", json=seizure(), headers=reporting.keys["KR-KCS"]
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert_problem(other, 422)
    assert_problem(missing, 404)
    assert reporting.route.reached == []


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("invalid body", 422),
        ("no token", 401),
        ("unknown token", 401),
        ("admin key", 403),
        ("lower-case code", 422),
        ("not JSON", 422),
    ],
)
async def test_anything_else_is_left_to_the_route(
    reporting: Reporting, case: str, status: int
) -> None:
    member = reporting.keys["KR-KCS"]
    path, body, headers = ALERTS, seizure(), member
    if case == "invalid body":
        body = seizure(summary="")
    elif case == "no token":
        headers = {}
    elif case == "unknown token":
        headers = {"Authorization": "Bearer sr_not_a_key_at_all_0000000000000000000000"}
    elif case == "admin key":
        headers = ADMIN
    elif case == "lower-case code":
        path = "/v1/operations/icebreak-ii/alerts"
    if case == "not JSON":
        response = await reporting.client.post(
            path, content=b"{not json", headers={**headers, "Content-Type": "application/json"}
        )
    else:
        response = await reporting.client.post(path, json=body, headers=headers)

    assert_problem(response, status)
    assert reporting.route.reached == [path]


# --- who the caller is: from memory, and checked again at commit ---------------------------


async def member_key(reporting: Reporting, label: str) -> tuple[str, dict[str, str]]:
    """A new KR-KCS member key: its id and its Authorization header."""
    created = await reporting.api.client.post(
        "/v1/keys",
        json={"administration": "KR-KCS", "role": "member", "label": label},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], {"Authorization": f"Bearer {created.json()['token']}"}


async def on_another_node(database_url: str, statement: str, **values: Any) -> None:
    """Change the store the way another server process would: over a connection of its own."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement), values)
    finally:
        await engine.dispose()


async def stored_summaries(reporting: Reporting) -> list[str]:
    listed = await reporting.api.client.get(ALERTS, headers=reporting.keys["RILO-AP"])
    assert listed.status_code == 200, listed.text
    return [item["summary"] for item in listed.json()["items"]]


@pytest.mark.parametrize("how", ["revoked here", "revoked on another node", "expired"])
async def test_a_key_known_from_memory_stops_reporting_at_once(
    reporting: Reporting, database_url: str, how: str
) -> None:
    key_id, headers = await member_key(reporting, f"system ({how})")
    first = await reporting.client.post(ALERTS, json=seizure(summary="before"), headers=headers)
    assert first.status_code == 201, first.text
    runtime = reporting.api.runtime
    assert len(runtime.keys) > 0  # the fast path now knows the key

    if how == "revoked here":
        revoked = await reporting.api.client.delete(f"/v1/keys/{key_id}", headers=ADMIN)
        assert revoked.status_code == 204
    elif how == "revoked on another node":
        await on_another_node(
            database_url,
            "UPDATE api_key SET revoked_at = :at WHERE id = :id",
            at=datetime.now(UTC),
            id=key_id,
        )
    else:
        await on_another_node(
            database_url,
            "UPDATE api_key SET expires_at = :at WHERE id = :id",
            at=datetime.now(UTC) - timedelta(seconds=1),
            id=key_id,
        )
    refused = await reporting.client.post(ALERTS, json=seizure(summary="after"), headers=headers)
    again = await reporting.client.post(ALERTS, json=seizure(summary="again"), headers=headers)

    problem = assert_problem(refused, 401)
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert "revoked" in problem["detail"]
    assert_problem(again, 401)  # forgotten: looked up again, and refused by the route
    assert await stored_summaries(reporting) == ["before"]


async def test_a_key_revoked_in_the_same_batch_before_a_report_refuses_it(
    reporting: Reporting,
) -> None:
    key_id, headers = await member_key(reporting, "system")
    warmed = await reporting.client.post(ALERTS, json=seizure(summary="before"), headers=headers)
    assert warmed.status_code == 201
    runtime = reporting.api.runtime

    async def revoke(tx: WriteTx) -> None:
        await keys.revoke_key(tx, caller=None, key_id=key_id)

    # Both are queued before the committer's next turn, the revocation first.
    revoked, refused, other = await asyncio.gather(
        runtime.committer.run(revoke),
        reporting.client.post(ALERTS, json=seizure(summary="after"), headers=headers),
        reporting.client.post(
            ALERTS, json=seizure(summary="other key"), headers=reporting.keys["KR-KCS"]
        ),
    )

    assert revoked is None
    assert_problem(refused, 401)
    assert other.status_code == 201, other.text
    assert sorted(await stored_summaries(reporting)) == ["before", "other key"]


@pytest.mark.parametrize("refusal", ["bad idempotency key", "no such operation"])
async def test_a_revoked_key_known_from_memory_is_401_before_any_other_refusal(
    reporting: Reporting, database_url: str, refusal: str
) -> None:
    key_id, headers = await member_key(reporting, "system")
    warmed = await reporting.client.post(ALERTS, json=seizure(summary="before"), headers=headers)
    assert warmed.status_code == 201
    await on_another_node(
        database_url,
        "UPDATE api_key SET revoked_at = :at WHERE id = :id",
        at=datetime.now(UTC),
        id=key_id,
    )
    path, extra = ALERTS, {}
    if refusal == "bad idempotency key":
        extra = {"Idempotency-Key": "x" * 256}  # 422 for a live key
    else:
        path = "/v1/operations/NO-SUCH-OP/alerts"  # 404 for a live key

    refused = await reporting.client.post(path, json=seizure(), headers={**headers, **extra})

    assert_problem(refused, 401)
    assert await stored_summaries(reporting) == ["before"]
