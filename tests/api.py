"""A thin client for tests: set up a world through the public API, and check problems."""

from __future__ import annotations

from typing import Any

import httpx

from app.deps import Runtime

ADMIN_TOKEN = "sr_test_admin_token_0123456789abcdefghij"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def seizure(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "seizure",
        "priority": "routine",
        "occurred_at": "2020-06-17T09:30:00+09:00",
        "location": {
            "territory": "KR",
            "place": "Incheon International Mail Centre",
            "unlocode": "KRICN",
        },
        "transport_mode": "mail",
        "route": {"origin": "TH", "transit": ["MY"], "destination": "KR"},
        "items": [
            {"commodity": "methamphetamine", "form": "crystal", "quantity": 2.35, "unit": "kg"}
        ],
        "concealment_methods": ["tea_packaging"],
        "concealment": "Vacuum-packed in Chinese tea bags inside a gift box",
        "detection_method": "x_ray",
        "identifiers": [{"type": "tracking_number", "value": "EE123456789TH"}],
        "offenders": {"count": 1, "nationalities": ["TH"]},
        "tlp": "AMBER",
        "summary": "2.35 kg crystal methamphetamine in tea bags, parcel from TH",
        "narrative": "Found on x-ray at the mail centre.",
        "reference": "KCS-2020-0617-001",
        "audience": {"scope": "operation"},
    }
    body.update(overrides)
    return body


def pre_alert(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "pre_alert",
        "occurred_at": "2020-06-18T10:00:00Z",
        "location": {"territory": "TH"},
        "transport_mode": "express_courier",
        "route": {"origin": "TH", "transit": [], "destination": "HK"},
        "summary": "Suspicious express parcel heading to HK",
        "audience": {"scope": "restricted", "recipients": []},
    }
    body.update(overrides)
    return body


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status``; returns its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    if status == 422:
        assert body["errors"] and all({"loc", "msg"} <= e.keys() for e in body["errors"])
    text = response.text.lower()
    assert "traceback" not in text and "select " not in text and "sqlalchemy" not in text
    return body


class Api:
    """Helpers that go through the public HTTP API only."""

    def __init__(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        self.client = client
        self.runtime = runtime

    async def administration(
        self, code: str, territory: str = "KR", name: str | None = None
    ) -> None:
        response = await self.client.post(
            "/v1/administrations",
            json={"code": code, "name": name or code, "territory": territory},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text

    async def operation(
        self, code: str, *, coordinator: str, participants: list[str], **extra: Any
    ) -> dict[str, Any]:
        body = {
            "code": code,
            "name": f"Operation {code}",
            "coordinator": coordinator,
            "participants": participants,
            "starts_at": "2020-06-15T00:00:00Z",
            "ends_at": "2020-07-19T23:59:59Z",
            **extra,
        }
        response = await self.client.post("/v1/operations", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def key(
        self, administration: str | None, role: str = "member", label: str | None = None
    ) -> dict[str, str]:
        """Authorization headers for a new key."""
        body: dict[str, Any] = {
            "role": role,
            "label": label or f"{administration or 'admin'} {role}",
        }
        if administration is not None:
            body["administration"] = administration
        response = await self.client.post("/v1/keys", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    async def report(
        self, headers: dict[str, str], operation: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/operations/{operation}/alerts", json=body, headers=headers
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def ice_break(self) -> dict[str, dict[str, str]]:
        """A small operation: RILO-AP coordinates KR, HK and TH; JP stands outside.

        Returns member keys by administration, plus analyst keys as ``<code>/analyst``.
        """
        for code, territory in (
            ("RILO-AP", "KR"),
            ("KR-KCS", "KR"),
            ("HK-CED", "HK"),
            ("TH-CUS", "TH"),
            ("JP-CUS", "JP"),
        ):
            await self.administration(code, territory)
        await self.operation(
            "ICEBREAK-II", coordinator="RILO-AP", participants=["KR-KCS", "HK-CED", "TH-CUS"]
        )
        await self.operation("OTHER-OP", coordinator="JP-CUS", participants=["KR-KCS"])
        keys: dict[str, dict[str, str]] = {}
        for code in ("RILO-AP", "KR-KCS", "HK-CED", "TH-CUS", "JP-CUS"):
            keys[code] = await self.key(code, "member")
            keys[f"{code}/analyst"] = await self.key(code, "analyst")
        return keys
