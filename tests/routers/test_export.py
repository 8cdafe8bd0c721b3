"""Exporting an operation's alerts (API.md section 6, export) under the rule of section 3.

One world per store, built once: ICEBREAK-II holds a corpus that no test changes. The
expected rows are derived here from the bodies that were posted; the visible set is also
checked against the list endpoint. A last test streams a large export from a real server.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.services.export import COLUMNS
from tests.api import ADMIN, Api, assert_problem, pre_alert, seizure
from tests.conftest import client_for, reset
from tests.server import admin_headers, relay_server, set_up_operation

OPERATION = "ICEBREAK-II"
EXPORT = f"/v1/operations/{OPERATION}/export"
ALERTS = f"/v1/operations/{OPERATION}/alerts"
# Free-text columns, which a spreadsheet could take for a formula.
FREE_TEXT = ("place", "identifiers", "summary", "concealment", "narrative", "reference")
FORMULA_START = ("=", "+", "-", "@")
ITEM_FIELDS = ("commodity", "form", "quantity", "unit")


def item(commodity: str, quantity: float, unit: str, form: str | None = None) -> dict[str, Any]:
    return {"commodity": commodity, "form": form, "quantity": quantity, "unit": unit}


def corpus() -> dict[str, tuple[str, dict[str, Any]]]:
    """ICEBREAK-II's alerts by name: (reporting administration, body), in reporting order."""
    return {
        "meth_mail": (
            "KR-KCS",
            seizure(
                location={
                    "territory": "KR",
                    "place": "Incheon, International Mail Centre",
                    "unlocode": "KRICN",
                },
                identifiers=[
                    {"type": "tracking_number", "value": "EE123456789TH"},
                    {"type": "company", "value": 'Acme "Tea", Ltd'},
                ],
                summary='Seized 2.35 kg, "crystal" methamphetamine\nin tea bags; parcel from TH',
                narrative='Line one, with a comma\nLine two, "quoted"\r\nLine three',
            ),
        ),
        "truck": (
            "TH-CUS",
            seizure(
                priority="urgent",
                occurred_at="2020-06-18T20:00:00Z",
                location={"territory": "TH"},
                transport_mode="road_vehicle",
                route={"origin": "MM", "transit": ["LA", "CN"], "destination": "TH"},
                items=[
                    item("methamphetamine", 200000, "tablets", "tablet"),
                    item("ketamine", 1500, "g", "powder"),
                    item("p2p", 2.5, "l", "liquid"),
                ],
                concealment_methods=["vehicle_compartment", "false_bottom"],
                concealment=None,
                detection_method="intelligence",
                identifiers=[{"type": "vehicle", "value": "TH-1234-CM"}],
                tlp="RED",
                summary="Yaba tablets, ketamine and P-2-P under a false floor",
                narrative=None,
                reference=None,
            ),
        ),
        "formula_equals": (
            "HK-CED",
            seizure(
                occurred_at="2020-06-19T10:00:00+08:00",
                location={"territory": "HK", "place": "Kwai Chung"},
                transport_mode="sea_container",
                route={"origin": "CO", "transit": ["PA"], "destination": "HK"},
                items=[item("cocaine", 120, "kg", "powder")],
                concealment_methods=["container_structure"],
                detection_method="detector_dog",
                identifiers=[{"type": "container", "value": "MSCU1234567"}],
                tlp="GREEN",
                summary='=HYPERLINK("http://evil.example/x","open")',
            ),
        ),
        "formula_minus": (
            "HK-CED",
            seizure(
                priority="flash",
                occurred_at="2020-06-20T12:00:00Z",
                location={"territory": "HK"},
                transport_mode="air_passenger",
                route={"origin": "BR", "transit": ["QA"], "destination": "HK"},
                items=[item("cocaine", 350, "g")],
                concealment_methods=["swallowed"],
                concealment="=1+2 pellets",
                detection_method="risk_profiling",
                identifiers=[{"type": "flight", "value": "QR818"}],
                tlp="AMBER+STRICT",
                summary="-350 g of cocaine swallowed, +2 pellets missing",
                narrative="@SUM(A1:A9) is not a formula here",
                reference="+852-0001",
            ),
        ),
        "notice": (
            "RILO-AP",
            {
                "kind": "notice",
                "occurred_at": "2020-06-16T00:00:00Z",
                "location": {"territory": "KR"},
                "tlp": "CLEAR",
                "summary": "Bulletin on P-2-P precursor diversion",
            },
        ),
        "for_th_only": (
            "KR-KCS",
            seizure(
                occurred_at="2020-06-21T23:30:00-05:00",
                transport_mode="sea_container",
                route={"origin": "CO", "destination": "KR"},
                items=[item("cocaine", 40, "kg", "powder"), item("nps", 40, "pieces")],
                concealment_methods=["container_structure"],
                detection_method="detector_dog",
                identifiers=[{"type": "container", "value": "TGHU7654321"}],
                summary="Cocaine and blotters in a container from CO",
                audience={"scope": "restricted", "recipients": ["TH-CUS"]},
            ),
        ),
        # Restricted with no recipients and no tlp: route targeting adds HK-CED; AMBER.
        "pre_alert_to_hk": ("TH-CUS", pre_alert()),
        "withdrawn_request": (
            "KR-KCS",
            {
                "kind": "request",
                "occurred_at": "2020-06-23T08:00:00Z",
                "location": {"territory": "KR"},
                "items": [item("ketamine", 5, "kg", "powder")],
                "concealment_methods": ["electronics"],
                "identifiers": [{"type": "airway_bill", "value": "176-12345675"}],
                "summary": "Request: trace the shipper of ketamine hidden in speakers",
            },
        ),
    }


WITHDRAWN = "withdrawn_request"
EVERYTHING = set(corpus())
HIDDEN_FROM = {"HK-CED": {"for_th_only"}, "RILO-AP": set()}
# In another operation: never in ICEBREAK-II's export.
ELSEWHERE = ("KR-KCS", "OTHER-OP", seizure(summary="Seizure of another operation"))


# --- the expected rows, from the posted bodies ----------------------------------------------


def utc(timestamp: str) -> str:
    """As the server answers: UTC, milliseconds, ``Z``."""
    at = datetime.fromisoformat(timestamp).astimezone(UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def expected_rows(name: str, reporter: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one alert, typed as in NDJSON, but for the server's own fields."""
    route = body.get("route") or {}
    location = body["location"]
    common = {
        "tlp": body.get("tlp", "AMBER"),
        "operation": OPERATION,
        "kind": body["kind"],
        "priority": body.get("priority", "routine"),
        "status": "withdrawn" if name == WITHDRAWN else "open",
        "occurred_at": utc(body["occurred_at"]),
        "reported_by": reporter,
        "territory": location["territory"],
        "place": location.get("place"),
        "unlocode": location.get("unlocode"),
        "transport_mode": body.get("transport_mode"),
        "origin": route.get("origin"),
        "transit": route.get("transit", []),
        "destination": route.get("destination"),
        "detection_method": body.get("detection_method"),
        "concealment_methods": body.get("concealment_methods", []),
        "audience": (body.get("audience") or {"scope": "operation"})["scope"],
        "identifiers": [f"{i['type']}:{i['value']}" for i in body.get("identifiers", [])],
        "summary": body["summary"],
        "concealment": body.get("concealment"),
        "narrative": body.get("narrative"),
        "reference": body.get("reference"),
    }
    items = body.get("items") or [dict.fromkeys(ITEM_FIELDS)]
    return [{**common, **{f: it.get(f) for f in ITEM_FIELDS}} for it in items]


def csv_cell(column: str, value: Any) -> str:
    """How a value is written to CSV: lists joined by ';', free text guarded."""
    if value is None:
        return ""
    text = ";".join(value) if isinstance(value, list) else str(value)
    if column in FREE_TEXT and text.startswith(FORMULA_START):
        return "'" + text
    return text


# --- the world -------------------------------------------------------------------------------


@dataclass
class World:
    api: Api
    keys: dict[str, dict[str, str]]
    ids: dict[str, str]

    def name_of(self, alert_id: str) -> str:
        return {v: k for k, v in self.ids.items()}.get(alert_id, alert_id)

    async def export(self, params: Any = None, *, who: str = "RILO-AP/analyst") -> httpx.Response:
        return await self.api.client.get(EXPORT, params=params, headers=self.keys[who])

    async def csv_rows(
        self, params: Any = None, *, who: str = "RILO-AP/analyst"
    ) -> list[dict[str, str]]:
        response = await self.export([*(params or []), ("format", "csv")], who=who)
        assert response.status_code == 200, response.text
        reader = csv.reader(io.StringIO(response.content.decode("utf-8"), newline=""))
        header, *rows = list(reader)
        assert header == COLUMNS
        assert all(len(row) == len(header) for row in rows)
        return [dict(zip(header, row, strict=True)) for row in rows]

    async def ndjson_rows(
        self, params: Any = None, *, who: str = "RILO-AP/analyst"
    ) -> list[dict[str, Any]]:
        response = await self.export([*(params or []), ("format", "ndjson")], who=who)
        assert response.status_code == 200, response.text
        text = response.content.decode("utf-8")
        assert text == "" or text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    async def listed(self, params: Any = None, *, who: str = "RILO-AP/analyst") -> list[dict]:
        response = await self.api.client.get(
            ALERTS, params=[*(params or []), ("limit", "500")], headers=self.keys[who]
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


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
        withdrawn = await client.post(
            f"/v1/alerts/{ids[WITHDRAWN]}/withdraw",
            json={"reason": "Shipper identified"},
            headers=keys["KR-KCS"],
        )
        assert withdrawn.status_code == 200, withdrawn.text
        who, operation, body = ELSEWHERE
        await api.report(keys[who], operation, body)
        yield World(api, keys, ids)


# --- rows ------------------------------------------------------------------------------------

VIEWERS = ["RILO-AP", "HK-CED"]


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
@pytest.mark.parametrize("viewer", VIEWERS)
async def test_one_row_per_item_of_every_alert_the_list_shows(
    world: World, viewer: str, fmt: str
) -> None:
    who = f"{viewer}/analyst"
    rows = await (world.csv_rows(who=who) if fmt == "csv" else world.ndjson_rows(who=who))
    listed = {alert["id"] for alert in await world.listed(who=who)}

    visible = EVERYTHING - HIDDEN_FROM[viewer]
    expected = sorted(
        (world.ids[name], max(1, len(corpus()[name][1].get("items", [])))) for name in visible
    )
    counted: dict[str, int] = {}
    for row in rows:
        counted[row["alert_id"]] = counted.get(row["alert_id"], 0) + 1
    assert sorted(counted.items()) == expected
    assert set(counted) == listed
    assert len(rows) == {"RILO-AP": 11, "HK-CED": 9}[viewer]


async def test_csv_round_trips_the_posted_values(world: World) -> None:
    rows = await world.csv_rows()
    listed = {alert["id"]: alert for alert in await world.listed()}

    by_alert: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_alert.setdefault(row["alert_id"], []).append(row)
    for name, (reporter, body) in corpus().items():
        alert_id = world.ids[name]
        got = by_alert[alert_id]
        want = expected_rows(name, reporter, body)
        assert len(got) == len(want), name
        for row, expected in zip(got, want, strict=True):
            text = {c: csv_cell(c, v) for c, v in expected.items() if c != "quantity"}
            assert {c: row[c] for c in text} == text, name
            if expected["quantity"] is None:
                assert row["quantity"] == "", name
            else:
                assert float(row["quantity"]) == expected["quantity"], name
            assert int(row["seq"]) == listed[alert_id]["seq"]
            assert row["created_at"] == listed[alert_id]["created_at"]
            assert row["updated_at"] == listed[alert_id]["updated_at"]
        assert_items_numbered_in_order([r["item"] for r in got], has_items="items" in body)


def assert_items_numbered_in_order(numbers: list[Any], *, has_items: bool) -> None:
    """Items are numbered consecutively in posted order (from 0 or from 1); none is empty."""
    if not has_items:
        assert numbers in ([""], [None])
        return
    positions = [int(n) for n in numbers]
    assert positions[0] in (0, 1)
    assert positions == list(range(positions[0], positions[0] + len(positions)))


async def test_ndjson_rows_are_typed_and_round_trip_the_posted_values(world: World) -> None:
    rows = await world.ndjson_rows()
    listed = {alert["id"]: alert for alert in await world.listed()}

    assert all(set(row) == set(COLUMNS) for row in rows)
    by_alert: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_alert.setdefault(row["alert_id"], []).append(row)
    for name, (reporter, body) in corpus().items():
        alert_id = world.ids[name]
        got = by_alert[alert_id]
        want = expected_rows(name, reporter, body)
        assert [{c: row[c] for c in w} for row, w in zip(got, want, strict=True)] == want, name
        for row in got:
            assert row["seq"] == listed[alert_id]["seq"]
            assert type(row["seq"]) is int
            assert isinstance(row["transit"], list)
            assert isinstance(row["concealment_methods"], list)
            assert isinstance(row["identifiers"], list)
            if row["quantity"] is not None:
                assert type(row["quantity"]) in (int, float)
        assert_items_numbered_in_order([r["item"] for r in got], has_items="items" in body)


async def test_quantities_are_numbers_in_ndjson(world: World) -> None:
    rows = await world.ndjson_rows([("kind", "seizure"), ("territory", "TH")])

    assert [(row["commodity"], row["quantity"], row["unit"]) for row in rows] == [
        ("methamphetamine", 200000, "tablets"),
        ("ketamine", 1500, "g"),
        ("p2p", 2.5, "l"),
    ]
    assert all(type(row["quantity"]) in (int, float) for row in rows)
    assert [row["transit"] for row in rows] == [["LA", "CN"]] * 3


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_the_tlp_is_on_every_row(world: World, fmt: str) -> None:
    rows = await (world.csv_rows() if fmt == "csv" else world.ndjson_rows())

    tlp = {world.ids[name]: body.get("tlp", "AMBER") for name, (_, body) in corpus().items()}
    assert [row["tlp"] for row in rows] == [tlp[row["alert_id"]] for row in rows]
    assert {row["tlp"] for row in rows} == {"CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"}


async def test_csv_guards_free_text_that_a_spreadsheet_would_take_for_a_formula(
    world: World,
) -> None:
    rows = {world.name_of(row["alert_id"]): row for row in await world.csv_rows()}

    assert rows["formula_equals"]["summary"] == '\'=HYPERLINK("http://evil.example/x","open")'
    assert rows["formula_minus"]["summary"] == "'-350 g of cocaine swallowed, +2 pellets missing"
    assert rows["formula_minus"]["narrative"] == "'@SUM(A1:A9) is not a formula here"
    assert rows["formula_minus"]["reference"] == "'+852-0001"
    assert rows["formula_minus"]["concealment"] == "'=1+2 pellets"
    # Free text that starts otherwise is left alone.
    assert rows["meth_mail"]["summary"] == corpus()["meth_mail"][1]["summary"]


async def test_ndjson_keeps_free_text_as_posted(world: World) -> None:
    rows = {world.name_of(row["alert_id"]): row for row in await world.ndjson_rows()}

    assert rows["formula_equals"]["summary"] == '=HYPERLINK("http://evil.example/x","open")'
    assert rows["formula_minus"]["summary"] == "-350 g of cocaine swallowed, +2 pellets missing"


async def test_csv_keeps_commas_quotes_and_newlines_inside_one_cell(world: World) -> None:
    rows = {world.name_of(row["alert_id"]): row for row in await world.csv_rows()}
    meth = rows["meth_mail"]

    assert (
        meth["summary"] == 'Seized 2.35 kg, "crystal" methamphetamine\nin tea bags; parcel from TH'
    )
    assert meth["narrative"] == 'Line one, with a comma\nLine two, "quoted"\r\nLine three'
    assert meth["place"] == "Incheon, International Mail Centre"
    assert meth["identifiers"] == 'tracking_number:EE123456789TH;company:Acme "Tea", Ltd'


# --- filters ---------------------------------------------------------------------------------

FILTERS: list[tuple[str, list[tuple[str, str]], set[str]]] = [
    (
        "kind",
        [("kind", "seizure")],
        {"meth_mail", "truck", "formula_equals", "formula_minus", "for_th_only"},
    ),
    ("kind-repeated", [("kind", "pre_alert"), ("kind", "notice")], {"pre_alert_to_hk", "notice"}),
    ("priority", [("priority", "flash")], {"formula_minus"}),
    ("commodity", [("commodity", "ketamine")], {"truck", "withdrawn_request"}),
    (
        "commodity-repeated",
        [("commodity", "cocaine"), ("commodity", "nps")],
        {"formula_equals", "formula_minus", "for_th_only"},
    ),
    ("transport_mode", [("transport_mode", "sea_container")], {"formula_equals", "for_th_only"}),
    ("concealment_method", [("concealment_method", "false_bottom")], {"truck"}),
    ("detection_method", [("detection_method", "detector_dog")], {"formula_equals", "for_th_only"}),
    ("reported_by", [("reported_by", "HK-CED")], {"formula_equals", "formula_minus"}),
    ("territory", [("territory", "TH")], {"truck", "pre_alert_to_hk"}),
    ("origin", [("origin", "CO")], {"formula_equals", "for_th_only"}),
    (
        "destination",
        [("destination", "HK")],
        {"formula_equals", "formula_minus", "pre_alert_to_hk"},
    ),
    ("identifier", [("identifier", "MSCU1234567")], {"formula_equals"}),
    ("q-summary", [("q", "Yaba")], {"truck"}),
    ("q-narrative", [("q", "quoted")], {"meth_mail"}),
    (
        "occurred_from",
        [("occurred_from", "2020-06-22T00:00:00Z")],
        {"for_th_only", "withdrawn_request"},
    ),
    ("occurred_to-is-exclusive", [("occurred_to", "2020-06-17T00:30:00Z")], {"notice"}),
    (
        "occurred-between-with-offsets",
        [
            ("occurred_from", "2020-06-18T00:00:00+08:00"),
            ("occurred_to", "2020-06-19T04:00:00+02:00"),
        ],
        {"truck", "pre_alert_to_hk"},
    ),
    ("status-open", [("status", "open")], EVERYTHING - {WITHDRAWN}),
    ("status-withdrawn", [("status", "withdrawn")], {WITHDRAWN}),
    ("combined", [("kind", "seizure"), ("territory", "HK")], {"formula_equals", "formula_minus"}),
    ("nothing-matches", [("transport_mode", "mail"), ("territory", "HK")], set()),
]


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
@pytest.mark.parametrize(("params", "expected"), [pytest.param(p, e, id=n) for n, p, e in FILTERS])
async def test_the_list_filters_apply(
    world: World, params: list[tuple[str, str]], expected: set[str], fmt: str
) -> None:
    rows = await (world.csv_rows(params) if fmt == "csv" else world.ndjson_rows(params))
    listed = {world.name_of(alert["id"]) for alert in await world.listed(params)}

    exported = {world.name_of(row["alert_id"]) for row in rows}
    assert exported == expected
    assert exported == listed


async def test_filters_do_not_widen_what_a_participant_sees(world: World) -> None:
    rows = await world.csv_rows([("origin", "CO")], who="HK-CED/analyst")

    assert {world.name_of(row["alert_id"]) for row in rows} == {"formula_equals"}


async def test_an_export_that_matches_nothing_is_just_the_header(world: World) -> None:
    csv_response = await world.export({"format": "csv", "territory": "JP"})
    ndjson_response = await world.export({"format": "ndjson", "territory": "JP"})

    assert csv_response.status_code == 200
    assert csv_response.text == ",".join(COLUMNS) + "\r\n"
    assert ndjson_response.status_code == 200
    assert ndjson_response.content == b""


async def test_rows_follow_the_latest_revision(world: World) -> None:
    operation = "EXPORT-AMEND"
    await world.api.operation(operation, coordinator="RILO-AP", participants=["KR-KCS", "HK-CED"])
    alert = await world.api.report(world.keys["KR-KCS"], operation, seizure())
    amended = await world.api.client.patch(
        f"/v1/alerts/{alert['id']}",
        json={
            "items": [item("heroin", 3, "kg", "powder"), item("p2p", 750, "ml", "liquid")],
            "summary": "=Amended: heroin and P-2-P",
            "tlp": "RED",
        },
        headers=world.keys["KR-KCS"],
    )
    assert amended.status_code == 200, amended.text

    response = await world.api.client.get(
        f"/v1/operations/{operation}/export",
        params={"format": "csv"},
        headers=world.keys["HK-CED/analyst"],
    )

    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert [
        (r["alert_id"], r["tlp"], r["commodity"], float(r["quantity"]), r["unit"], r["summary"])
        for r in rows
    ] == [
        (alert["id"], "RED", "heroin", 3.0, "kg", "'=Amended: heroin and P-2-P"),
        (alert["id"], "RED", "p2p", 750.0, "ml", "'=Amended: heroin and P-2-P"),
    ]
    assert {r["updated_at"] for r in rows} == {amended.json()["updated_at"]}


async def test_a_former_participant_exports_only_its_own_alerts(world: World) -> None:
    operation = "EXPORT-LEFT"
    await world.api.operation(operation, coordinator="RILO-AP", participants=["KR-KCS", "HK-CED"])
    await world.api.report(world.keys["KR-KCS"], operation, seizure())
    own = await world.api.report(
        world.keys["HK-CED"], operation, seizure(location={"territory": "HK"})
    )
    removed = await world.api.client.delete(
        f"/v1/operations/{operation}/participants/HK-CED", headers=ADMIN
    )
    assert removed.status_code == 204, removed.text

    response = await world.api.client.get(
        f"/v1/operations/{operation}/export",
        params={"format": "ndjson"},
        headers=world.keys["HK-CED/analyst"],
    )

    assert response.status_code == 200, response.text
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [(row["alert_id"], row["reported_by"]) for row in rows] == [(own["id"], "HK-CED")]


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [("csv", "text/csv; charset=utf-8"), ("ndjson", "application/x-ndjson")],
)
async def test_content_type_and_disposition_name_the_format(
    world: World, fmt: str, media_type: str
) -> None:
    response = await world.export({"format": fmt})

    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{OPERATION}-alerts.{fmt}"'
    )
    assert response.headers["cache-control"] == "no-store"


# --- refusals --------------------------------------------------------------------------------

INVALID: list[tuple[str, dict[str, str]]] = [
    ("format", {"format": "xlsx"}),
    ("kind", {"kind": "rumour"}),
    ("priority", {"priority": "high"}),
    ("commodity", {"commodity": "glue"}),
    ("transport_mode", {"transport_mode": "teleport"}),
    ("concealment_method", {"concealment_method": "pocket"}),
    ("detection_method", {"detection_method": "luck"}),
    ("reported_by", {"reported_by": "kr kcs"}),
    ("territory", {"territory": "XX"}),
    ("origin", {"origin": "kr"}),
    ("destination", {"destination": "KOR"}),
    ("occurred_from-without-offset", {"occurred_from": "2020-06-22T00:00:00"}),
    ("occurred_to-not-a-timestamp", {"occurred_to": "yesterday"}),
    ("status", {"status": "closed"}),
    ("q-empty", {"q": ""}),
    ("q-without-words", {"q": "!!!"}),
    ("unknown-parameter", {"foo": "bar"}),
    ("misspelt-filter", {"kinds": "seizure"}),
]


@pytest.mark.parametrize("params", [pytest.param(p, id=n) for n, p in INVALID])
async def test_an_invalid_query_is_unprocessable(world: World, params: dict[str, str]) -> None:
    response = await world.export(params)

    assert_problem(response, 422)


@pytest.mark.parametrize("who", ["RILO-AP", "HK-CED", "admin"])
async def test_keys_without_the_analyst_role_are_refused(world: World, who: str) -> None:
    headers = ADMIN if who == "admin" else world.keys[who]

    response = await world.api.client.get(EXPORT, params={"format": "csv"}, headers=headers)

    assert_problem(response, 403)


async def test_a_request_without_a_key_is_unauthorised(world: World) -> None:
    response = await world.api.client.get(EXPORT, params={"format": "csv"})

    assert_problem(response, 401)


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
        f"/v1/operations/{operation}/export", params={"format": "csv"}, headers=world.keys[who]
    )

    assert_problem(response, 404)


# --- streaming, from a real server -----------------------------------------------------------

STREAMED_ALERTS = 1_300  # the export reads 500 alerts at a time: three reads at least
WRITERS = 10
TWO_ITEMS_EVERY = 5


async def report_many(
    client: httpx.AsyncClient, code: str, headers: dict[str, str], numbers: range
) -> dict[str, int]:
    """Report one alert per number, one request at a time; their ids and item counts."""
    created: dict[str, int] = {}
    for n in numbers:
        items = [item("methamphetamine", 1 + n / 1000, "kg", "crystal")]
        if n % TWO_ITEMS_EVERY == 0:
            items.append(item("ketamine", n + 1, "g", "powder"))
        response = await client.post(
            f"/v1/operations/{code}/alerts",
            json=seizure(items=items, summary=f"Streamed export {n}", reference=f"S-{n}"),
            headers=headers,
        )
        assert response.status_code == 201, response.text
        created[response.json()["id"]] = len(items)
    return created


async def read_streamed(
    client: httpx.AsyncClient, code: str, headers: dict[str, str], fmt: str
) -> tuple[list[bytes], list[str]]:
    """The export as it arrives, in raw chunks, and the alert id of each of its rows."""
    chunks: list[bytes] = []
    async with client.stream(
        "GET", f"/v1/operations/{code}/export", params={"format": fmt}, headers=headers
    ) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
    body = b"".join(chunks).decode("utf-8")
    if fmt == "ndjson":
        return chunks, [json.loads(line)["alert_id"] for line in body.splitlines()]
    header, *rows = list(csv.reader(io.StringIO(body, newline="")))
    assert header == COLUMNS
    return chunks, [row[COLUMNS.index("alert_id")] for row in rows]


@pytest.mark.slow
async def test_a_large_export_is_streamed_in_chunks(database_url: str, tmp_path: Path) -> None:
    async with relay_server(database_url, tmp_path, name="export") as server:
        admin = await admin_headers(server)
        async with server.client(timeout=60.0) as client:
            operation = await set_up_operation(
                client, admin, administrations=3, member_keys=WRITERS
            )
            coordinator = (
                await client.get(f"/v1/operations/{operation.code}", headers=admin)
            ).json()["coordinator"]
            key = await client.post(
                "/v1/keys",
                json={"administration": coordinator, "role": "analyst", "label": "export"},
                headers=admin,
            )
            assert key.status_code == 201, key.text
            analyst = {"Authorization": f"Bearer {key.json()['token']}"}
            created: dict[str, int] = {}
            for part in await asyncio.gather(
                *(
                    report_many(client, operation.code, headers, range(w, STREAMED_ALERTS, WRITERS))
                    for w, headers in enumerate(operation.members)
                )
            ):
                created.update(part)

            streamed = {
                fmt: await read_streamed(client, operation.code, analyst, fmt)
                for fmt in ("csv", "ndjson")
            }

    assert len(created) == STREAMED_ALERTS
    # Chunked transfer keeps the server's flushes apart: the header went out on its own,
    # before the first alert was read.
    assert streamed["csv"][0][0] == (",".join(COLUMNS) + "\r\n").encode()
    for fmt, (chunks, alert_ids) in streamed.items():
        assert len(chunks) >= 3, fmt
        assert len(alert_ids) == sum(created.values()), fmt
        assert Counter(alert_ids) == created, fmt
