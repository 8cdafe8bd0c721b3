"""An operation of its own for each test, set up over HTTP like an administrator would.

The session's store is shared by every test, so every code carries a random suffix.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class World:
    """A coordinator and three participants; a member key for each, an analyst key for the
    coordinator, and the admin key that set it all up."""

    operation: str
    coordinator: str
    participants: list[str]
    members: dict[str, str]  # administration code -> member token
    analyst: str
    admin: str

    async def report(self, client: httpx.AsyncClient, by: str, body: dict[str, Any]) -> str:
        """Report ``body`` as a member of ``by``; returns the new alert's id."""
        response = await client.post(
            f"/v1/operations/{self.operation}/alerts", json=body, headers=bearer(self.members[by])
        )
        assert response.status_code == 201, response.text
        alert_id: str = response.json()["id"]
        return alert_id


async def set_up_world(client: httpx.AsyncClient, admin: dict[str, str]) -> World:
    """Create the administrations, the operation and the keys of a ``World``."""
    suffix = secrets.token_hex(3).upper()
    coordinator = f"OCU-{suffix}"
    participants = [f"{name}-{suffix}" for name in ("KR", "TH", "HK")]
    for code in (coordinator, *participants):
        territory = "KR" if code == coordinator else code[:2]
        body = {"code": code, "name": f"Customs {code}", "territory": territory}
        response = await client.post("/v1/administrations", json=body, headers=admin)
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

    async def key(administration: str, role: str) -> str:
        body = {"administration": administration, "role": role, "label": f"{role} e2e"}
        response = await client.post("/v1/keys", json=body, headers=admin)
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    return World(
        operation=operation,
        coordinator=coordinator,
        participants=participants,
        members={code: await key(code, "member") for code in participants},
        analyst=await key(coordinator, "analyst"),
        admin=admin["Authorization"].removeprefix("Bearer "),
    )
