"""``Idempotency-Key`` on reporting an alert (API.md section 5): a retry replays the first
answer, a different body is refused, a request in flight is a conflict, and only
successful answers are remembered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.api import ADMIN, Api, assert_problem, seizure

OPERATION = "ICEBREAK-II"
ALERTS = f"/v1/operations/{OPERATION}/alerts"

Keys = dict[str, dict[str, str]]


@pytest.fixture
async def keys(api: Api) -> Keys:
    """RILO-AP coordinates KR-KCS and HK-CED in ICEBREAK-II; KR-KCS also takes part in
    OTHER-OP. Set up concurrently, so that the group commit needs few transactions."""
    await asyncio.gather(
        api.administration("RILO-AP", "KR"),
        api.administration("KR-KCS", "KR"),
        api.administration("HK-CED", "HK"),
    )
    await asyncio.gather(
        api.operation(OPERATION, coordinator="RILO-AP", participants=["KR-KCS", "HK-CED"]),
        api.operation("OTHER-OP", coordinator="HK-CED", participants=["KR-KCS"]),
    )
    names = ("RILO-AP", "KR-KCS", "KR-KCS/analyst", "HK-CED")
    headers = await asyncio.gather(
        *(api.key(n.split("/")[0], "analyst" if "/" in n else "member") for n in names)
    )
    return dict(zip(names, headers, strict=True))


def with_key(headers: dict[str, str], key: str | bytes) -> dict[str, Any]:
    return {**headers, "Idempotency-Key": key}


async def alerts_in(
    api: Api, headers: dict[str, str], operation: str = OPERATION
) -> list[dict[str, Any]]:
    response = await api.client.get(
        f"/v1/operations/{operation}/alerts", params={"limit": 500}, headers=headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def assert_created(response: httpx.Response) -> None:
    """A first answer: 201, not a replay."""
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers


def assert_replay_of(response: httpx.Response, first: httpx.Response) -> None:
    """The first answer again, byte for byte, marked as a replay."""
    assert response.status_code == 201, response.text
    assert response.headers["idempotent-replayed"] == "true"
    assert response.content == first.content
    assert response.headers["location"] == first.headers["location"]


async def test_concurrent_requests_with_one_key_create_one_alert(api: Api, keys: Keys) -> None:
    headers = with_key(keys["KR-KCS"], "burst-0001")
    body = seizure(reference="burst")

    responses = await asyncio.gather(
        *(api.client.post(ALERTS, json=body, headers=headers) for _ in range(20))
    )

    first = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(first) == 1, [
        (r.status_code, r.headers.get("idempotent-replayed")) for r in responses
    ]
    for response in responses:
        if response is first[0]:
            continue
        if response.status_code == 409:
            assert_problem(response, 409)
        else:
            assert_replay_of(response, first[0])
    stored = await alerts_in(api, keys["KR-KCS"])
    assert [a["id"] for a in stored] == [first[0].json()["id"]]


async def test_a_retry_after_success_replays_the_first_answer(api: Api, keys: Keys) -> None:
    headers = with_key(keys["KR-KCS"], "retry-0001")
    first = await api.client.post(ALERTS, json=seizure(), headers=headers)
    assert_created(first)

    retry = await api.client.post(ALERTS, json=seizure(), headers=headers)

    assert_replay_of(retry, first)
    assert len(await alerts_in(api, keys["KR-KCS"])) == 1


async def test_the_same_key_with_another_body_is_refused(api: Api, keys: Keys) -> None:
    headers = with_key(keys["KR-KCS"], "mismatch-0001")
    first = await api.client.post(ALERTS, json=seizure(), headers=headers)
    assert_created(first)

    other = await api.client.post(ALERTS, json=seizure(summary="Another seizure"), headers=headers)

    assert_problem(other, 422)
    assert len(await alerts_in(api, keys["KR-KCS"])) == 1
    assert_replay_of(await api.client.post(ALERTS, json=seizure(), headers=headers), first)


async def test_bodies_equal_as_parsed_json_are_the_same_request(api: Api, keys: Keys) -> None:
    headers = {**with_key(keys["KR-KCS"], "order-0001"), "Content-Type": "application/json"}
    body = seizure()
    first = await api.client.post(ALERTS, content=json.dumps(body), headers=headers)
    assert_created(first)

    def reordered(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: reordered(value[name]) for name in reversed(value)}
        if isinstance(value, list):
            return [reordered(v) for v in value]
        return value

    spelled_otherwise = json.dumps(reordered(body), indent=2, separators=(" ,", " : "))
    assert spelled_otherwise != json.dumps(body)
    retry = await api.client.post(ALERTS, content=spelled_otherwise, headers=headers)

    assert_replay_of(retry, first)
    assert len(await alerts_in(api, keys["KR-KCS"])) == 1


async def test_numbers_and_strings_spelled_otherwise_are_the_same_request(
    api: Api, keys: Keys
) -> None:
    """``2.35`` and ``2.350e0``, ``"I"`` and ``"\\u0049"`` are the same JSON values."""
    headers = {**with_key(keys["KR-KCS"], "spelling-0001"), "Content-Type": "application/json"}
    text = json.dumps(seizure())
    first = await api.client.post(ALERTS, content=text, headers=headers)
    assert_created(first)

    spelled_otherwise = text.replace("2.35,", "2.350e0,").replace('"Incheon', '"\\u0049ncheon')
    assert spelled_otherwise.count("2.350e0") == 1 and "\\u0049ncheon" in spelled_otherwise
    retry = await api.client.post(ALERTS, content=spelled_otherwise, headers=headers)

    assert_replay_of(retry, first)


async def test_an_integer_and_the_same_number_with_a_fraction_are_the_same_request(
    api: Api, keys: Keys
) -> None:
    """JSON has one number type: ``2`` and ``2.0`` parse to equal values."""
    headers = {**with_key(keys["KR-KCS"], "integral-0001"), "Content-Type": "application/json"}
    items = [{"commodity": "heroin", "quantity": 2, "unit": "kg"}]
    text = json.dumps(seizure(items=items))
    first = await api.client.post(ALERTS, content=text, headers=headers)
    assert_created(first)

    retry = await api.client.post(
        ALERTS, content=text.replace('"quantity": 2,', '"quantity": 2.0,'), headers=headers
    )

    assert_replay_of(retry, first)


async def test_keys_are_scoped_to_the_administration(api: Api, keys: Keys) -> None:
    mine = await api.client.post(
        ALERTS, json=seizure(), headers=with_key(keys["KR-KCS"], "shared-0001")
    )
    assert_created(mine)

    theirs = await api.client.post(
        ALERTS, json=seizure(), headers=with_key(keys["HK-CED"], "shared-0001")
    )

    assert_created(theirs)
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["reported_by"] == "HK-CED"
    assert len(await alerts_in(api, keys["RILO-AP"])) == 2


async def test_another_key_of_the_same_administration_replays(api: Api, keys: Keys) -> None:
    """Keys belong to the administration, not to the API key that sent them."""
    first = await api.client.post(
        ALERTS, json=seizure(), headers=with_key(keys["KR-KCS"], "adm-0001")
    )
    assert_created(first)

    retry = await api.client.post(
        ALERTS, json=seizure(), headers=with_key(keys["KR-KCS/analyst"], "adm-0001")
    )

    assert_replay_of(retry, first)


async def test_a_request_refused_by_validation_leaves_its_key_free(api: Api, keys: Keys) -> None:
    headers = with_key(keys["KR-KCS"], "invalid-first-0001")
    refused = await api.client.post(ALERTS, json=seizure(summary=""), headers=headers)
    assert_problem(refused, 422)

    accepted = await api.client.post(ALERTS, json=seizure(), headers=headers)

    assert_created(accepted)
    assert len(await alerts_in(api, keys["KR-KCS"])) == 1


async def test_a_request_to_a_closed_operation_leaves_its_key_free(api: Api, keys: Keys) -> None:
    closed = await api.client.post("/v1/operations/OTHER-OP/close", headers=ADMIN)
    assert closed.status_code == 200, closed.text
    headers = with_key(keys["KR-KCS"], "closed-first-0001")
    refused = await api.client.post(
        "/v1/operations/OTHER-OP/alerts", json=seizure(), headers=headers
    )
    assert_problem(refused, 409)

    accepted = await api.client.post(ALERTS, json=seizure(), headers=headers)

    assert_created(accepted)
    assert len(await alerts_in(api, keys["KR-KCS"])) == 1
    assert await alerts_in(api, keys["KR-KCS"], "OTHER-OP") == []


async def test_a_forbidden_request_leaves_its_key_free(api: Api, keys: Keys) -> None:
    """A notice from a participant is refused (403); the key then serves a valid seizure."""
    headers = with_key(keys["KR-KCS"], "forbidden-first-0001")
    refused = await api.client.post(ALERTS, json=seizure(kind="notice"), headers=headers)
    assert_problem(refused, 403)

    accepted = await api.client.post(ALERTS, json=seizure(), headers=headers)

    assert_created(accepted)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k" * 256, id="256-characters"),
        pytest.param("clé-0001".encode(), id="non-ascii"),
        pytest.param("key\x01one", id="control-character"),
        pytest.param("key\x7fone", id="delete"),
        pytest.param("key\tone", id="tab"),
    ],
)
async def test_an_invalid_key_is_refused(api: Api, keys: Keys, key: str | bytes) -> None:

    response = await api.client.post(ALERTS, json=seizure(), headers=with_key(keys["KR-KCS"], key))

    assert_problem(response, 422)
    assert await alerts_in(api, keys["KR-KCS"]) == []


async def test_a_key_of_255_printable_characters_is_accepted(api: Api, keys: Keys) -> None:
    key = "".join(chr(0x21 + i % 94) for i in range(255))
    headers = with_key(keys["KR-KCS"], key)
    first = await api.client.post(ALERTS, json=seizure(), headers=headers)
    assert_created(first)

    assert_replay_of(await api.client.post(ALERTS, json=seizure(), headers=headers), first)
