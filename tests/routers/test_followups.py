"""Acknowledgements and comments (API.md sections 5 and 7): follow-up outlives withdrawal
and the operation, and obeys the visibility rule."""

from __future__ import annotations

import re
from typing import Any

from tests.api import ADMIN, Api, assert_problem, seizure

UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
MISSING_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


async def ack(
    api: Api, headers: dict[str, str], alert_id: str, status: str, note: str | None = None
) -> Any:
    body: dict[str, Any] = {"status": status}
    if note is not None:
        body["note"] = note
    return await api.client.post(f"/v1/alerts/{alert_id}/acks", json=body, headers=headers)


async def comment(api: Api, headers: dict[str, str], alert_id: str, text: str) -> Any:
    return await api.client.post(
        f"/v1/alerts/{alert_id}/comments", json={"body": text}, headers=headers
    )


async def restricted_to_thailand(api: Api, keys: dict[str, dict[str, str]]) -> dict[str, Any]:
    body = seizure(audience={"scope": "restricted", "recipients": ["TH-CUS"]})
    return await api.report(keys["KR-KCS"], "ICEBREAK-II", body)


# --- acknowledgements --------------------------------------------------------------------


async def test_acknowledging_answers_201_with_the_ack(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    response = await ack(
        api, keys["HK-CED"], alert["id"], "received", note="Passed to the airport team"
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert UTC_Z.match(body.pop("at"))
    assert body == {
        "administration": "HK-CED",
        "status": "received",
        "note": "Passed to the airport team",
        "by": "HK-CED member",
    }


async def test_a_new_ack_supersedes_the_administrations_previous_one(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    await ack(api, keys["HK-CED"], alert["id"], "received")
    await ack(api, keys["TH-CUS"], alert["id"], "no_trace")
    latest = await ack(api, keys["HK-CED/analyst"], alert["id"], "intercepted")

    acks = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["KR-KCS"])).json()[
        "acks"
    ]

    by_administration = {a["administration"]: (a["status"], a["by"]) for a in acks}
    assert len(acks) == 2
    assert by_administration == {
        "HK-CED": ("intercepted", "HK-CED analyst"),
        "TH-CUS": ("no_trace", "TH-CUS member"),
    }
    assert latest.json() in acks


async def test_every_ack_status_of_the_contract_is_accepted(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    for status in ("received", "actioning", "intercepted", "no_trace", "closed"):
        response = await ack(api, keys["HK-CED"], alert["id"], status)
        assert (response.status_code, response.json()["status"]) == (201, status)


async def test_a_malformed_ack_is_422_and_changes_nothing(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    url = f"/v1/alerts/{alert['id']}/acks"

    bodies: list[Any] = [
        {},
        {"status": "seen"},
        {"status": "RECEIVED"},
        {"status": None},
        {"status": "received", "note": 5},
        {"status": "received", "note": "a\u0000b"},
        {"status": "received", "extra": 1},
        [],
        "received",
    ]
    for body in bodies:
        assert_problem(await api.client.post(url, json=body, headers=keys["HK-CED"]), 422)
    reread = await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["KR-KCS"])
    assert reread.json()["acks"] == []


# --- comments ----------------------------------------------------------------------------


async def test_commenting_answers_201_with_the_comment(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    response = await comment(api, keys["TH-CUS"], alert["id"], "Sender known to us from 2019")

    assert response.status_code == 201, response.text
    body = response.json()
    assert UTC_Z.match(body["created_at"])
    assert (body["alert_id"], body["administration"], body["by"], body["body"]) == (
        alert["id"],
        "TH-CUS",
        "TH-CUS member",
        "Sender known to us from 2019",
    )


async def test_comments_are_listed_oldest_first_page_by_page(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    posted = []
    for headers, text in (
        (keys["TH-CUS"], "first"),
        (keys["KR-KCS"], "second"),
        (keys["RILO-AP"], "third"),
    ):
        posted.append((await comment(api, headers, alert["id"], text)).json())
    url = f"/v1/alerts/{alert['id']}/comments"

    first = await api.client.get(url, params={"limit": 2}, headers=keys["HK-CED"])
    second = await api.client.get(
        url, params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=keys["HK-CED"]
    )

    assert first.status_code == 200
    assert first.json()["items"] == posted[:2]
    assert isinstance(first.json()["next_cursor"], str)
    assert second.json() == {"items": posted[2:], "next_cursor": None}


async def test_comment_listing_refuses_bad_paging(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    url = f"/v1/alerts/{alert['id']}/comments"

    for params in ({"limit": 0}, {"limit": 501}, {"cursor": "not-a-cursor"}, {"order": "desc"}):
        assert_problem(await api.client.get(url, params=params, headers=keys["KR-KCS"]), 422)


async def test_a_malformed_comment_is_422(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    url = f"/v1/alerts/{alert['id']}/comments"

    for body in (
        {},
        {"body": ""},
        {"body": None},
        {"body": 5},
        {"body": "a\u0000b"},
        {"body": "x", "by": "JP"},
    ):
        assert_problem(await api.client.post(url, json=body, headers=keys["HK-CED"]), 422)
    listed = await api.client.get(url, headers=keys["KR-KCS"])
    assert listed.json() == {"items": [], "next_cursor": None}


# --- follow-up outlives withdrawal and closing ---------------------------------------------


async def test_follow_up_stays_open_on_a_withdrawn_alert(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    withdrawn = await api.client.post(
        f"/v1/alerts/{alert['id']}/withdraw", json={"reason": "dup"}, headers=keys["KR-KCS"]
    )
    assert withdrawn.status_code == 200

    acked = await ack(api, keys["HK-CED"], alert["id"], "closed")
    commented = await comment(api, keys["HK-CED"], alert["id"], "Closing our side too")

    assert acked.status_code == 201, acked.text
    assert commented.status_code == 201, commented.text


async def test_follow_up_stays_open_in_a_closed_operation(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    assert (
        await api.client.post("/v1/operations/ICEBREAK-II/close", headers=ADMIN)
    ).status_code == 200

    acked = await ack(api, keys["TH-CUS"], alert["id"], "intercepted")
    commented = await comment(api, keys["RILO-AP"], alert["id"], "Good work")

    assert acked.status_code == 201, acked.text
    assert commented.status_code == 201, commented.text
    acks = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["KR-KCS"])).json()[
        "acks"
    ]
    assert [(a["administration"], a["status"]) for a in acks] == [("TH-CUS", "intercepted")]


# --- visibility ----------------------------------------------------------------------------


async def test_follow_up_on_an_invisible_alert_is_404_like_a_missing_one(api: Api) -> None:
    keys = await api.ice_break()
    hidden = await restricted_to_thailand(api, keys)

    for alert_id in (hidden["id"], MISSING_ID):
        for headers in (keys["HK-CED"], keys["JP-CUS"]):
            assert_problem(await ack(api, headers, alert_id, "received"), 404)
            assert_problem(await comment(api, headers, alert_id, "hello"), 404)
            assert_problem(
                await api.client.get(f"/v1/alerts/{alert_id}/comments", headers=headers), 404
            )
    reread = (await api.client.get(f"/v1/alerts/{hidden['id']}", headers=keys["KR-KCS"])).json()
    assert reread["acks"] == []


async def test_a_recipient_may_follow_up_on_a_restricted_alert(api: Api) -> None:
    keys = await api.ice_break()
    alert = await restricted_to_thailand(api, keys)

    acked = await ack(api, keys["TH-CUS"], alert["id"], "actioning")
    commented = await comment(api, keys["TH-CUS"], alert["id"], "Controlled delivery planned")
    listed = await api.client.get(f"/v1/alerts/{alert['id']}/comments", headers=keys["RILO-AP"])

    assert (acked.status_code, commented.status_code) == (201, 201)
    assert listed.json()["items"] == [commented.json()]


async def test_a_removed_participant_may_no_longer_follow_up_on_others_alerts(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    removed = await api.client.delete(
        "/v1/operations/ICEBREAK-II/participants/HK-CED", headers=ADMIN
    )
    assert removed.status_code == 204

    assert_problem(await ack(api, keys["HK-CED"], alert["id"], "received"), 404)
    assert_problem(await comment(api, keys["HK-CED"], alert["id"], "still here?"), 404)


# --- events ------------------------------------------------------------------------------


async def test_an_ack_is_an_alert_acknowledged_event(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    acked = (await ack(api, keys["HK-CED"], alert["id"], "received", note="on it")).json()

    events = (
        await api.client.get("/v1/events", params={"since": alert["seq"]}, headers=keys["KR-KCS"])
    ).json()
    (event,) = events["items"]
    assert event["type"] == "alert.acknowledged"
    assert event["operation"] == "ICEBREAK-II"
    assert event["seq"] > alert["seq"]
    assert (event["alert_id"], event["ack"]) == (alert["id"], acked)


async def test_a_comment_is_a_comment_created_event(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    posted = (await comment(api, keys["TH-CUS"], alert["id"], "Seen this sender before")).json()

    events = (
        await api.client.get("/v1/events", params={"since": alert["seq"]}, headers=keys["RILO-AP"])
    ).json()
    (event,) = events["items"]
    assert event["type"] == "comment.created"
    assert event["operation"] == "ICEBREAK-II"
    assert (event["alert_id"], event["comment"]) == (alert["id"], posted)


async def test_follow_up_events_about_an_invisible_alert_stay_hidden(api: Api) -> None:
    keys = await api.ice_break()
    alert = await restricted_to_thailand(api, keys)
    await ack(api, keys["TH-CUS"], alert["id"], "received")
    await comment(api, keys["TH-CUS"], alert["id"], "Following up")

    hk = (await api.client.get("/v1/events", headers=keys["HK-CED"])).json()
    th = (await api.client.get("/v1/events", headers=keys["TH-CUS"])).json()

    assert hk["items"] == []
    assert [e["type"] for e in th["items"]] == [
        "alert.created",
        "alert.acknowledged",
        "comment.created",
    ]
