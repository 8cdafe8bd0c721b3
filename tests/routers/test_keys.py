"""API keys, ``/v1/me`` and who may call what (API.md sections 2 and 4)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api import ADMIN, ADMIN_TOKEN, Api, assert_problem, seizure

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
HEX = re.compile(r"^[0-9a-f]+$")
SOME_ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


async def mint(api: Api, **body: Any) -> dict[str, Any]:
    """Create a key as the admin; returns the 201 body."""
    response = await api.client.post("/v1/keys", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def listed_keys(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/keys", params={"limit": 500}, headers=ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def lenient_client(app: FastAPI) -> httpx.AsyncClient:
    """A client that receives the app's 500 answer instead of the exception behind it."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://relay.test")


def assert_unauthorized(response: Any) -> None:
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("bearer")


# --- minting ------------------------------------------------------------------------


async def test_create_key_is_201_and_shows_the_token(api: Api) -> None:
    await api.administration("KR-KCS")
    response = await api.client.post(
        "/v1/keys",
        json={"administration": "KR-KCS", "role": "member", "label": "KCS case system"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert {
        "id",
        "token",
        "administration",
        "role",
        "label",
        "created_at",
        "expires_at",
    } <= body.keys()
    assert (body["administration"], body["role"], body["label"], body["expires_at"]) == (
        "KR-KCS",
        "member",
        "KCS case system",
        None,
    )
    assert body["created_at"].endswith("Z")
    assert isinstance(body["id"], str) and body["id"]
    me = await api.client.get("/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200, me.text
    assert me.json()["key_id"] == body["id"]


async def test_create_key_with_an_expiry_answers_it_in_utc(api: Api) -> None:
    await api.administration("KR-KCS")
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    local = expires.astimezone(timezone(timedelta(hours=9))).isoformat()
    created = await mint(api, administration="KR-KCS", role="analyst", label="x", expires_at=local)
    assert created["expires_at"].endswith("Z")
    assert datetime.fromisoformat(created["expires_at"]) == expires


async def test_token_has_at_least_128_random_bits(api: Api) -> None:
    await api.administration("KR-KCS")
    tokens = [
        (await mint(api, administration="KR-KCS", role="member", label=f"k{n}"))["token"]
        for n in range(5)
    ]
    assert len(set(tokens)) == len(tokens)
    prefix = tokens[0]
    while not all(token.startswith(prefix) for token in tokens):
        prefix = prefix[:-1]
    for token in tokens:
        random_part = token[len(prefix) :]
        assert URL_SAFE.match(random_part), token
        # 6 bits a character in base64url, 4 in hex
        bits = len(random_part) * (4 if HEX.match(random_part) else 6)
        assert bits >= 128, token


async def test_keys_list_never_shows_tokens(api: Api) -> None:
    await api.administration("KR-KCS")
    created = [
        await mint(api, administration="KR-KCS", role=role, label=f"KCS {role}")
        for role in ("member", "analyst")
    ]
    created.append(await mint(api, role="admin", label="second admin"))
    response = await api.client.get("/v1/keys", headers=ADMIN)
    assert response.status_code == 200
    items = response.json()["items"]
    assert {item["id"] for item in created} <= {item["id"] for item in items}
    assert len(items) == 4  # the bootstrap admin's key too
    for item in items:
        assert not {"token", "token_hash", "hash"} & item.keys(), item
    for token in [c["token"] for c in created] + [ADMIN_TOKEN]:
        assert token not in response.text
        assert token.removeprefix("sr_") not in response.text
        assert hashlib.sha256(token.encode()).hexdigest() not in response.text


async def test_keys_list_shows_each_key_as_created(api: Api) -> None:
    await api.administration("KR-KCS")
    created = await mint(api, administration="KR-KCS", role="analyst", label="KCS analysts")
    listed = {item["id"]: item for item in await listed_keys(api)}
    shown = listed[created["id"]]
    assert {
        k: shown[k] for k in ("administration", "role", "label", "created_at", "expires_at")
    } == {k: created[k] for k in ("administration", "role", "label", "created_at", "expires_at")}


async def test_keys_list_pages_with_limit_and_cursor(api: Api) -> None:
    await api.administration("KR-KCS")
    for n in range(4):
        await mint(api, administration="KR-KCS", role="member", label=f"k{n}")
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (await api.client.get("/v1/keys", params=params, headers=ADMIN)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == {item["id"] for item in await listed_keys(api)}
    for limit in ("0", "501"):
        assert_problem(
            await api.client.get("/v1/keys", params={"limit": limit}, headers=ADMIN), 422
        )


@pytest.mark.parametrize(
    "body",
    [
        {"administration": "KR-KCS", "role": "admin", "label": "admin with administration"},
        {"role": "member", "label": "member without administration"},
        {"role": "analyst", "label": "analyst without administration"},
        {"administration": None, "role": "member", "label": "member with null administration"},
        {"administration": "MO-CUS", "role": "member", "label": "unknown administration"},
        {"administration": "kr-kcs", "role": "member", "label": "malformed administration"},
        {"administration": "KR-KCS", "role": "superuser", "label": "unknown role"},
        {"administration": "KR-KCS", "label": "no role"},
        {"administration": "KR-KCS", "role": "member"},
        {"administration": "KR-KCS", "role": "member", "label": ""},
        {
            "administration": "KR-KCS",
            "role": "member",
            "label": "x",
            "expires_at": "2020-01-01T00:00:00Z",
        },
        {
            "administration": "KR-KCS",
            "role": "member",
            "label": "x",
            "expires_at": "2999-01-01T00:00:00",
        },
        {
            "administration": "KR-KCS",
            "role": "member",
            "label": "numeric expiry",
            "expires_at": 32503680000,
        },
        {
            "administration": "KR-KCS",
            "role": "member",
            "label": "x",
            "token": "sr_chosen_by_the_caller_0123456789",
        },
    ],
    ids=lambda body: body.get("label") or "no label",
)
async def test_invalid_key_request_is_422_and_mints_nothing(api: Api, body: dict[str, Any]) -> None:
    await api.administration("KR-KCS")
    before = await listed_keys(api)
    response = await api.client.post("/v1/keys", json=body, headers=ADMIN)
    assert_problem(response, 422)
    assert await listed_keys(api) == before


async def test_expires_at_in_the_past_is_422_naming_the_field(api: Api) -> None:
    await api.administration("KR-KCS")
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    response = await api.client.post(
        "/v1/keys",
        json={"administration": "KR-KCS", "role": "member", "label": "x", "expires_at": past},
        headers=ADMIN,
    )
    body = assert_problem(response, 422)
    assert any("expires_at" in error["loc"] for error in body["errors"]), body


async def test_expires_at_beyond_year_9999_in_utc_is_422(api: Api, app: FastAPI) -> None:
    await api.administration("KR-KCS")
    before = await listed_keys(api)
    body = {
        "administration": "KR-KCS",
        "role": "member",
        "label": "x",
        "expires_at": "9999-12-31T23:59:59-01:00",
    }
    async with lenient_client(app) as client:
        response = await client.post("/v1/keys", json=body, headers=ADMIN)
    assert_problem(response, 422)
    assert await listed_keys(api) == before


async def test_forged_keys_cursor_holding_nul_is_422(api: Api, app: FastAPI) -> None:
    forged = base64.urlsafe_b64encode(b'{"id": "\\u0000"}').decode().rstrip("=")
    async with lenient_client(app) as client:
        response = await client.get("/v1/keys", params={"cursor": forged}, headers=ADMIN)
    body = assert_problem(response, 422)
    assert any("cursor" in error["loc"] for error in body["errors"]), body


# --- who the key is -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "administration"), [("admin", None), ("member", "KR-KCS"), ("analyst", "HK-CED")]
)
async def test_me_tells_the_key_its_role_and_administration(
    api: Api, role: str, administration: str | None
) -> None:
    await api.administration("KR-KCS")
    await api.administration("HK-CED", "HK")
    body: dict[str, Any] = {"role": role, "label": f"the {role}"}
    if administration is not None:
        body["administration"] = administration
    created = await mint(api, **body)
    response = await api.client.get("/v1/me", headers=bearer(created["token"]))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "key_id": created["id"],
        "administration": administration,
        "role": role,
        "label": f"the {role}",
    }


async def test_bootstrap_admin_key_is_an_admin(api: Api) -> None:
    response = await api.client.get("/v1/me", headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    assert response.json()["administration"] is None


# --- revoking and expiring ----------------------------------------------------------


async def test_revoked_key_is_401_on_the_very_next_request(api: Api) -> None:
    await api.administration("KR-KCS")
    created = await mint(api, administration="KR-KCS", role="member", label="to revoke")
    headers = bearer(created["token"])
    assert (await api.client.get("/v1/me", headers=headers)).status_code == 200
    response = await api.client.delete(f"/v1/keys/{created['id']}", headers=ADMIN)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_unauthorized(await api.client.get("/v1/me", headers=headers))
    assert_unauthorized(await api.client.get("/v1/operations", headers=headers))


async def test_revoking_one_key_leaves_the_others_working(api: Api) -> None:
    await api.administration("KR-KCS")
    revoked = await mint(api, administration="KR-KCS", role="member", label="revoked")
    kept = await mint(api, administration="KR-KCS", role="member", label="kept")
    assert (await api.client.delete(f"/v1/keys/{revoked['id']}", headers=ADMIN)).status_code == 204
    response = await api.client.get("/v1/me", headers=bearer(kept["token"]))
    assert response.status_code == 200
    assert response.json()["key_id"] == kept["id"]


async def test_revoked_key_cannot_report_an_alert(api: Api) -> None:
    await api.administration("RILO-AP")
    await api.administration("KR-KCS")
    await api.operation("ICEBREAK-II", coordinator="RILO-AP", participants=["KR-KCS"])
    created = await mint(api, administration="KR-KCS", role="member", label="system")
    assert (await api.client.delete(f"/v1/keys/{created['id']}", headers=ADMIN)).status_code == 204
    response = await api.client.post(
        "/v1/operations/ICEBREAK-II/alerts", json=seizure(), headers=bearer(created["token"])
    )
    assert_unauthorized(response)
    listed = await api.client.get(
        "/v1/operations/ICEBREAK-II/alerts", headers=await api.key("RILO-AP")
    )
    assert listed.json()["items"] == []


async def test_revoked_admin_key_cannot_mint_keys(api: Api) -> None:
    second = await mint(api, role="admin", label="second admin")
    assert (await api.client.delete(f"/v1/keys/{second['id']}", headers=ADMIN)).status_code == 204
    response = await api.client.post(
        "/v1/keys", json={"role": "admin", "label": "sneaky"}, headers=bearer(second["token"])
    )
    assert_unauthorized(response)
    assert "sneaky" not in [item["label"] for item in await listed_keys(api)]


async def test_expired_key_is_401(api: Api) -> None:
    await api.administration("KR-KCS")
    expires = datetime.now(UTC) + timedelta(seconds=2.5)
    created = await mint(
        api, administration="KR-KCS", role="member", label="short", expires_at=expires.isoformat()
    )
    headers = bearer(created["token"])
    assert (await api.client.get("/v1/me", headers=headers)).status_code == 200
    await asyncio.sleep((expires - datetime.now(UTC)).total_seconds() + 0.2)
    assert_unauthorized(await api.client.get("/v1/me", headers=headers))


@pytest.mark.parametrize("key_id", [SOME_ULID])
async def test_revoking_an_unknown_key_is_404(api: Api, key_id: str) -> None:
    before = await listed_keys(api)
    assert_problem(await api.client.delete(f"/v1/keys/{key_id}", headers=ADMIN), 404)
    assert await listed_keys(api) == before


# --- authentication -----------------------------------------------------------------


async def test_unknown_token_is_401(api: Api) -> None:
    response = await api.client.get("/v1/me", headers=bearer("sr_" + "A" * 43))
    assert_unauthorized(response)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Basic {ADMIN_TOKEN}",
        f"Token {ADMIN_TOKEN}",
        ADMIN_TOKEN,
        f"Bearer {ADMIN_TOKEN}x",
        f"Bearer {ADMIN_TOKEN[:-1]}",
        f"Bearer {ADMIN_TOKEN.upper()}",
        "Bearer \u00e9t\u00e9",
    ],
)
async def test_missing_or_garbled_authorization_is_401_with_www_authenticate(
    api: Api, authorization: str | None
) -> None:
    headers: dict[str, Any] = {}
    if authorization is not None:
        headers["Authorization"] = authorization.encode("utf-8")
    response = await api.client.get("/v1/administrations", headers=headers)
    assert_unauthorized(response)


async def test_bearer_scheme_is_case_insensitive(api: Api) -> None:
    response = await api.client.get("/v1/me", headers={"Authorization": f"bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text


# --- who may call what --------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: dict[str, Any] | None
    succeeds: int

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


OPERATION = {
    "code": "STORM-III",
    "name": "Operation Storm III",
    "coordinator": "RILO-AP",
    "participants": ["KR-KCS"],
    "starts_at": "2020-06-15T00:00:00Z",
    "ends_at": "2020-07-19T23:59:59Z",
}
ADMIN_ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/administrations",
        {"code": "MO-CUS", "name": "Macao Customs", "territory": "MO"},
        201,
    ),
    Endpoint("GET", "/v1/administrations", None, 200),
    Endpoint("POST", "/v1/operations", OPERATION, 201),
    Endpoint("POST", "/v1/operations/ICEBREAK-II/participants", {"administration": "JP-CUS"}, 201),
    Endpoint("DELETE", "/v1/operations/ICEBREAK-II/participants/HK-CED", None, 204),
    Endpoint("POST", "/v1/operations/ICEBREAK-II/close", None, 200),
    Endpoint(
        "POST", "/v1/keys", {"administration": "HK-CED", "role": "member", "label": "new"}, 201
    ),
    Endpoint("GET", "/v1/keys", None, 200),
    Endpoint("DELETE", "/v1/keys/{spare}", None, 204),
    Endpoint("GET", "/v1/audit", None, 200),
]
MEMBER_ENDPOINTS = [
    Endpoint("POST", "/v1/operations/ICEBREAK-II/alerts", seizure(), 201),
    Endpoint("GET", "/v1/operations/ICEBREAK-II/alerts", None, 200),
    Endpoint("GET", "/v1/events", None, 200),
]
SHARED_ENDPOINTS = [
    Endpoint("GET", "/v1/me", None, 200),
    Endpoint("GET", "/v1/operations", None, 200),
    Endpoint("GET", "/v1/operations/ICEBREAK-II", None, 200),
]
ROLES = ["admin", "member", "analyst"]


def expected_status(role: str, endpoint: Endpoint) -> int:
    if endpoint in ADMIN_ENDPOINTS:
        return endpoint.succeeds if role == "admin" else 403
    if endpoint in MEMBER_ENDPOINTS:
        return 403 if role == "admin" else endpoint.succeeds
    return endpoint.succeeds


async def matrix_world(api: Api) -> dict[str, Any]:
    """RILO-AP coordinates ICEBREAK-II with KR-KCS and HK-CED; JP-CUS stands outside."""
    for code, territory in (
        ("RILO-AP", "KR"),
        ("KR-KCS", "KR"),
        ("HK-CED", "HK"),
        ("JP-CUS", "JP"),
    ):
        await api.administration(code, territory)
    await api.operation("ICEBREAK-II", coordinator="RILO-AP", participants=["KR-KCS", "HK-CED"])
    spare = await mint(api, administration="JP-CUS", role="member", label="spare")
    return {
        "spare": spare["id"],
        "admin": ADMIN,
        "member": await api.key("KR-KCS", "member"),
        "analyst": await api.key("KR-KCS", "analyst"),
    }


@pytest.mark.parametrize("endpoint", ADMIN_ENDPOINTS + MEMBER_ENDPOINTS + SHARED_ENDPOINTS, ids=str)
@pytest.mark.parametrize("role", ROLES)
async def test_role_matrix(api: Api, role: str, endpoint: Endpoint) -> None:
    world = await matrix_world(api)
    response = await api.client.request(
        endpoint.method,
        endpoint.path.format(spare=world["spare"]),
        json=endpoint.body,
        headers=world[role],
    )
    status = expected_status(role, endpoint)
    if status == 403:
        assert_problem(response, 403)
    else:
        assert response.status_code == status, response.text


@pytest.mark.parametrize("role", ["member", "analyst"])
async def test_forbidden_admin_writes_change_nothing(api: Api, role: str) -> None:
    world = await matrix_world(api)
    headers = world[role]
    assert_problem(
        await api.client.post(
            "/v1/administrations",
            json={"code": "MO-CUS", "name": "Macao", "territory": "MO"},
            headers=headers,
        ),
        403,
    )
    assert_problem(
        await api.client.post(
            "/v1/keys",
            json={"administration": "KR-KCS", "role": "admin", "label": "x"},
            headers=headers,
        ),
        403,
    )
    assert_problem(
        await api.client.post("/v1/keys", json={"role": "admin", "label": "x"}, headers=headers),
        403,
    )
    assert_problem(await api.client.delete(f"/v1/keys/{world['spare']}", headers=headers), 403)
    assert_problem(await api.client.post("/v1/operations/ICEBREAK-II/close", headers=headers), 403)
    codes = [
        a["code"]
        for a in (await api.client.get("/v1/administrations", headers=ADMIN)).json()["items"]
    ]
    assert "MO-CUS" not in codes
    keys = await listed_keys(api)
    assert len(keys) == 4
    assert all(key["revoked_at"] is None for key in keys if "revoked_at" in key)
    assert (await api.client.get("/v1/operations/ICEBREAK-II", headers=ADMIN)).json()[
        "status"
    ] == "open"


@pytest.mark.parametrize("endpoint", ADMIN_ENDPOINTS + MEMBER_ENDPOINTS + SHARED_ENDPOINTS, ids=str)
async def test_every_v1_endpoint_needs_a_key(api: Api, endpoint: Endpoint) -> None:
    response = await api.client.request(
        endpoint.method, endpoint.path.format(spare=SOME_ULID), json=endpoint.body
    )
    assert_unauthorized(response)
