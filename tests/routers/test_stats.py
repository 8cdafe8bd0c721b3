"""Statistics of an operation (API.md section 6, stats) under the rule of section 3.

One world per store, built once: ICEBREAK-II holds a varied corpus that no test changes.
The expected figures are computed here, in plain Python, from the bodies that were posted,
and compared with the endpoint for every dimension and for several analysts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from tests.api import ADMIN, Api, assert_problem, pre_alert, seizure
from tests.conftest import client_for, reset

OPERATION = "ICEBREAK-II"
STATS = f"/v1/operations/{OPERATION}/stats"
COORDINATOR = "RILO-AP"
# Current participants of ICEBREAK-II and their territories (tests.api.Api.ice_break).
PARTICIPANTS = {"KR-KCS": "KR", "HK-CED": "HK", "TH-CUS": "TH"}
DIMENSIONS = [
    "commodity",
    "transport_mode",
    "reported_by",
    "territory",
    "origin",
    "concealment_method",
    "detection_method",
    "week",
    "route",
]
# Where each unit's quantity is summed, and the factor that brings it to that field's unit.
UNITS = {
    "kg": ("mass_kg", 1.0),
    "g": ("mass_kg", 0.001),
    "l": ("volume_l", 1.0),
    "ml": ("volume_l", 0.001),
    "tablets": ("tablets", 1.0),
    "pieces": ("pieces", 1.0),
}
FIELDS = ("alerts", "seizures", "mass_kg", "volume_l", "tablets", "pieces")


def item(commodity: str, quantity: float, unit: str, form: str = "other") -> dict[str, Any]:
    return {"commodity": commodity, "form": form, "quantity": quantity, "unit": unit}


def corpus() -> dict[str, tuple[str, dict[str, Any]]]:
    """ICEBREAK-II's alerts by name: (reporting administration, body), in reporting order."""
    return {
        # 2020-06-17T00:30Z, W25; 2.35 kg methamphetamine; route TH-KR.
        "meth_mail": ("KR-KCS", seizure()),
        "truck_two_commodities": (
            "TH-CUS",
            seizure(
                occurred_at="2020-06-18T20:00:00Z",
                location={"territory": "TH"},
                transport_mode="road_vehicle",
                route={"origin": "MM", "transit": [], "destination": "TH"},
                items=[
                    item("methamphetamine", 200000, "tablets", "tablet"),
                    item("ketamine", 1500, "g", "powder"),
                    item("methamphetamine", 0.5, "kg", "crystal"),
                ],
                concealment_methods=["vehicle_compartment", "false_bottom"],
                detection_method="intelligence",
                summary="Yaba tablets, ice and ketamine under a false floor",
            ),
        ),
        "container_for_th": (
            "KR-KCS",
            seizure(
                # Sunday 2020-06-21 (W25) where it happened, Monday 2020-06-22 (W26) in UTC.
                occurred_at="2020-06-21T23:30:00-05:00",
                transport_mode="sea_container",
                route={"origin": "CO", "transit": ["PA"], "destination": "KR"},
                items=[
                    item("cocaine", 120, "kg", "powder"),
                    item("p2p", 800, "ml", "liquid"),
                    item("p2p", 2.5, "l", "liquid"),
                ],
                concealment_methods=["container_structure"],
                detection_method="detector_dog",
                summary="Cocaine bricks and P-2-P drums in a container from CO",
                audience={"scope": "restricted", "recipients": ["TH-CUS"]},
            ),
        ),
        "swallower_hk": (
            "HK-CED",
            seizure(
                occurred_at="2020-06-23T10:00:00+08:00",
                location={"territory": "HK"},
                transport_mode="air_passenger",
                route={"origin": "BR", "transit": ["QA"], "destination": "HK"},
                items=[item("cocaine", 350, "g")],
                concealment_methods=["swallowed", "body_carry"],
                detection_method="risk_profiling",
                summary="Passenger from BR with swallowed cocaine pellets",
                audience={"scope": "restricted", "recipients": ["RILO-AP"]},
            ),
        ),
        "parcel_without_destination": (
            "HK-CED",
            seizure(
                occurred_at="2020-06-24T02:00:00Z",
                location={"territory": "HK"},
                transport_mode="express_courier",
                route={"origin": "CN", "transit": []},
                items=[
                    item("nps", 40, "pieces", "other"),
                    item("mdma", 1200, "tablets", "tablet"),
                    item("fentanyl", 20, "g", "powder"),
                    item("other_drug", 750, "ml", "liquid"),
                ],
                concealment_methods=["electronics"],
                detection_method="x_ray",
                summary="Blotters, ecstasy, fentanyl and a liquid in a speaker",
            ),
        ),
        "cannabis_for_hk": (
            "KR-KCS",
            seizure(
                occurred_at="2020-06-25T06:00:00+09:00",
                transport_mode="rail",
                route={"origin": "LA", "transit": ["CN"], "destination": "KR"},
                items=[item("cannabis", 12.5, "kg", "plant"), item("cannabis", 400, "g", "resin")],
                concealment_methods=["luggage"],
                detection_method="random_selection",
                summary="Cannabis herb and resin in a rail passenger's luggage",
                audience={"scope": "restricted", "recipients": ["HK-CED"]},
            ),
        ),
        # Restricted with no recipients: route targeting adds TH-CUS and HK-CED.
        "pre_alert_to_hk": (
            "TH-CUS",
            pre_alert(
                occurred_at="2020-06-19T03:00:00Z",
                transport_mode="air_cargo",
                items=[item("heroin", 0.8, "kg")],
            ),
        ),
        # Route targeting adds KR-KCS and TH-CUS, not HK-CED. Monday 2020-06-22 (W26) where
        # it was written down, Sunday 2020-06-21 (W25) in UTC.
        "pre_alert_to_kr": (
            "TH-CUS",
            pre_alert(
                occurred_at="2020-06-22T07:00:00+09:00",
                transport_mode="mail",
                route={"origin": "TH", "transit": [], "destination": "KR"},
                items=[item("methamphetamine", 3, "kg", "crystal")],
                detection_method="risk_profiling",
                summary="Parcel of methamphetamine heading for KR",
            ),
        ),
        "request_kr": (
            "KR-KCS",
            {
                "kind": "request",
                "occurred_at": "2020-06-20T08:00:00Z",
                "location": {"territory": "KR"},
                "items": [item("ketamine", 5, "kg", "powder")],
                "concealment_methods": ["electronics"],
                "summary": "Request: trace the shipper of ketamine hidden in speakers",
            },
        ),
        "notice": (
            "RILO-AP",
            {
                "kind": "notice",
                "occurred_at": "2020-06-16T00:00:00Z",
                "location": {"territory": "KR"},
                "summary": "Bulletin on P-2-P precursor diversion",
            },
        ),
        "withdrawn_heroin": (
            "KR-KCS",
            seizure(
                occurred_at="2020-06-22T08:00:00Z",
                transport_mode="air_cargo",
                route={"origin": "MM", "destination": "KR"},
                items=[item("heroin", 10, "kg", "powder")],
                summary="Heroin in air cargo, reported in error",
            ),
        ),
        "withdrawn_pre_alert": (
            "HK-CED",
            pre_alert(
                occurred_at="2020-06-24T09:00:00Z",
                location={"territory": "HK"},
                route={"origin": "HK", "transit": [], "destination": "TH"},
                items=[item("ketamine", 7, "kg", "powder")],
                audience={"scope": "operation"},
            ),
        ),
    }


WITHDRAWN = {"withdrawn_heroin", "withdrawn_pre_alert"}
# In another operation: never counted in ICEBREAK-II's figures.
ELSEWHERE = ("KR-KCS", "OTHER-OP", seizure(items=[item("cocaine", 999, "kg")]))


# --- the expected figures, from the posted bodies --------------------------------------------


def recipients(body: dict[str, Any]) -> set[str]:
    """A restricted audience's recipients, with the participants a pre-alert's route reaches."""
    audience = body.get("audience") or {"scope": "operation"}
    codes = set(audience.get("recipients", []))
    route = body.get("route") or {}
    if body["kind"] == "pre_alert":
        on_route = {route.get("origin"), route.get("destination"), *route.get("transit", [])}
        codes |= {code for code, territory in PARTICIPANTS.items() if territory in on_route}
    return codes


def may_see(viewer: str, reporter: str, body: dict[str, Any]) -> bool:
    """API.md section 3 for ICEBREAK-II, whose participants never change."""
    if viewer in (reporter, COORDINATOR):
        return True
    if viewer not in PARTICIPANTS:
        return False
    audience = body.get("audience") or {"scope": "operation"}
    return audience["scope"] == "operation" or viewer in recipients(body)


def iso_week(occurred_at: str) -> str:
    year, week, _ = datetime.fromisoformat(occurred_at).astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def group_keys(by: str, reporter: str, body: dict[str, Any]) -> set[str | None]:
    """The groups an alert counts in."""
    route = body.get("route") or {}
    if by == "commodity":
        return {i["commodity"] for i in body.get("items", [])} or {None}
    if by == "concealment_method":
        return set(body.get("concealment_methods", [])) or {None}
    if by == "reported_by":
        return {reporter}
    if by == "territory":
        return {body["location"]["territory"]}
    if by == "origin":
        return {route.get("origin")}
    if by == "week":
        return {iso_week(body["occurred_at"])}
    if by == "route":
        origin, destination = route.get("origin"), route.get("destination")
        return {f"{origin}-{destination}" if origin and destination else None}
    return {body.get(by)}


def figures(bodies: list[dict[str, Any]], *, commodity: str | None = None) -> dict[str, Any]:
    """The figures of a group of alerts; ``commodity`` keeps only that commodity's items."""
    out: dict[str, Any] = {name: 0 for name in FIELDS}
    for body in bodies:
        out["alerts"] += 1
        if body["kind"] != "seizure":
            continue
        out["seizures"] += 1
        for it in body["items"]:
            if commodity is None or it["commodity"] == commodity:
                name, factor = UNITS[it["unit"]]
                out[name] += it["quantity"] * factor
    return out


def visible_bodies(viewer: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (reporter, body)
        for name, (reporter, body) in corpus().items()
        if name not in WITHDRAWN and may_see(viewer, reporter, body)
    ]


def expected_groups(viewer: str, by: str) -> dict[str | None, dict[str, Any]]:
    members: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for reporter, body in visible_bodies(viewer):
        for key in group_keys(by, reporter, body):
            members[key].append(body)
    return {
        key: figures(bodies, commodity=key if by == "commodity" else None)
        for key, bodies in members.items()
    }


def expected_total(viewer: str) -> dict[str, Any]:
    return figures([body for _, body in visible_bodies(viewer)])


def approx(expected: dict[str, Any]) -> Any:
    """Counts exactly, quantities to the micro-unit (the server rounds to six places)."""
    return pytest.approx(expected, rel=1e-9, abs=1e-6)


# --- the world -------------------------------------------------------------------------------


@dataclass
class World:
    api: Api
    keys: dict[str, dict[str, str]]
    ids: dict[str, str]

    async def stats(self, by: str, *, who: str = "RILO-AP/analyst") -> dict[str, Any]:
        response = await self.api.client.get(STATS, params={"by": by}, headers=self.keys[who])
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def by_key(stats: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    """The groups of a stats answer by key (each key once), without the key field."""
    keys = [group["key"] for group in stats["groups"]]
    assert len(keys) == len(set(keys)), keys
    return {g["key"]: {name: g[name] for name in FIELDS} for g in stats["groups"]}


@pytest.fixture(scope="module")
async def world(app: FastAPI) -> AsyncIterator[World]:
    runtime = app.state.runtime
    await reset(runtime)
    async with client_for(app) as client:
        api = Api(client, runtime)
        keys = await api.ice_break()
        ids: dict[str, str] = {}
        for name, (who, body) in corpus().items():
            ids[name] = (await api.report(keys[who], OPERATION, body))["id"]
        for name in sorted(WITHDRAWN):
            response = await client.post(
                f"/v1/alerts/{ids[name]}/withdraw",
                json={"reason": "Reported in error"},
                headers=keys[corpus()[name][0]],
            )
            assert response.status_code == 200, response.text
        who, operation, body = ELSEWHERE
        await api.report(keys[who], operation, body)
        yield World(api, keys, ids)


# --- figures ---------------------------------------------------------------------------------

VIEWERS = ["RILO-AP", "HK-CED", "TH-CUS", "KR-KCS"]


@pytest.mark.parametrize("by", DIMENSIONS)
@pytest.mark.parametrize("viewer", VIEWERS)
async def test_groups_and_total_are_the_figures_of_the_alerts_the_analyst_may_see(
    world: World, viewer: str, by: str
) -> None:
    stats = await world.stats(by, who=f"{viewer}/analyst")

    assert stats["operation"] == OPERATION
    assert stats["by"] == by
    assert by_key(stats) == {key: approx(f) for key, f in expected_groups(viewer, by).items()}
    assert stats["total"] == approx(expected_total(viewer))


async def test_coordinator_figures_match_hand_counted_values(world: World) -> None:
    """The oracle above, checked by hand on a few figures."""
    total = (await world.stats("week"))["total"]
    weeks = by_key(await world.stats("week"))
    meth = by_key(await world.stats("commodity"))["methamphetamine"]

    assert total == approx(
        {
            "alerts": 10,
            "seizures": 6,
            "mass_kg": 137.62,
            "volume_l": 4.05,
            "tablets": 201200,
            "pieces": 40,
        }
    )
    assert weeks == {
        "2020-W25": approx(
            {
                "alerts": 6,
                "seizures": 2,
                "mass_kg": 4.35,
                "volume_l": 0,
                "tablets": 200000,
                "pieces": 0,
            }
        ),
        "2020-W26": approx(
            {
                "alerts": 4,
                "seizures": 4,
                "mass_kg": 133.27,
                "volume_l": 4.05,
                "tablets": 1200,
                "pieces": 40,
            }
        ),
    }
    assert meth == approx(
        {"alerts": 3, "seizures": 2, "mass_kg": 2.85, "volume_l": 0, "tablets": 200000, "pieces": 0}
    )


async def test_week_is_the_iso_week_of_occurred_at_in_utc(world: World) -> None:
    """The container seized late on Sunday of W25 where it happened is in W26 in UTC, and
    the pre-alert written on Monday of W26 in Japan's time is in W25."""
    weeks = by_key(await world.stats("week", who="TH-CUS/analyst"))

    assert set(weeks) == {"2020-W25", "2020-W26"}
    # TH-CUS sees in W26 (UTC) the container (2020-06-22T04:30Z) and HK-CED's parcel.
    assert weeks["2020-W26"] == approx(
        {
            "alerts": 2,
            "seizures": 2,
            "mass_kg": 120.02,
            "volume_l": 4.05,
            "tablets": 1200,
            "pieces": 40,
        }
    )


async def test_week_keys_use_the_iso_week_numbering_year(world: World) -> None:
    operation = "STATS-WEEKS"
    await world.api.operation(operation, coordinator="RILO-AP", participants=["KR-KCS"])
    for occurred_at in (
        "2021-01-03T20:00:00-05:00",  # Monday 2021-01-04 in UTC: 2021-W01
        "2021-01-01T12:00:00Z",  # a Friday of 2020-W53
        "2018-12-31T08:00:00+09:00",  # Sunday 2018-12-30 in UTC: 2018-W52
        "2019-12-30T00:00:00Z",  # Monday: 2020-W01
    ):
        await world.api.report(world.keys["KR-KCS"], operation, seizure(occurred_at=occurred_at))

    response = await world.api.client.get(
        f"/v1/operations/{operation}/stats",
        params={"by": "week"},
        headers=world.keys["KR-KCS/analyst"],
    )

    assert response.status_code == 200, response.text
    one = {"alerts": 1, "seizures": 1, "mass_kg": 2.35, "volume_l": 0, "tablets": 0, "pieces": 0}
    assert by_key(response.json()) == {
        week: approx(one) for week in ("2018-W52", "2020-W01", "2020-W53", "2021-W01")
    }


async def test_participant_figures_leave_out_restricted_alerts_addressed_to_others(
    world: World,
) -> None:
    coordinator = (await world.stats("commodity"))["total"]
    participant = (await world.stats("commodity", who="HK-CED/analyst"))["total"]

    assert participant != coordinator
    assert participant == approx(
        {
            "alerts": 8,
            "seizures": 5,
            "mass_kg": 17.62,
            "volume_l": 0.75,
            "tablets": 201200,
            "pieces": 40,
        }
    )
    # The container restricted to TH-CUS holds the only P-2-P: HK-CED has no such group.
    assert "p2p" in by_key(await world.stats("commodity"))
    assert "p2p" not in by_key(await world.stats("commodity", who="HK-CED/analyst"))


async def test_an_alert_with_two_commodities_counts_once_in_each_with_its_own_items(
    world: World,
) -> None:
    groups = by_key(await world.stats("commodity", who="TH-CUS/analyst"))

    # TH-CUS sees ketamine in its own truck (1500 g, a seizure) and in KR's request (not one).
    assert groups["ketamine"] == approx(
        {"alerts": 2, "seizures": 1, "mass_kg": 1.5, "volume_l": 0, "tablets": 0, "pieces": 0}
    )
    # Methamphetamine: KR's mail seizure, the truck (tablets and 0.5 kg), and its pre-alert.
    assert groups["methamphetamine"] == approx(
        {"alerts": 3, "seizures": 2, "mass_kg": 2.85, "volume_l": 0, "tablets": 200000, "pieces": 0}
    )


async def test_alerts_without_the_field_fall_in_the_null_group(world: World) -> None:
    null = {"alerts": 1, "seizures": 0, "mass_kg": 0, "volume_l": 0, "tablets": 0, "pieces": 0}

    # The notice holds no items; the request and the notice have no route, no transport mode.
    assert by_key(await world.stats("commodity"))[None] == approx(null)
    assert by_key(await world.stats("transport_mode"))[None] == approx({**null, "alerts": 2})
    # A route without its destination counts as no route.
    assert by_key(await world.stats("route"))[None] == approx(
        {
            "alerts": 3,
            "seizures": 1,
            "mass_kg": 0.02,
            "volume_l": 0.75,
            "tablets": 1200,
            "pieces": 40,
        }
    )


async def test_counts_match_the_open_alerts_the_list_shows(world: World) -> None:
    for viewer in VIEWERS:
        headers = world.keys[f"{viewer}/analyst"]
        listed = await world.api.client.get(
            f"/v1/operations/{OPERATION}/alerts",
            params={"status": "open", "limit": 500},
            headers=headers,
        )
        stats = await world.stats("reported_by", who=f"{viewer}/analyst")

        assert stats["total"]["alerts"] == len(listed.json()["items"]), viewer
        assert sum(g["alerts"] for g in stats["groups"]) == stats["total"]["alerts"], viewer


async def test_a_former_participant_counts_only_its_own_alerts(world: World) -> None:
    operation = "STATS-LEFT"
    await world.api.operation(operation, coordinator="RILO-AP", participants=["KR-KCS", "HK-CED"])
    await world.api.report(world.keys["KR-KCS"], operation, seizure())
    await world.api.report(
        world.keys["HK-CED"],
        operation,
        seizure(items=[item("heroin", 250, "g")], location={"territory": "HK"}),
    )
    removed = await world.api.client.delete(
        f"/v1/operations/{operation}/participants/HK-CED", headers=ADMIN
    )
    assert removed.status_code == 204, removed.text

    response = await world.api.client.get(
        f"/v1/operations/{operation}/stats",
        params={"by": "reported_by"},
        headers=world.keys["HK-CED/analyst"],
    )

    assert response.status_code == 200, response.text
    own = {"alerts": 1, "seizures": 1, "mass_kg": 0.25, "volume_l": 0, "tablets": 0, "pieces": 0}
    assert by_key(response.json()) == {"HK-CED": approx(own)}
    assert response.json()["total"] == approx(own)


async def test_figures_follow_the_latest_revision(world: World) -> None:
    operation = "STATS-AMEND"
    await world.api.operation(operation, coordinator="RILO-AP", participants=["KR-KCS", "HK-CED"])
    alert = await world.api.report(
        world.keys["KR-KCS"],
        operation,
        seizure(audience={"scope": "restricted", "recipients": ["RILO-AP"]}),
    )

    async def commodities() -> dict[str | None, dict[str, Any]]:
        response = await world.api.client.get(
            f"/v1/operations/{operation}/stats",
            params={"by": "commodity"},
            headers=world.keys["HK-CED/analyst"],
        )
        assert response.status_code == 200, response.text
        return by_key(response.json())

    assert await commodities() == {}
    amended = await world.api.client.patch(
        f"/v1/alerts/{alert['id']}",
        json={"items": [item("p2p", 2, "l", "liquid")], "audience": {"scope": "operation"}},
        headers=world.keys["KR-KCS"],
    )
    assert amended.status_code == 200, amended.text

    assert await commodities() == {
        "p2p": approx(
            {"alerts": 1, "seizures": 1, "mass_kg": 0, "volume_l": 2, "tablets": 0, "pieces": 0}
        )
    }


async def test_stats_are_not_cached(world: World) -> None:
    response = await world.api.client.get(
        STATS, params={"by": "week"}, headers=world.keys["RILO-AP/analyst"]
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["RILO-AP", "HK-CED", "admin"])
async def test_keys_without_the_analyst_role_are_refused(world: World, who: str) -> None:
    headers = ADMIN if who == "admin" else world.keys[who]

    response = await world.api.client.get(STATS, params={"by": "commodity"}, headers=headers)

    assert_problem(response, 403)


async def test_a_request_without_a_key_is_unauthorised(world: World) -> None:
    response = await world.api.client.get(STATS, params={"by": "commodity"})

    assert_problem(response, 401)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="missing-by"),
        pytest.param({"by": "colour"}, id="unknown-by"),
        pytest.param({"by": "Commodity"}, id="by-is-case-sensitive"),
        pytest.param({"by": ""}, id="empty-by"),
        pytest.param({"by": "commodity", "kind": "seizure"}, id="unknown-parameter"),
    ],
)
async def test_an_invalid_query_is_unprocessable(world: World, params: dict[str, str]) -> None:
    response = await world.api.client.get(
        STATS, params=params, headers=world.keys["RILO-AP/analyst"]
    )

    assert_problem(response, 422)


@pytest.mark.parametrize(
    ("who", "operation"),
    [
        pytest.param("JP-CUS/analyst", OPERATION, id="not-taking-part"),
        pytest.param("HK-CED/analyst", "OTHER-OP", id="other-operation"),
        pytest.param("RILO-AP/analyst", "NO-SUCH-OP", id="unknown-operation"),
    ],
)
async def test_an_operation_not_taken_part_in_is_not_found(
    world: World, who: str, operation: str
) -> None:
    response = await world.api.client.get(
        f"/v1/operations/{operation}/stats", params={"by": "week"}, headers=world.keys[who]
    )

    assert_problem(response, 404)
