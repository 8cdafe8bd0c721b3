"""The event feed (API.md section 7) and the audit trail (section 9)."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.api import ADMIN, ADMIN_TOKEN, Api, assert_problem, seizure

ALERTS = "/v1/operations/ICEBREAK-II/alerts"
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
Records = list[dict[str, Any]]


async def events(api: Api, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await api.client.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def history(api: Api, keys: dict[str, dict[str, str]]) -> dict[str, Any]:
    """An alert's whole life by KR-KCS, HK-CED and TH-CUS; the responses by step."""
    client, kr = api.client, keys["KR-KCS"]
    created = await api.report(kr, "ICEBREAK-II", seizure())
    url = f"/v1/alerts/{created['id']}"
    amended = await client.patch(url, json={"priority": "urgent"}, headers=kr)
    acked = await client.post(f"{url}/acks", json={"status": "received"}, headers=keys["HK-CED"])
    commented = await client.post(
        f"{url}/comments", json={"body": "Known sender"}, headers=keys["TH-CUS"]
    )
    withdrawn = await client.post(f"{url}/withdraw", json={"reason": "Duplicate"}, headers=kr)
    return {
        "created": created,
        "amended": amended.json(),
        "acked": acked.json(),
        "commented": commented.json(),
        "withdrawn": withdrawn.json(),
    }


# --- the event feed ------------------------------------------------------------------------


async def test_events_tell_an_alerts_life_oldest_first(api: Api) -> None:
    keys = await api.ice_break()
    steps = await history(api, keys)

    page = await events(api, keys["RILO-AP"])

    items = page["items"]
    assert [e["type"] for e in items] == [
        "alert.created",
        "alert.amended",
        "alert.acknowledged",
        "comment.created",
        "alert.withdrawn",
    ]
    seqs = [e["seq"] for e in items]
    assert seqs == sorted(set(seqs))
    assert page["next_since"] == seqs[-1]
    assert all(e["operation"] == "ICEBREAK-II" and UTC_Z.match(e["at"]) for e in items)
    assert items[0]["alert"] == steps["created"]
    assert items[1]["alert"] == steps["amended"]
    assert (items[2]["alert_id"], items[2]["ack"]) == (steps["created"]["id"], steps["acked"])
    assert (items[3]["alert_id"], items[3]["comment"]) == (
        steps["created"]["id"],
        steps["commented"],
    )
    assert items[4]["alert"] == steps["withdrawn"]


async def test_since_returns_only_the_events_after_it(api: Api) -> None:
    keys = await api.ice_break()
    await history(api, keys)
    every = (await events(api, keys["KR-KCS"]))["items"]

    later = await events(api, keys["KR-KCS"], since=every[1]["seq"])

    assert later == {"items": every[2:], "next_since": every[-1]["seq"]}


async def test_an_empty_page_answers_next_since_equal_to_since(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    at_head = await events(api, keys["KR-KCS"], since=alert["seq"])
    far_ahead = await events(api, keys["KR-KCS"], since=10**12)

    assert at_head == {"items": [], "next_since": alert["seq"]}
    assert far_ahead == {"items": [], "next_since": 10**12}


async def test_limit_bounds_a_page_and_next_since_resumes_it(api: Api) -> None:
    keys = await api.ice_break()
    alerts = [
        await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure(summary=f"parcel {n}"))
        for n in range(3)
    ]

    first = await events(api, keys["KR-KCS"], limit=2)
    rest = await events(api, keys["KR-KCS"], since=first["next_since"], limit=2)

    assert [e["alert"]["id"] for e in first["items"]] == [a["id"] for a in alerts[:2]]
    assert first["next_since"] == alerts[1]["seq"]
    assert [e["alert"]["id"] for e in rest["items"]] == [alerts[2]["id"]]
    assert rest["next_since"] == alerts[2]["seq"]


async def test_the_operation_filter_keeps_one_operations_events(api: Api) -> None:
    keys = await api.ice_break()
    ice = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    other = await api.report(keys["KR-KCS"], "OTHER-OP", seizure())

    everything = await events(api, keys["KR-KCS"])
    only_other = await events(api, keys["KR-KCS"], operation="OTHER-OP")

    assert [e["alert"]["id"] for e in everything["items"]] == [ice["id"], other["id"]]
    assert [(e["operation"], e["alert"]["id"]) for e in only_other["items"]] == [
        ("OTHER-OP", other["id"])
    ]


async def test_the_operation_filter_is_404_for_an_operation_not_taken_part_in(api: Api) -> None:
    keys = await api.ice_break()

    outsider = await api.client.get(
        "/v1/events", params={"operation": "OTHER-OP"}, headers=keys["HK-CED"]
    )
    missing = await api.client.get(
        "/v1/events", params={"operation": "NO-SUCH-OP"}, headers=keys["HK-CED"]
    )

    assert assert_problem(outsider, 404)["title"] == assert_problem(missing, 404)["title"]


async def test_bad_event_queries_are_422(api: Api) -> None:
    keys = await api.ice_break()

    for params in (
        {"since": -1},
        {"since": "x"},
        {"since": "1.5"},
        {"limit": 0},
        {"limit": 501},
        {"operation": "icebreak-ii"},
        {"foo": 1},
    ):
        assert_problem(
            await api.client.get("/v1/events", params=params, headers=keys["KR-KCS"]), 422
        )


async def test_events_about_an_invisible_alert_never_reach_a_non_recipient(api: Api) -> None:
    keys = await api.ice_break()
    hidden = await api.report(
        keys["KR-KCS"],
        "ICEBREAK-II",
        seizure(audience={"scope": "restricted", "recipients": ["TH-CUS"]}),
    )
    url = f"/v1/alerts/{hidden['id']}"
    await api.client.patch(url, json={"tlp": "RED"}, headers=keys["KR-KCS"])
    await api.client.post(f"{url}/acks", json={"status": "actioning"}, headers=keys["TH-CUS"])
    await api.client.post(f"{url}/withdraw", json={"reason": "Case closed"}, headers=keys["KR-KCS"])
    visible = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    hk = await events(api, keys["HK-CED"])
    th = await events(api, keys["TH-CUS"])
    jp = await events(api, keys["JP-CUS"])

    assert [(e["type"], e["alert"]["id"]) for e in hk["items"]] == [
        ("alert.created", visible["id"])
    ]
    assert hk["next_since"] == visible["seq"]
    assert jp == {"items": [], "next_since": 0}
    assert [e["type"] for e in th["items"]] == [
        "alert.created",
        "alert.amended",
        "alert.acknowledged",
        "alert.withdrawn",
        "alert.created",
    ]


async def test_a_removed_participant_follows_only_its_own_alerts_events(api: Api) -> None:
    keys = await api.ice_break()
    own = await api.report(keys["TH-CUS"], "ICEBREAK-II", seizure())
    others = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    removal = "/v1/operations/ICEBREAK-II/participants/TH-CUS"
    assert (await api.client.delete(removal, headers=ADMIN)).status_code == 204
    acks = f"/v1/alerts/{own['id']}/acks"
    await api.client.post(acks, json={"status": "closed"}, headers=keys["KR-KCS"])

    page = await events(api, keys["TH-CUS"], operation="ICEBREAK-II")

    about = [(e["type"], e.get("alert_id") or e["alert"]["id"]) for e in page["items"]]
    assert about == [
        ("alert.created", own["id"]),
        ("alert.acknowledged", own["id"]),
    ]
    assert others["id"] not in str(page)


# --- the audit trail -----------------------------------------------------------------------


async def audit(
    api: Api, until: Callable[[Records], bool] = lambda _: True, **params: Any
) -> Records:
    """Every audit record matching ``params`` (``from_`` for ``from``), newest first, once
    ``until`` holds for them.

    Reads are audited in the background (flushed about every 0.05 s here), so this polls
    for up to two seconds.
    """
    if "from_" in params:
        params["from"] = params.pop("from_")
    deadline = time.monotonic() + 2
    while True:
        records: Records = []
        cursor = None
        while True:
            query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
            response = await api.client.get("/v1/audit", params=query, headers=ADMIN)
            assert response.status_code == 200, response.text
            records += response.json()["items"]
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break
        if until(records) or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.02)


async def key_id(api: Api, headers: dict[str, str]) -> str:
    return str((await api.client.get("/v1/me", headers=headers)).json()["key_id"])


def actions(records: Records) -> Counter[str]:
    return Counter(record["action"] for record in records)


MEMBER_ACTIONS = Counter(
    ["alert.create", "alert.read", "alert.search", "events.read", "alert.amend", "alert.withdraw"]
)


async def member_activity(api: Api, headers: dict[str, str]) -> str:
    """One of each audited member action; returns the alert's id."""
    client = api.client
    alert = await api.report(headers, "ICEBREAK-II", seizure())
    url = f"/v1/alerts/{alert['id']}"
    assert (await client.get(url, headers=headers)).status_code == 200
    assert (
        await client.get(ALERTS, params={"kind": "seizure"}, headers=headers)
    ).status_code == 200
    assert (await client.get("/v1/events", params={"since": 0}, headers=headers)).status_code == 200
    assert (
        await client.patch(url, json={"priority": "urgent"}, headers=headers)
    ).status_code == 200
    assert (
        await client.post(f"{url}/withdraw", json={"reason": "Duplicate"}, headers=headers)
    ).status_code == 200
    return str(alert["id"])


async def test_every_audited_member_action_is_recorded(api: Api) -> None:
    keys = await api.ice_break()
    kr = await key_id(api, keys["KR-KCS"])
    alert_id = await member_activity(api, keys["KR-KCS"])

    records = await audit(api, lambda r: actions(r) == MEMBER_ACTIONS, key_id=kr)

    assert actions(records) == MEMBER_ACTIONS
    by_action = {r["action"]: r for r in records}
    for record in records:
        assert (record["key_id"], record["administration"]) == (kr, "KR-KCS")
        assert record["operation"] == "ICEBREAK-II" or record["action"] == "events.read"
        assert UTC_Z.match(record["at"])
    for action in ("alert.create", "alert.read", "alert.amend", "alert.withdraw"):
        assert by_action[action]["alert_ids"] == [alert_id], action
    assert by_action["alert.search"]["query"]["kind"] == ["seizure"]
    assert by_action["events.read"]["query"]["since"] == 0


async def test_key_creation_and_revocation_are_recorded(api: Api) -> None:
    await api.administration("KR-KCS")
    admin = await key_id(api, ADMIN)
    created = await api.client.post(
        "/v1/keys", json={"administration": "KR-KCS", "role": "member", "label": "x"}, headers=ADMIN
    )
    new_key = created.json()["id"]
    assert (await api.client.delete(f"/v1/keys/{new_key}", headers=ADMIN)).status_code == 204

    records = await audit(api, key_id=admin)

    assert [(r["action"], r["query"]["key_id"]) for r in records] == [
        ("key.revoke", new_key),
        ("key.create", new_key),
    ]
    assert all(r["administration"] is None for r in records)


async def test_audit_filters_by_administration_and_action(api: Api) -> None:
    keys = await api.ice_break()
    await member_activity(api, keys["KR-KCS"])
    await member_activity(api, keys["HK-CED"])

    hk = await audit(api, lambda r: actions(r) == MEMBER_ACTIONS, administration="HK-CED")
    reads = await audit(api, lambda r: len(r) == 2, action="alert.read")
    creates_by_kr = await audit(api, action="alert.create", administration="KR-KCS")

    assert actions(hk) == MEMBER_ACTIONS
    assert {r["administration"] for r in hk} == {"HK-CED"}
    assert sorted(r["administration"] for r in reads) == ["HK-CED", "KR-KCS"]
    assert {r["action"] for r in reads} == {"alert.read"}
    assert [(r["action"], r["administration"]) for r in creates_by_kr] == [
        ("alert.create", "KR-KCS")
    ]


async def test_audit_filters_by_time_split_the_records_at_the_boundary(api: Api) -> None:
    keys = await api.ice_break()
    await member_activity(api, keys["KR-KCS"])
    every = await audit(api, lambda r: actions(r) >= MEMBER_ACTIONS)
    pivot = next(r for r in every if r["action"] == "alert.create")["at"]

    after = await audit(api, from_=pivot)
    before = await audit(api, to=pivot)

    assert all(r["at"] >= pivot for r in after)
    assert all(r["at"] < pivot for r in before)
    assert sorted(r["id"] for r in after + before) == sorted(r["id"] for r in every)
    assert "alert.create" in actions(after)
    assert await audit(api, from_="2999-01-01T00:00:00Z") == []


async def test_audit_pages_hold_every_record_once(api: Api) -> None:
    await api.ice_break()
    every = await audit(api)
    seen: list[int] = []
    cursor = None

    for _ in range(len(every)):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/v1/audit", params=params, headers=ADMIN)).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert actions(every) == Counter(
        {"key.create": 11}
    )  # the bootstrap admin key and ice_break's ten
    assert seen == [r["id"] for r in every]


async def test_audit_is_for_admins_and_refuses_bad_filters(api: Api) -> None:
    keys = await api.ice_break()

    assert_problem(await api.client.get("/v1/audit", headers=keys["KR-KCS/analyst"]), 403)
    for params in (
        {"from": "2020-06-17T00:00:00"},
        {"to": "yesterday"},
        {"limit": 0},
        {"limit": 501},
        {"cursor": "garbage"},
        {"actor": "KR-KCS"},
        {"administration": "kr-kcs"},
    ):
        assert_problem(await api.client.get("/v1/audit", params=params, headers=ADMIN), 422)


async def test_no_audit_record_holds_a_token_or_a_narrative(api: Api) -> None:
    keys = await api.ice_break()
    narrative = "Informant reports the consignee collects at the Harbour Road depot"
    amended_narrative = "Consignee seen with a second parcel at the depot on Friday"
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure(narrative=narrative))
    url = f"/v1/alerts/{alert['id']}"
    await api.client.get(url, headers=keys["HK-CED"])
    await api.client.patch(url, json={"narrative": amended_narrative}, headers=keys["KR-KCS"])
    await api.client.get(ALERTS, params={"q": "tea"}, headers=keys["TH-CUS"])
    await audit(api, lambda r: {"alert.read", "alert.search", "alert.amend"} <= set(actions(r)))

    raw = (await api.client.get("/v1/audit", params={"limit": 500}, headers=ADMIN)).text

    tokens = [ADMIN_TOKEN] + [h["Authorization"].removeprefix("Bearer ") for h in keys.values()]
    assert all(token not in raw for token in tokens)
    assert narrative not in raw and amended_narrative not in raw
    assert "Harbour" not in raw and "Consignee" not in raw
