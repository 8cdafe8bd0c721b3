"""Administrations, operations, participants and closing (API.md sections 1 and 4)."""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api import ADMIN, Api, assert_problem, seizure

UTC_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def lenient_client(app: FastAPI) -> httpx.AsyncClient:
    """A client that receives the app's 500 answer instead of the exception behind it."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://relay.test")


def utc(value: str) -> datetime:
    """A timestamp the server sent: RFC 3339, in UTC with a ``Z`` suffix."""
    assert UTC_STAMP.match(value), value
    return datetime.fromisoformat(value)


async def administration_codes(api: Api) -> list[str]:
    response = await api.client.get("/v1/administrations", params={"limit": 500}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [item["code"] for item in response.json()["items"]]


async def operations_seen(api: Api, headers: dict[str, str]) -> list[str]:
    response = await api.client.get("/v1/operations", params={"limit": 500}, headers=headers)
    assert response.status_code == 200, response.text
    return [item["code"] for item in response.json()["items"]]


def operation_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "ICEBREAK-II",
        "name": "Operation Ice Break II",
        "coordinator": "RILO-AP",
        "participants": ["KR-KCS", "HK-CED"],
        "starts_at": "2020-06-15T00:00:00Z",
        "ends_at": "2020-07-19T23:59:59Z",
    }
    body.update(overrides)
    return body


async def three_administrations(api: Api) -> None:
    for code, territory in (("RILO-AP", "KR"), ("KR-KCS", "KR"), ("HK-CED", "HK")):
        await api.administration(code, territory)


# --- administrations ----------------------------------------------------------------


async def test_create_administration_is_201_with_the_stored_administration(api: Api) -> None:
    response = await api.client.post(
        "/v1/administrations",
        json={"code": "KR-KCS", "name": "Korea Customs Service", "territory": "KR"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body == {
        "code": "KR-KCS",
        "name": "Korea Customs Service",
        "territory": "KR",
        "created_at": body["created_at"],
    }
    assert abs((utc(body["created_at"]) - datetime.now(UTC)).total_seconds()) < 60
    assert await administration_codes(api) == ["KR-KCS"]


async def test_duplicate_administration_code_is_409(api: Api) -> None:
    await api.administration("KR-KCS", "KR", name="Korea Customs Service")
    response = await api.client.post(
        "/v1/administrations",
        json={"code": "KR-KCS", "name": "Someone else", "territory": "JP"},
        headers=ADMIN,
    )
    assert_problem(response, 409)
    listed = (await api.client.get("/v1/administrations", headers=ADMIN)).json()["items"]
    assert [(a["code"], a["name"], a["territory"]) for a in listed] == [
        ("KR-KCS", "Korea Customs Service", "KR")
    ]


async def test_concurrent_creations_of_one_code_give_one_201_and_the_rest_409(api: Api) -> None:
    responses = await asyncio.gather(
        *(
            api.client.post(
                "/v1/administrations",
                json={"code": "KR-KCS", "name": f"Try {n}", "territory": "KR"},
                headers=ADMIN,
            )
            for n in range(6)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409, 409]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409)
    assert await administration_codes(api) == ["KR-KCS"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, 42, None])
async def test_administration_name_must_be_text_of_1_to_200_characters(
    api: Api, name: object
) -> None:
    response = await api.client.post(
        "/v1/administrations",
        json={"code": "KR-KCS", "name": name, "territory": "KR"},
        headers=ADMIN,
    )
    assert_problem(response, 422)
    assert await administration_codes(api) == []


async def test_several_administrations_may_share_one_territory(api: Api) -> None:
    for code in ("RILO-AP", "KR-KCS", "KR-MFDS"):
        response = await api.client.post(
            "/v1/administrations",
            json={"code": code, "name": code, "territory": "KR"},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
    listed = (await api.client.get("/v1/administrations", headers=ADMIN)).json()["items"]
    assert sorted((a["code"], a["territory"]) for a in listed) == [
        ("KR-KCS", "KR"),
        ("KR-MFDS", "KR"),
        ("RILO-AP", "KR"),
    ]


@pytest.mark.parametrize(
    "code",
    [
        "kr-kcs",  # lowercase
        "Kr-KCS",  # mixed case
        "K",  # too short
        "",  # empty
        "A" * 33,  # too long
        "-KRKCS",  # leading dash
        "KR KCS",  # space
        "KR_KCS",  # underscore
        "KR-KCS\n",  # trailing newline
        12,  # not a string
        ["KR-KCS"],  # not a string
        None,
    ],
)
async def test_malformed_administration_code_is_422_and_stores_nothing(
    api: Api, code: object
) -> None:
    await api.administration("HK-CED", "HK")
    response = await api.client.post(
        "/v1/administrations",
        json={"code": code, "name": "Customs", "territory": "KR"},
        headers=ADMIN,
    )
    body = assert_problem(response, 422)
    assert any("code" in error["loc"] for error in body["errors"]), body
    assert await administration_codes(api) == ["HK-CED"]


async def test_longest_and_shortest_administration_codes_are_accepted(api: Api) -> None:
    for code in ("KR", "9" + "A-" * 15 + "Z"):
        response = await api.client.post(
            "/v1/administrations",
            json={"code": code, "name": "Customs", "territory": "KR"},
            headers=ADMIN,
        )
        assert response.status_code == 201, (code, response.text)
    assert sorted(await administration_codes(api)) == sorted(["KR", "9" + "A-" * 15 + "Z"])


@pytest.mark.parametrize("territory", ["XX", "kr", "KOR", "K", "", 12, None, "ZZ"])
async def test_unknown_territory_is_422_and_stores_nothing(api: Api, territory: object) -> None:
    await api.administration("HK-CED", "HK")
    response = await api.client.post(
        "/v1/administrations",
        json={"code": "KR-KCS", "name": "Customs", "territory": territory},
        headers=ADMIN,
    )
    body = assert_problem(response, 422)
    assert any("territory" in error["loc"] for error in body["errors"]), body
    assert await administration_codes(api) == ["HK-CED"]


@pytest.mark.parametrize("missing", ["code", "name", "territory"])
async def test_administration_without_a_required_field_is_422(api: Api, missing: str) -> None:
    body = {"code": "KR-KCS", "name": "Korea Customs Service", "territory": "KR"}
    del body[missing]
    response = await api.client.post("/v1/administrations", json=body, headers=ADMIN)
    problem = assert_problem(response, 422)
    assert any(missing in error["loc"] for error in problem["errors"]), problem
    assert await administration_codes(api) == []


async def test_administrations_list_pages_with_limit_and_cursor(api: Api) -> None:
    codes = ["AA-01", "BB-02", "CC-03", "DD-04", "EE-05"]
    for code in reversed(codes):
        await api.administration(code)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        response = await api.client.get("/v1/administrations", params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen += [item["code"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor
    assert pages == 3
    assert seen == codes


async def test_administrations_list_defaults_to_every_administration_without_a_cursor(
    api: Api,
) -> None:
    for code in ("AA-01", "BB-02", "CC-03"):
        await api.administration(code)
    response = await api.client.get("/v1/administrations", headers=ADMIN)
    assert response.status_code == 200
    assert [item["code"] for item in response.json()["items"]] == ["AA-01", "BB-02", "CC-03"]
    assert response.json()["next_cursor"] is None


async def test_limit_that_fills_the_last_page_exactly_has_no_next_cursor(api: Api) -> None:
    for code in ("AA-01", "BB-02"):
        await api.administration(code)
    first = (await api.client.get("/v1/administrations", params={"limit": 1}, headers=ADMIN)).json()
    assert [i["code"] for i in first["items"]] == ["AA-01"]
    second = (
        await api.client.get(
            "/v1/administrations",
            params={"limit": 1, "cursor": first["next_cursor"]},
            headers=ADMIN,
        )
    ).json()
    assert [i["code"] for i in second["items"]] == ["BB-02"]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "1.5", ""])
async def test_list_limit_out_of_range_is_422_not_clamped(api: Api, limit: str) -> None:
    await api.administration("KR-KCS")
    response = await api.client.get("/v1/administrations", params={"limit": limit}, headers=ADMIN)
    body = assert_problem(response, 422)
    assert any("limit" in error["loc"] for error in body["errors"]), body


@pytest.mark.parametrize("limit", ["1", "500"])
async def test_list_limit_bounds_are_accepted(api: Api, limit: str) -> None:
    await api.administration("KR-KCS")
    response = await api.client.get("/v1/administrations", params={"limit": limit}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert [item["code"] for item in response.json()["items"]] == ["KR-KCS"]


@pytest.mark.parametrize("cursor", ["not a cursor", "e30", "W10", "%%%%", "x" * 2001])
async def test_cursor_the_server_did_not_issue_is_422(api: Api, cursor: str) -> None:
    await api.administration("KR-KCS")
    response = await api.client.get("/v1/administrations", params={"cursor": cursor}, headers=ADMIN)
    body = assert_problem(response, 422)
    assert any("cursor" in error["loc"] for error in body["errors"]), body


@pytest.mark.parametrize("path", ["/v1/administrations", "/v1/operations"])
async def test_forged_cursor_holding_nul_is_422(api: Api, app: FastAPI, path: str) -> None:
    await api.administration("KR-KCS")
    forged = base64.urlsafe_b64encode(b'{"code": "\\u0000"}').decode().rstrip("=")
    async with lenient_client(app) as client:
        response = await client.get(path, params={"cursor": forged}, headers=ADMIN)
    body = assert_problem(response, 422)
    assert any("cursor" in error["loc"] for error in body["errors"]), body


async def test_cursor_of_another_list_is_422(api: Api) -> None:
    await api.administration("KR-KCS")
    for n in range(2):
        await api.key("KR-KCS", label=f"k{n}")
    keys_page = (await api.client.get("/v1/keys", params={"limit": 1}, headers=ADMIN)).json()
    response = await api.client.get(
        "/v1/administrations", params={"cursor": keys_page["next_cursor"]}, headers=ADMIN
    )
    assert_problem(response, 422)


# --- operations ---------------------------------------------------------------------


async def test_create_operation_is_201_and_the_coordinator_need_not_participate(api: Api) -> None:
    await three_administrations(api)
    response = await api.client.post(
        "/v1/operations",
        json=operation_body(description="Joint operation on methamphetamine by mail"),
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert {k: v for k, v in body.items() if not k.endswith("_at")} == {
        "code": "ICEBREAK-II",
        "name": "Operation Ice Break II",
        "description": "Joint operation on methamphetamine by mail",
        "coordinator": "RILO-AP",
        "participants": ["KR-KCS", "HK-CED"],
        "status": "open",
    }
    assert utc(body["starts_at"]) == datetime(2020, 6, 15, tzinfo=UTC)
    assert utc(body["ends_at"]) == datetime(2020, 7, 19, 23, 59, 59, tzinfo=UTC)
    assert body["closed_at"] is None
    utc(body["created_at"])
    fetched = await api.client.get("/v1/operations/ICEBREAK-II", headers=ADMIN)
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_operation_timestamps_with_an_offset_are_answered_in_utc(api: Api) -> None:
    await three_administrations(api)
    response = await api.client.post(
        "/v1/operations",
        json=operation_body(
            starts_at="2020-06-15T09:00:00+09:00", ends_at="2020-07-19T18:00:00-05:30"
        ),
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    assert utc(response.json()["starts_at"]) == datetime(2020, 6, 15, 0, 0, tzinfo=UTC)
    assert utc(response.json()["ends_at"]) == datetime(2020, 7, 19, 23, 30, tzinfo=UTC)


async def test_operation_period_restricts_nothing_and_may_lie_in_the_past(api: Api) -> None:
    await three_administrations(api)
    member = await api.key("KR-KCS")
    await api.operation("OLD-OP", coordinator="RILO-AP", participants=["KR-KCS"])
    stored = await api.report(member, "OLD-OP", seizure(occurred_at="2019-01-01T00:00:00Z"))
    assert stored["operation"] == "OLD-OP"


@pytest.mark.parametrize(
    ("field", "value"),
    [("coordinator", "JP-CUS"), ("participants", ["KR-KCS", "JP-CUS"])],
)
async def test_operation_naming_an_unknown_administration_is_422(
    api: Api, field: str, value: object
) -> None:
    await three_administrations(api)
    response = await api.client.post(
        "/v1/operations", json=operation_body(**{field: value}), headers=ADMIN
    )
    body = assert_problem(response, 422)
    assert any(field in error["loc"] for error in body["errors"]), body
    assert "JP-CUS" not in await administration_codes(api)
    assert await operations_seen(api, ADMIN) == []


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        ("2020-07-19T00:00:00Z", "2020-06-15T00:00:00Z"),  # ends before it starts
        ("2020-06-15T00:00:00", "2020-07-19T23:59:59Z"),  # naive start
        ("2020-06-15T00:00:00Z", "2020-07-19T23:59:59"),  # naive end
        ("2020-06-15", "2020-07-19"),  # dates, no time, no offset
        (1592179200, "2020-07-19T23:59:59Z"),  # a number is not a timestamp
        ("2020-06-15T00:00:00Z", 1595203199.0),
        (None, "2020-07-19T23:59:59Z"),
        ("mid-June", "2020-07-19T23:59:59Z"),
        ("2020-06-31T00:00:00Z", "2020-07-19T23:59:59Z"),  # no such day
    ],
)
async def test_operation_with_an_invalid_period_is_422_and_stores_nothing(
    api: Api, starts_at: object, ends_at: object
) -> None:
    await three_administrations(api)
    response = await api.client.post(
        "/v1/operations", json=operation_body(starts_at=starts_at, ends_at=ends_at), headers=ADMIN
    )
    assert_problem(response, 422)
    assert await operations_seen(api, ADMIN) == []


async def test_unix_time_in_a_string_is_not_a_timestamp(api: Api) -> None:
    await three_administrations(api)
    response = await api.client.post(
        "/v1/operations", json=operation_body(starts_at="1592179200"), headers=ADMIN
    )
    assert_problem(response, 422)
    assert await operations_seen(api, ADMIN) == []


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        ("0001-01-01T00:00:00+01:00", "2020-07-19T23:59:59Z"),
        ("2020-06-15T00:00:00Z", "9999-12-31T23:59:59-01:00"),
    ],
    ids=["before year 1 in UTC", "after year 9999 in UTC"],
)
async def test_timestamp_outside_the_representable_range_in_utc_is_422(
    api: Api, app: FastAPI, starts_at: str, ends_at: str
) -> None:
    await three_administrations(api)
    async with lenient_client(app) as client:
        response = await client.post(
            "/v1/operations",
            json=operation_body(starts_at=starts_at, ends_at=ends_at),
            headers=ADMIN,
        )
    assert_problem(response, 422)
    assert await operations_seen(api, ADMIN) == []


@pytest.mark.parametrize("code", ["icebreak-ii", "-ICEBREAK", "I", "O" * 33, 7])
async def test_malformed_operation_code_is_422(api: Api, code: object) -> None:
    await three_administrations(api)
    response = await api.client.post(
        "/v1/operations", json=operation_body(code=code), headers=ADMIN
    )
    assert_problem(response, 422)
    assert await operations_seen(api, ADMIN) == []


async def test_duplicate_operation_code_is_409(api: Api) -> None:
    await three_administrations(api)
    await api.operation("ICEBREAK-II", coordinator="RILO-AP", participants=["KR-KCS"])
    response = await api.client.post(
        "/v1/operations", json=operation_body(coordinator="HK-CED", participants=[]), headers=ADMIN
    )
    assert_problem(response, 409)
    stored = (await api.client.get("/v1/operations/ICEBREAK-II", headers=ADMIN)).json()
    assert (stored["coordinator"], stored["participants"]) == ("RILO-AP", ["KR-KCS"])


async def test_concurrent_creations_of_one_operation_give_one_201_and_the_rest_409(
    api: Api,
) -> None:
    await three_administrations(api)
    responses = await asyncio.gather(
        *(api.client.post("/v1/operations", json=operation_body(), headers=ADMIN) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert await operations_seen(api, ADMIN) == ["ICEBREAK-II"]


async def test_admin_lists_and_reads_every_operation(api: Api) -> None:
    await api.ice_break()
    assert await operations_seen(api, ADMIN) == ["ICEBREAK-II", "OTHER-OP"]
    for code in ("ICEBREAK-II", "OTHER-OP"):
        response = await api.client.get(f"/v1/operations/{code}", headers=ADMIN)
        assert response.status_code == 200
        assert response.json()["code"] == code


async def test_operations_list_pages_with_limit_and_cursor(api: Api) -> None:
    await api.ice_break()
    first = (await api.client.get("/v1/operations", params={"limit": 1}, headers=ADMIN)).json()
    assert [op["code"] for op in first["items"]] == ["ICEBREAK-II"]
    second = (
        await api.client.get(
            "/v1/operations", params={"limit": 1, "cursor": first["next_cursor"]}, headers=ADMIN
        )
    ).json()
    assert [op["code"] for op in second["items"]] == ["OTHER-OP"]
    assert second["next_cursor"] is None
    for limit in ("0", "501"):
        assert_problem(
            await api.client.get("/v1/operations", params={"limit": limit}, headers=ADMIN), 422
        )


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("RILO-AP", ["ICEBREAK-II"]),  # coordinates one
        ("KR-KCS", ["ICEBREAK-II", "OTHER-OP"]),  # takes part in both
        ("HK-CED", ["ICEBREAK-II"]),
        ("JP-CUS", ["OTHER-OP"]),  # coordinates the other
        ("RILO-AP/analyst", ["ICEBREAK-II"]),
        ("KR-KCS/analyst", ["ICEBREAK-II", "OTHER-OP"]),
        ("JP-CUS/analyst", ["OTHER-OP"]),
    ],
)
async def test_members_and_analysts_list_only_operations_they_take_part_in(
    api: Api, who: str, expected: list[str]
) -> None:
    keys = await api.ice_break()
    assert await operations_seen(api, keys[who]) == expected
    for code in expected:
        response = await api.client.get(f"/v1/operations/{code}", headers=keys[who])
        assert response.status_code == 200
        assert response.json()["code"] == code


async def test_an_administration_in_no_operation_lists_none(api: Api) -> None:
    await api.ice_break()
    await api.administration("MO-CUS", "MO")
    assert await operations_seen(api, await api.key("MO-CUS")) == []


@pytest.mark.parametrize(
    ("who", "hidden"), [("HK-CED", "OTHER-OP"), ("JP-CUS/analyst", "ICEBREAK-II")]
)
async def test_operation_the_caller_takes_no_part_in_is_404_like_a_missing_one(
    api: Api, who: str, hidden: str
) -> None:
    keys = await api.ice_break()
    response = await api.client.get(f"/v1/operations/{hidden}", headers=keys[who])
    absent = await api.client.get("/v1/operations/NO-SUCH-OP", headers=keys[who])
    hidden_problem = assert_problem(response, 404)
    absent_problem = assert_problem(absent, 404)
    assert {k: v for k, v in hidden_problem.items() if k != "detail"} == {
        k: v for k, v in absent_problem.items() if k != "detail"
    }
    assert hidden_problem["detail"].replace(hidden, "?") == absent_problem["detail"].replace(
        "NO-SUCH-OP", "?"
    )


async def test_hidden_operation_is_404_for_its_alerts_too(api: Api) -> None:
    keys = await api.ice_break()
    listed = await api.client.get("/v1/operations/OTHER-OP/alerts", headers=keys["HK-CED"])
    assert_problem(listed, 404)
    posted = await api.client.post(
        "/v1/operations/OTHER-OP/alerts", json=seizure(), headers=keys["HK-CED"]
    )
    assert_problem(posted, 404)


async def test_missing_operation_is_404_for_the_admin(api: Api) -> None:
    response = await api.client.get("/v1/operations/NO-SUCH-OP", headers=ADMIN)
    assert_problem(response, 404)


# --- participants -------------------------------------------------------------------


async def test_adding_a_participant_is_201_with_the_operation(api: Api) -> None:
    keys = await api.ice_break()
    response = await api.client.post(
        "/v1/operations/ICEBREAK-II/participants", json={"administration": "JP-CUS"}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    assert response.json()["code"] == "ICEBREAK-II"
    assert sorted(response.json()["participants"]) == ["HK-CED", "JP-CUS", "KR-KCS", "TH-CUS"]
    assert await operations_seen(api, keys["JP-CUS"]) == ["ICEBREAK-II", "OTHER-OP"]
    await api.report(keys["JP-CUS"], "ICEBREAK-II", seizure())


async def test_adding_a_participant_twice_is_409(api: Api) -> None:
    await api.ice_break()
    response = await api.client.post(
        "/v1/operations/ICEBREAK-II/participants", json={"administration": "KR-KCS"}, headers=ADMIN
    )
    assert_problem(response, 409)
    stored = (await api.client.get("/v1/operations/ICEBREAK-II", headers=ADMIN)).json()
    assert sorted(stored["participants"]) == ["HK-CED", "KR-KCS", "TH-CUS"]


@pytest.mark.parametrize("administration", ["MO-CUS", "mo-cus", 5])
async def test_adding_an_unknown_administration_is_422(api: Api, administration: object) -> None:
    await api.ice_break()
    response = await api.client.post(
        "/v1/operations/ICEBREAK-II/participants",
        json={"administration": administration},
        headers=ADMIN,
    )
    assert_problem(response, 422)
    stored = (await api.client.get("/v1/operations/ICEBREAK-II", headers=ADMIN)).json()
    assert sorted(stored["participants"]) == ["HK-CED", "KR-KCS", "TH-CUS"]


async def test_adding_a_participant_to_a_missing_operation_is_404(api: Api) -> None:
    await api.ice_break()
    response = await api.client.post(
        "/v1/operations/NO-SUCH-OP/participants", json={"administration": "JP-CUS"}, headers=ADMIN
    )
    assert_problem(response, 404)


async def test_removing_a_participant_is_204_and_it_may_report_no_more(api: Api) -> None:
    keys = await api.ice_break()
    response = await api.client.delete(
        "/v1/operations/ICEBREAK-II/participants/HK-CED", headers=ADMIN
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    stored = (await api.client.get("/v1/operations/ICEBREAK-II", headers=ADMIN)).json()
    assert sorted(stored["participants"]) == ["KR-KCS", "TH-CUS"]
    refused = await api.client.post(
        "/v1/operations/ICEBREAK-II/alerts", json=seizure(), headers=keys["HK-CED"]
    )
    assert refused.status_code in (403, 404), refused.text
    assert_problem(refused, refused.status_code)


async def test_removed_participant_may_be_added_again(api: Api) -> None:
    keys = await api.ice_break()
    assert (
        await api.client.delete("/v1/operations/ICEBREAK-II/participants/HK-CED", headers=ADMIN)
    ).status_code == 204
    response = await api.client.post(
        "/v1/operations/ICEBREAK-II/participants", json={"administration": "HK-CED"}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    assert sorted(response.json()["participants"]) == ["HK-CED", "KR-KCS", "TH-CUS"]
    await api.report(keys["HK-CED"], "ICEBREAK-II", seizure())


@pytest.mark.parametrize(
    "path",
    [
        "/v1/operations/ICEBREAK-II/participants/JP-CUS",  # exists, takes no part
        "/v1/operations/ICEBREAK-II/participants/RILO-AP",  # the coordinator is no participant
        "/v1/operations/ICEBREAK-II/participants/MO-CUS",  # no such administration
        "/v1/operations/NO-SUCH-OP/participants/KR-KCS",  # no such operation
    ],
)
async def test_removing_a_non_participant_is_404(api: Api, path: str) -> None:
    await api.ice_break()
    assert_problem(await api.client.delete(path, headers=ADMIN), 404)
    stored = (await api.client.get("/v1/operations/ICEBREAK-II", headers=ADMIN)).json()
    assert sorted(stored["participants"]) == ["HK-CED", "KR-KCS", "TH-CUS"]


async def test_removing_a_participant_twice_is_404(api: Api) -> None:
    await api.ice_break()
    path = "/v1/operations/ICEBREAK-II/participants/TH-CUS"
    assert (await api.client.delete(path, headers=ADMIN)).status_code == 204
    assert_problem(await api.client.delete(path, headers=ADMIN), 404)


# --- closing ------------------------------------------------------------------------


async def test_closing_an_operation_is_200_with_status_closed(api: Api) -> None:
    await api.ice_break()
    response = await api.client.post("/v1/operations/ICEBREAK-II/close", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == "ICEBREAK-II"
    assert body["status"] == "closed"
    assert abs((utc(body["closed_at"]) - datetime.now(UTC)).total_seconds()) < 60
    stored = (await api.client.get("/v1/operations/ICEBREAK-II", headers=ADMIN)).json()
    assert (stored["status"], stored["closed_at"]) == ("closed", body["closed_at"])
    other = (await api.client.get("/v1/operations/OTHER-OP", headers=ADMIN)).json()
    assert (other["status"], other["closed_at"]) == ("open", None)


async def test_closed_operation_accepts_no_new_alerts(api: Api) -> None:
    keys = await api.ice_break()
    earlier = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    assert (
        await api.client.post("/v1/operations/ICEBREAK-II/close", headers=ADMIN)
    ).status_code == 200
    for who in ("KR-KCS", "RILO-AP"):
        response = await api.client.post(
            "/v1/operations/ICEBREAK-II/alerts", json=seizure(), headers=keys[who]
        )
        assert_problem(response, 409)
    listed = await api.client.get("/v1/operations/ICEBREAK-II/alerts", headers=keys["KR-KCS"])
    assert listed.status_code == 200, listed.text
    assert [alert["id"] for alert in listed.json()["items"]] == [earlier["id"]]


async def test_closed_operation_stays_readable(api: Api) -> None:
    keys = await api.ice_break()
    assert (
        await api.client.post("/v1/operations/ICEBREAK-II/close", headers=ADMIN)
    ).status_code == 200
    assert await operations_seen(api, keys["HK-CED"]) == ["ICEBREAK-II"]
    response = await api.client.get("/v1/operations/ICEBREAK-II", headers=keys["HK-CED"])
    assert response.status_code == 200
    assert response.json()["status"] == "closed"


async def test_closing_a_missing_operation_is_404(api: Api) -> None:
    assert_problem(await api.client.post("/v1/operations/NO-SUCH-OP/close", headers=ADMIN), 404)
