"""How the HTTP layer refuses what it cannot serve (API.md sections 1 and 10): every error
is an RFC 9457 problem, bodies are JSON and bounded, and each key's request rate is limited."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests.api import ADMIN, Api, assert_problem, seizure
from tests.conftest import client_for, settings_for

MAX_BODY = 256 * 1024
JSON = {"Content-Type": "application/json"}


def padded_administration(code: str, size: int) -> bytes:
    """A valid administration body, padded with trailing whitespace to exactly ``size`` bytes."""
    body = json.dumps({"code": code, "name": "Big Body Customs", "territory": "KR"}).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


async def in_chunks(body: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    """The body as a stream, so that httpx sends it chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def administration_codes(api: Api) -> list[str]:
    response = await api.client.get("/v1/administrations", params={"limit": 500}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [item["code"] for item in response.json()["items"]]


# --- routing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/nothing-here", "/v2/administrations", "/nothing-here", "/v1/alerts"]
)
async def test_unknown_route_is_404_problem(api: Api, path: str) -> None:
    assert_problem(await api.client.get(path, headers=ADMIN), 404)


async def test_unknown_route_is_404_without_a_key_too(api: Api) -> None:
    assert_problem(await api.client.get("/v1/nothing-here"), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/administrations"),
        ("PUT", "/v1/keys"),
        ("PATCH", "/v1/operations"),
        ("GET", "/v1/operations/ICEBREAK-II/close"),
        ("POST", "/v1/me"),
        ("POST", "/healthz"),
    ],
)
async def test_wrong_method_is_405_problem(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path, headers={**ADMIN, **JSON}, content=b"{}")
    assert_problem(response, 405)
    assert response.headers.get("allow"), response.headers


async def test_405_allow_header_lists_every_method_of_the_resource(api: Api) -> None:
    response = await api.client.delete("/v1/administrations", headers=ADMIN)
    assert_problem(response, 405)
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed


# --- body size ----------------------------------------------------------------------


async def test_body_of_exactly_256_kib_is_accepted(api: Api) -> None:
    response = await api.client.post(
        "/v1/administrations",
        content=padded_administration("AT-LIMIT", MAX_BODY),
        headers={**ADMIN, **JSON},
    )
    assert response.status_code == 201, response.text
    assert await administration_codes(api) == ["AT-LIMIT"]


async def test_body_over_256_kib_with_content_length_is_413(api: Api) -> None:
    body = padded_administration("TOO-BIG", MAX_BODY + 1)
    response = await api.client.post(
        "/v1/administrations",
        content=body,
        headers={**ADMIN, **JSON, "Content-Length": str(len(body))},
    )
    assert_problem(response, 413)
    assert await administration_codes(api) == []


async def test_content_length_over_256_kib_is_413_without_a_key(api: Api) -> None:
    body = padded_administration("TOO-BIG", MAX_BODY + 1)
    response = await api.client.post("/v1/administrations", content=body, headers=JSON)
    assert_problem(response, 413)


async def test_chunked_body_over_256_kib_is_413(api: Api) -> None:
    body = padded_administration("TOO-BIG", 4 * MAX_BODY)
    request = api.client.build_request(
        "POST", "/v1/administrations", content=in_chunks(body), headers={**ADMIN, **JSON}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await api.client.send(request)
    assert_problem(response, 413)
    assert await administration_codes(api) == []


async def test_chunked_body_under_256_kib_is_accepted(api: Api) -> None:
    body = padded_administration("CHUNKED", MAX_BODY - 1)
    response = await api.client.post(
        "/v1/administrations", content=in_chunks(body), headers={**ADMIN, **JSON}
    )
    assert response.status_code == 201, response.text
    assert await administration_codes(api) == ["CHUNKED"]


async def test_alert_body_over_256_kib_is_413_and_stores_nothing(api: Api) -> None:
    keys = await api.ice_break()
    body = seizure(narrative="x" * (MAX_BODY + 1))
    response = await api.client.post(
        "/v1/operations/ICEBREAK-II/alerts", json=body, headers=keys["KR-KCS"]
    )
    assert_problem(response, 413)
    listed = await api.client.get("/v1/operations/ICEBREAK-II/alerts", headers=keys["KR-KCS"])
    assert listed.json()["items"] == []


# --- content type -------------------------------------------------------------------

VALID = json.dumps({"code": "KR-KCS", "name": "Korea Customs Service", "territory": "KR"})


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "text/json",
        None,
    ],
)
async def test_body_that_is_not_declared_json_is_415(api: Api, content_type: str | None) -> None:
    headers = dict(ADMIN)
    if content_type is not None:
        headers["Content-Type"] = content_type
    request = api.client.build_request(
        "POST", "/v1/administrations", content=VALID.encode(), headers=headers
    )
    if content_type is None:
        assert "content-type" not in request.headers
    response = await api.client.send(request)
    assert_problem(response, 415)
    assert await administration_codes(api) == []


async def test_form_encoded_body_is_415(api: Api) -> None:
    response = await api.client.post(
        "/v1/administrations",
        data={"code": "KR-KCS", "name": "Korea", "territory": "KR"},
        headers=ADMIN,
    )
    assert_problem(response, 415)
    assert await administration_codes(api) == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_content_types_are_accepted(api: Api, content_type: str) -> None:
    response = await api.client.post(
        "/v1/administrations",
        content=VALID.encode(),
        headers={**ADMIN, "Content-Type": content_type},
    )
    assert response.status_code == 201, response.text


# --- malformed JSON -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"code": ',
        b'{"code": "KR-KCS",}',
        b"{'code': 'KR-KCS'}",
        b"\xff\xfe{}",
        b'{"code": "KR-KCS" "name": "x"}',
        b"not json at all",
    ],
)
async def test_invalid_json_is_422_problem_with_errors(api: Api, body: bytes) -> None:
    response = await api.client.post("/v1/administrations", content=body, headers={**ADMIN, **JSON})
    assert_problem(response, 422)
    assert await administration_codes(api) == []


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"code": ' + b"[" * 100_000,
        b'{"code": "KR-KCS", "name": '
        + b'{"a": ' * 30_000
        + b"1"
        + b"}" * 30_000
        + b', "territory": "KR"}',
    ],
    ids=["open arrays", "closed arrays", "arrays in a field", "objects in a field"],
)
async def test_deeply_nested_json_is_a_client_error(api: Api, body: bytes) -> None:
    assert len(body) <= MAX_BODY
    response = await api.client.post("/v1/administrations", content=body, headers={**ADMIN, **JSON})
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert_problem(response, response.status_code)
    assert await administration_codes(api) == []


async def test_deeply_nested_alert_is_a_client_error(api: Api) -> None:
    keys = await api.ice_break()
    body = b'{"kind": "seizure", "items": ' + b"[" * 100_000
    response = await api.client.post(
        "/v1/operations/ICEBREAK-II/alerts", content=body, headers={**keys["KR-KCS"], **JSON}
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert_problem(response, response.status_code)


@pytest.mark.parametrize("body", ["[]", f"[{VALID}]", "null", '"KR-KCS"', "42", "true", ""])
async def test_body_that_is_not_a_json_object_is_422(api: Api, body: str) -> None:
    response = await api.client.post(
        "/v1/administrations", content=body.encode(), headers={**ADMIN, **JSON}
    )
    assert_problem(response, 422)
    assert await administration_codes(api) == []


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_numbers_are_422(api: Api, value: str) -> None:
    keys = await api.ice_break()
    body = json.dumps(seizure()).replace("2.35", value).encode()
    assert value.encode() in body
    response = await api.client.post(
        "/v1/operations/ICEBREAK-II/alerts", content=body, headers={**keys["KR-KCS"], **JSON}
    )
    assert_problem(response, 422)


# --- unknown fields -----------------------------------------------------------------


async def admin_world(api: Api) -> None:
    for code, territory in (("RILO-AP", "KR"), ("KR-KCS", "KR"), ("JP-CUS", "JP")):
        await api.administration(code, territory)
    await api.operation("ICEBREAK-II", coordinator="RILO-AP", participants=["KR-KCS"])


@pytest.mark.parametrize(
    ("path", "body", "unknown"),
    [
        (
            "/v1/administrations",
            {"code": "MO-CUS", "name": "Macao", "territory": "MO", "country": "MO"},
            "country",
        ),
        (
            "/v1/operations",
            {
                "code": "STORM-III",
                "name": "Storm",
                "coordinator": "RILO-AP",
                "participants": [],
                "starts_at": "2020-06-15T00:00:00Z",
                "ends_at": "2020-07-19T23:59:59Z",
                "status": "closed",
            },
            "status",
        ),
        (
            "/v1/operations/ICEBREAK-II/participants",
            {"administration": "JP-CUS", "role": "observer"},
            "role",
        ),
        (
            "/v1/keys",
            {"administration": "KR-KCS", "role": "member", "label": "x", "scopes": ["all"]},
            "scopes",
        ),
    ],
    ids=["administration", "operation", "participant", "key"],
)
async def test_unknown_fields_are_422_naming_the_field(
    api: Api, path: str, body: dict[str, Any], unknown: str
) -> None:
    await admin_world(api)
    response = await api.client.post(path, json=body, headers=ADMIN)
    problem = assert_problem(response, 422)
    assert any(unknown in error["loc"] for error in problem["errors"]), problem
    assert "MO-CUS" not in await administration_codes(api)
    operation = (await api.client.get("/v1/operations/ICEBREAK-II", headers=ADMIN)).json()
    assert operation["participants"] == ["KR-KCS"]
    assert [
        op["code"] for op in (await api.client.get("/v1/operations", headers=ADMIN)).json()["items"]
    ] == ["ICEBREAK-II"]


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"reporter": "KR-KCS"}, "reporter"),
        ({"location": {"territory": "KR", "city": "Incheon"}}, "city"),
        (
            {"items": [{"commodity": "heroin", "quantity": 1, "unit": "kg", "purity": 0.9}]},
            "purity",
        ),
        ({"offenders": {"count": 1, "nationalities": ["TH"], "names": ["A"]}}, "names"),
    ],
)
async def test_unknown_alert_fields_are_422(api: Api, overrides: dict[str, Any], loc: str) -> None:
    keys = await api.ice_break()
    response = await api.client.post(
        "/v1/operations/ICEBREAK-II/alerts", json=seizure(**overrides), headers=keys["KR-KCS"]
    )
    problem = assert_problem(response, 422)
    assert any(loc in error["loc"] for error in problem["errors"]), problem
    listed = await api.client.get("/v1/operations/ICEBREAK-II/alerts", headers=keys["KR-KCS"])
    assert listed.json()["items"] == []


# --- headers on every response ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "authorized", "status"),
    [
        ("GET", "/healthz", False, 200),
        ("GET", "/v1/me", True, 200),
        ("GET", "/v1/me", False, 401),
        ("GET", "/v1/nothing-here", True, 404),
        ("POST", "/v1/administrations", True, 422),
    ],
)
async def test_every_response_carries_a_request_id(
    api: Api, method: str, path: str, authorized: bool, status: int
) -> None:
    headers = {**ADMIN, **JSON} if authorized else {}
    first = await api.client.request(
        method, path, headers=headers, content=b"{}" if method == "POST" else None
    )
    second = await api.client.request(
        method, path, headers=headers, content=b"{}" if method == "POST" else None
    )
    assert first.status_code == second.status_code == status
    assert first.headers["x-request-id"] and second.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_refused_body_responses_carry_a_request_id(api: Api) -> None:
    too_big = await api.client.post(
        "/v1/administrations",
        content=padded_administration("TOO-BIG", MAX_BODY + 1),
        headers={**ADMIN, **JSON},
    )
    wrong_type = await api.client.post("/v1/administrations", content=VALID.encode(), headers=ADMIN)
    assert (too_big.status_code, wrong_type.status_code) == (413, 415)
    assert too_big.headers["x-request-id"] and wrong_type.headers["x-request-id"]


async def test_a_well_formed_client_request_id_is_echoed(api: Api) -> None:
    response = await api.client.get(
        "/v1/me", headers={**ADMIN, "X-Request-ID": "kcs-2020-0617.abc_1"}
    )
    assert response.headers["x-request-id"] == "kcs-2020-0617.abc_1"


@pytest.mark.parametrize(
    ("method", "path", "authorized", "status"),
    [
        ("GET", "/v1/me", True, 200),
        ("GET", "/v1/keys", True, 200),
        ("POST", "/v1/keys", True, 201),
        ("GET", "/v1/me", False, 401),
        ("GET", "/v1/nothing-here", True, 404),
        ("POST", "/v1/administrations", True, 422),
    ],
)
async def test_v1_responses_are_not_cached(
    api: Api, method: str, path: str, authorized: bool, status: int
) -> None:
    body = {"role": "admin", "label": "another"} if path == "/v1/keys" else {}
    response = await api.client.request(
        method, path, headers=ADMIN if authorized else {}, json=body if method == "POST" else None
    )
    assert response.status_code == status, response.text
    assert "no-store" in response.headers["cache-control"]


async def test_oversized_v1_refusal_is_not_cached(api: Api) -> None:
    response = await api.client.post(
        "/v1/administrations",
        content=padded_administration("TOO-BIG", MAX_BODY + 1),
        headers={**ADMIN, **JSON},
    )
    assert response.status_code == 413
    assert "no-store" in response.headers["cache-control"]


# --- rate limits --------------------------------------------------------------------


async def limited_app(database_url: str, rate_limit: float) -> FastAPI:
    return create_app(settings_for(database_url, rate_limit=rate_limit))


async def burst(
    client: httpx.AsyncClient, headers: dict[str, str], count: int
) -> list[httpx.Response]:
    return [await client.get("/v1/me", headers=headers) for _ in range(count)]


async def test_key_over_its_rate_gets_429_with_retry_after(api: Api, database_url: str) -> None:
    await api.administration("KR-KCS")
    member = await api.key("KR-KCS")
    app = await limited_app(database_url, rate_limit=2)
    async with app.router.lifespan_context(app), client_for(app) as client:
        started = time.monotonic()
        responses = await asyncio.gather(*(client.get("/v1/me", headers=member) for _ in range(12)))
        elapsed = time.monotonic() - started
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 429}, statuses
    # a burst of twice the rate passes at once; beyond it, only what the rate refills meanwhile
    assert 4 <= statuses.count(200) <= 4 + math.ceil(2 * elapsed), (statuses, elapsed)
    for limited in (r for r in responses if r.status_code == 429):
        assert_problem(limited, 429)
        assert limited.headers["retry-after"].isdigit()
        assert 1 <= int(limited.headers["retry-after"]) <= 2


async def test_the_first_burst_of_twice_the_rate_passes(api: Api, database_url: str) -> None:
    await api.administration("KR-KCS")
    member = await api.key("KR-KCS")
    app = await limited_app(database_url, rate_limit=2)
    async with app.router.lifespan_context(app), client_for(app) as client:
        assert [r.status_code for r in await burst(client, member, 4)] == [200, 200, 200, 200]


async def test_rate_limit_of_one_key_leaves_other_keys_alone(api: Api, database_url: str) -> None:
    await api.administration("KR-KCS")
    member = await api.key("KR-KCS")
    other = await api.key("KR-KCS", label="another system")
    app = await limited_app(database_url, rate_limit=2)
    async with app.router.lifespan_context(app), client_for(app) as client:
        limited = await asyncio.gather(*(client.get("/v1/me", headers=member) for _ in range(12)))
        assert 429 in [r.status_code for r in limited]
        assert [r.status_code for r in await burst(client, other, 4)] == [200, 200, 200, 200]
        assert (await client.get("/v1/me", headers=ADMIN)).status_code == 200


async def test_rate_limited_key_may_go_on_after_retry_after(api: Api, database_url: str) -> None:
    await api.administration("KR-KCS")
    member = await api.key("KR-KCS")
    app = await limited_app(database_url, rate_limit=2)
    async with app.router.lifespan_context(app), client_for(app) as client:
        responses = await asyncio.gather(*(client.get("/v1/me", headers=member) for _ in range(12)))
        limited = next(r for r in responses if r.status_code == 429)
        await asyncio.sleep(int(limited.headers["retry-after"]))
        assert (await client.get("/v1/me", headers=member)).status_code == 200


async def test_rate_limit_zero_turns_the_limit_off(api: Api, database_url: str) -> None:
    await api.administration("KR-KCS")
    member = await api.key("KR-KCS")
    app = await limited_app(database_url, rate_limit=0)
    async with app.router.lifespan_context(app), client_for(app) as client:
        responses = await burst(client, member, 30)
        assert {r.status_code for r in responses} == {200}
