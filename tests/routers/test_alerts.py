"""Reporting, reading, amending and withdrawing alerts (API.md sections 3 and 5)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api import ADMIN, Api, assert_problem, pre_alert, seizure

ALERTS = "/v1/operations/ICEBREAK-II/alerts"
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
MISSING_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def notice(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "notice",
        "occurred_at": "2020-06-20T00:00:00Z",
        "location": {"territory": "KR"},
        "summary": "OCU bulletin: watch for tea-packaged methamphetamine",
    }
    body.update(overrides)
    return body


def restricted(*recipients: str) -> dict[str, Any]:
    return {"scope": "restricted", "recipients": list(recipients)}


async def patch(api: Api, headers: dict[str, str], alert_id: str, body: Any, **extra: str) -> Any:
    return await api.client.patch(f"/v1/alerts/{alert_id}", json=body, headers={**headers, **extra})


# --- reporting ---------------------------------------------------------------------------


async def test_report_answers_201_with_location_and_the_stored_alert(api: Api) -> None:
    keys = await api.ice_break()
    body = seizure()
    del body["tlp"], body["priority"]

    response = await api.client.post(ALERTS, json=body, headers=keys["KR-KCS"])

    assert response.status_code == 201, response.text
    alert = response.json()
    assert ULID.match(alert["id"])
    assert response.headers["location"] == f"/v1/alerts/{alert['id']}"
    assert response.headers["cache-control"] == "no-store"
    assert isinstance(alert["seq"], int) and alert["seq"] > 0
    assert {
        k: alert[k]
        for k in ("operation", "revision", "reported_by", "reported_by_key", "status", "acks")
    } == {
        "operation": "ICEBREAK-II",
        "revision": 1,
        "reported_by": "KR-KCS",
        "reported_by_key": "KR-KCS member",
        "status": "open",
        "acks": [],
    }
    assert alert["tlp"] == "AMBER"
    assert alert["priority"] == "routine"
    assert UTC_Z.match(alert["created_at"]) and alert["updated_at"] == alert["created_at"]
    for name in (
        "kind",
        "location",
        "transport_mode",
        "route",
        "items",
        "concealment_methods",
        "concealment",
    ):
        assert alert[name] == body[name], name
    for name in (
        "detection_method",
        "identifiers",
        "offenders",
        "summary",
        "narrative",
        "reference",
        "audience",
    ):
        assert alert[name] == body[name], name


async def test_occurred_at_is_stored_in_utc_with_a_z_suffix(api: Api) -> None:
    keys = await api.ice_break()

    alert = await api.report(
        keys["KR-KCS"], "ICEBREAK-II", seizure(occurred_at="2020-06-17T09:30:00+09:00")
    )

    assert alert["occurred_at"].endswith("Z")
    assert datetime.fromisoformat(alert["occurred_at"]) == datetime(2020, 6, 17, 0, 30, tzinfo=UTC)


async def test_the_location_answers_the_alert_as_stored(api: Api) -> None:
    keys = await api.ice_break()
    created = await api.client.post(ALERTS, json=seizure(), headers=keys["KR-KCS"])

    response = await api.client.get(created.headers["location"], headers=keys["KR-KCS"])

    assert response.status_code == 200
    assert response.json() == created.json()


async def test_alert_seq_is_the_seq_of_its_created_event(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    events = (await api.client.get("/v1/events", headers=keys["KR-KCS"])).json()["items"]

    (created,) = [e for e in events if e["type"] == "alert.created"]
    assert created["seq"] == alert["seq"]
    assert created["alert"] == alert


async def test_occurred_at_a_minute_ahead_is_accepted(api: Api) -> None:
    keys = await api.ice_break()
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()

    response = await api.client.post(ALERTS, json=seizure(occurred_at=soon), headers=keys["KR-KCS"])

    assert response.status_code == 201, response.text


async def test_only_the_coordinator_may_post_a_notice(api: Api) -> None:
    keys = await api.ice_break()

    refused = await api.client.post(ALERTS, json=notice(), headers=keys["KR-KCS"])
    accepted = await api.client.post(ALERTS, json=notice(), headers=keys["RILO-AP"])

    assert_problem(refused, 403)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["kind"] == "notice"
    assert accepted.json()["reported_by"] == "RILO-AP"


async def test_the_coordinator_may_report_without_taking_part(api: Api) -> None:
    keys = await api.ice_break()

    alert = await api.report(keys["RILO-AP/analyst"], "ICEBREAK-II", seizure())

    assert alert["reported_by"] == "RILO-AP"
    assert alert["reported_by_key"] == "RILO-AP analyst"


async def test_reporting_to_an_operation_not_taken_part_in_is_404_like_a_missing_one(
    api: Api,
) -> None:
    keys = await api.ice_break()

    outsider = await api.client.post(ALERTS, json=seizure(), headers=keys["JP-CUS"])
    other = await api.client.post(
        "/v1/operations/OTHER-OP/alerts", json=seizure(), headers=keys["HK-CED"]
    )
    missing = await api.client.post(
        "/v1/operations/NO-SUCH-OP/alerts", json=seizure(), headers=keys["HK-CED"]
    )

    assert assert_problem(outsider, 404)["title"] == assert_problem(missing, 404)["title"]
    assert_problem(other, 404)


async def test_a_removed_participant_may_not_report(api: Api) -> None:
    keys = await api.ice_break()
    removed = await api.client.delete(
        "/v1/operations/ICEBREAK-II/participants/TH-CUS", headers=ADMIN
    )
    assert removed.status_code == 204

    response = await api.client.post(ALERTS, json=seizure(), headers=keys["TH-CUS"])

    assert_problem(response, 403)


async def test_a_closed_operation_accepts_no_new_alerts(api: Api) -> None:
    keys = await api.ice_break()
    closed = await api.client.post("/v1/operations/ICEBREAK-II/close", headers=ADMIN)
    assert closed.status_code == 200

    response = await api.client.post(ALERTS, json=seizure(), headers=keys["KR-KCS"])

    assert_problem(response, 409)


async def test_restricted_recipients_must_take_part_or_coordinate(api: Api) -> None:
    keys = await api.ice_break()

    outsider = await api.client.post(
        ALERTS, json=seizure(audience=restricted("JP-CUS")), headers=keys["KR-KCS"]
    )
    unknown = await api.client.post(
        ALERTS, json=seizure(audience=restricted("XX-NONE")), headers=keys["KR-KCS"]
    )
    fine = await api.client.post(
        ALERTS, json=seizure(audience=restricted("RILO-AP", "TH-CUS")), headers=keys["KR-KCS"]
    )

    assert_problem(outsider, 422)
    assert_problem(unknown, 422)
    assert fine.status_code == 201, fine.text
    assert fine.json()["audience"] == restricted("RILO-AP", "TH-CUS")


async def test_restricted_pre_alert_reaches_participants_on_its_route(api: Api) -> None:
    keys = await api.ice_break()

    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", pre_alert())

    assert alert["audience"]["scope"] == "restricted"
    assert sorted(alert["audience"]["recipients"]) == ["HK-CED", "TH-CUS"]
    seen_by_hk = await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["HK-CED"])
    assert seen_by_hk.status_code == 200


async def test_route_targeting_adds_transit_participants_but_no_outsiders(api: Api) -> None:
    keys = await api.ice_break()
    body = pre_alert(
        route={"origin": "TH", "transit": ["HK"], "destination": "JP"},
        audience=restricted("RILO-AP"),
    )

    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", body)

    assert sorted(alert["audience"]["recipients"]) == ["HK-CED", "RILO-AP", "TH-CUS"]


async def test_route_targeting_applies_to_an_amended_pre_alert(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["HK-CED"], "ICEBREAK-II", pre_alert())

    response = await patch(api, keys["HK-CED"], alert["id"], {"route": {"destination": "KR"}})

    assert response.status_code == 200, response.text
    assert sorted(response.json()["audience"]["recipients"]) == ["HK-CED", "KR-KCS", "TH-CUS"]


async def test_route_targeting_skips_a_removed_participant(api: Api) -> None:
    keys = await api.ice_break()
    removal = "/v1/operations/ICEBREAK-II/participants/TH-CUS"
    assert (await api.client.delete(removal, headers=ADMIN)).status_code == 204

    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", pre_alert())

    assert alert["audience"]["recipients"] == ["HK-CED"]


async def test_an_operation_wide_pre_alert_keeps_its_audience(api: Api) -> None:
    keys = await api.ice_break()

    alert = await api.report(
        keys["KR-KCS"], "ICEBREAK-II", pre_alert(audience={"scope": "operation"})
    )

    assert alert["audience"] == {"scope": "operation"}


# --- reading -----------------------------------------------------------------------------


async def test_get_alert_sends_an_etag_and_no_store(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    response = await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["HK-CED"])

    assert response.status_code == 200
    assert response.headers["etag"].startswith(('"', 'W/"'))
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == alert


async def test_invisible_alerts_are_404_like_a_missing_one(api: Api) -> None:
    keys = await api.ice_break()
    for_thailand = await api.report(
        keys["KR-KCS"], "ICEBREAK-II", seizure(audience=restricted("TH-CUS"))
    )
    elsewhere = await api.report(keys["KR-KCS"], "OTHER-OP", seizure())

    missing = assert_problem(
        await api.client.get(f"/v1/alerts/{MISSING_ID}", headers=keys["HK-CED"]), 404
    )
    hidden = assert_problem(
        await api.client.get(f"/v1/alerts/{for_thailand['id']}", headers=keys["HK-CED"]), 404
    )
    other = assert_problem(
        await api.client.get(f"/v1/alerts/{elsewhere['id']}", headers=keys["HK-CED"]), 404
    )

    assert hidden == missing
    assert other == missing


async def test_malformed_alert_ids_are_404(api: Api) -> None:
    keys = await api.ice_break()
    missing = assert_problem(
        await api.client.get(f"/v1/alerts/{MISSING_ID}", headers=keys["KR-KCS"]), 404
    )

    for bad in (
        "x",
        MISSING_ID[:-1],
        MISSING_ID.lower(),
        MISSING_ID + "0",
        "01ARZ3NDEKTSV4RRFFQ69G5FAU",
        "%20",
        "-1",
    ):
        body = assert_problem(
            await api.client.get(f"/v1/alerts/{bad}", headers=keys["KR-KCS"]), 404
        )
        assert (body["status"], body["title"]) == (missing["status"], missing["title"]), bad


async def test_the_coordinator_reads_a_restricted_alert_not_addressed_to_it(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure(audience=restricted("TH-CUS")))

    response = await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["RILO-AP"])

    assert response.status_code == 200
    assert response.json()["id"] == alert["id"]


async def test_admin_keys_neither_report_nor_read_alerts(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    assert_problem(await api.client.post(ALERTS, json=seizure(), headers=ADMIN), 403)
    assert_problem(await api.client.get(f"/v1/alerts/{alert['id']}", headers=ADMIN), 403)


# --- amending ----------------------------------------------------------------------------


async def test_amend_with_a_merge_patch_answers_the_new_revision(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    change = {"priority": "urgent", "narrative": None, "location": {"place": None}}

    response = await api.client.patch(
        f"/v1/alerts/{alert['id']}", json=change, headers={**keys["KR-KCS"], **MERGE_PATCH}
    )

    assert response.status_code == 200, response.text
    amended = response.json()
    assert amended["revision"] == 2
    assert amended["priority"] == "urgent"
    assert amended["narrative"] is None
    assert amended["location"] == {"territory": "KR", "place": None, "unlocode": "KRICN"}
    assert amended["summary"] == alert["summary"]
    assert (amended["id"], amended["seq"], amended["created_at"]) == (
        alert["id"],
        alert["seq"],
        alert["created_at"],
    )
    assert amended["updated_at"] >= alert["updated_at"]
    assert response.headers["cache-control"] == "no-store"
    reread = await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["HK-CED"])
    assert reread.json() == amended


async def test_amend_accepts_plain_application_json(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    response = await patch(api, keys["KR-KCS"], alert["id"], {"tlp": "RED"})

    assert response.status_code == 200, response.text
    assert (response.json()["revision"], response.json()["tlp"]) == (2, "RED")


async def test_amend_with_the_current_etag_succeeds_and_changes_the_etag(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    etag = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["KR-KCS"])).headers[
        "etag"
    ]

    response = await patch(
        api, keys["KR-KCS"], alert["id"], {"priority": "flash"}, **{"If-Match": etag}
    )

    assert response.status_code == 200, response.text
    assert response.json()["revision"] == 2
    assert response.headers["etag"] != etag


async def test_amend_with_a_stale_etag_is_412_and_changes_nothing(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    stale = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["KR-KCS"])).headers[
        "etag"
    ]
    assert (
        await patch(api, keys["KR-KCS"], alert["id"], {"priority": "urgent"})
    ).status_code == 200

    response = await patch(
        api, keys["KR-KCS"], alert["id"], {"priority": "flash"}, **{"If-Match": stale}
    )

    assert_problem(response, 412)
    current = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["KR-KCS"])).json()
    assert (current["revision"], current["priority"]) == (2, "urgent")


async def test_only_the_reporting_administration_may_amend(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    participant = await patch(api, keys["HK-CED"], alert["id"], {"priority": "flash"})
    coordinator = await patch(api, keys["RILO-AP"], alert["id"], {"priority": "flash"})
    same_administration = await patch(
        api, keys["KR-KCS/analyst"], alert["id"], {"priority": "urgent"}
    )

    assert_problem(participant, 403)
    assert_problem(coordinator, 403)
    assert same_administration.status_code == 200, same_administration.text
    assert same_administration.json()["revision"] == 2


async def test_amending_an_invisible_alert_is_404(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure(audience=restricted("TH-CUS")))

    response = await patch(api, keys["HK-CED"], alert["id"], {"priority": "flash"})

    assert_problem(response, 404)


async def test_the_audience_may_widen_by_adding_recipients(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure(audience=restricted("TH-CUS")))

    response = await patch(
        api, keys["KR-KCS"], alert["id"], {"audience": restricted("TH-CUS", "HK-CED")}
    )

    assert response.status_code == 200, response.text
    assert response.json()["audience"] == restricted("TH-CUS", "HK-CED")
    assert (
        await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["HK-CED"])
    ).status_code == 200


async def test_the_audience_may_widen_from_restricted_to_operation(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure(audience=restricted("TH-CUS")))

    response = await patch(
        api, keys["KR-KCS"], alert["id"], {"audience": {"scope": "operation", "recipients": None}}
    )

    assert response.status_code == 200, response.text
    assert response.json()["audience"] == {"scope": "operation"}
    assert (
        await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["HK-CED"])
    ).status_code == 200


async def test_widening_to_operation_needs_only_the_new_scope(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure(audience=restricted("TH-CUS")))

    response = await patch(api, keys["KR-KCS"], alert["id"], {"audience": {"scope": "operation"}})

    assert response.status_code == 200, response.text
    assert response.json()["audience"] == {"scope": "operation"}


async def test_the_audience_may_not_narrow(api: Api) -> None:
    keys = await api.ice_break()
    wide = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    narrow = await api.report(
        keys["KR-KCS"], "ICEBREAK-II", seizure(audience=restricted("TH-CUS", "HK-CED"))
    )

    to_restricted = await patch(api, keys["KR-KCS"], wide["id"], {"audience": restricted("TH-CUS")})
    dropping = await patch(api, keys["KR-KCS"], narrow["id"], {"audience": restricted("TH-CUS")})

    assert_problem(to_restricted, 422)
    assert_problem(dropping, 422)
    assert (
        await api.client.get(f"/v1/alerts/{narrow['id']}", headers=keys["HK-CED"])
    ).status_code == 200


# --- withdrawing -------------------------------------------------------------------------


async def test_withdraw_marks_the_alert_withdrawn_as_a_new_revision(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    response = await api.client.post(
        f"/v1/alerts/{alert['id']}/withdraw",
        json={"reason": "Duplicate of KCS-0616"},
        headers=keys["KR-KCS"],
    )

    assert response.status_code == 200, response.text
    withdrawn = response.json()
    assert (withdrawn["status"], withdrawn["revision"]) == ("withdrawn", 2)
    assert withdrawn["withdrawn_reason"] == "Duplicate of KCS-0616"
    reread = await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["HK-CED"])
    assert reread.status_code == 200
    assert reread.json() == withdrawn


async def test_withdrawing_twice_is_409(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    url = f"/v1/alerts/{alert['id']}/withdraw"
    assert (
        await api.client.post(url, json={"reason": "mistake"}, headers=keys["KR-KCS"])
    ).status_code == 200

    again = await api.client.post(url, json={"reason": "mistake"}, headers=keys["KR-KCS"])

    assert_problem(again, 409)


async def test_a_withdrawn_alert_cannot_be_amended(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    withdrawn = await api.client.post(
        f"/v1/alerts/{alert['id']}/withdraw", json={"reason": "x"}, headers=keys["KR-KCS"]
    )

    response = await patch(api, keys["KR-KCS"], alert["id"], {"priority": "flash"})

    assert_problem(response, 409)
    reread = await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["KR-KCS"])
    assert reread.json() == withdrawn.json()


async def test_only_the_reporting_administration_may_withdraw(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())

    response = await api.client.post(
        f"/v1/alerts/{alert['id']}/withdraw", json={"reason": "x"}, headers=keys["RILO-AP"]
    )

    assert_problem(response, 403)


async def test_withdraw_needs_a_reason(api: Api) -> None:
    keys = await api.ice_break()
    alert = await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    url = f"/v1/alerts/{alert['id']}/withdraw"

    assert_problem(await api.client.post(url, json={}, headers=keys["KR-KCS"]), 422)
    assert_problem(await api.client.post(url, json={"reason": ""}, headers=keys["KR-KCS"]), 422)
    reread = await api.client.get(f"/v1/alerts/{alert['id']}", headers=keys["KR-KCS"])
    assert (reread.json()["status"], reread.json()["revision"]) == ("open", 1)
