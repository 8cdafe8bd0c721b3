"""Listing an operation's alerts (API.md section 6, list endpoint) under the rule of section 3.

Every test here shares one world per store, built once: ICEBREAK-II holds a fixed corpus
of six alerts that no test changes; tests that write do so in operations of their own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import count
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.services import search
from tests.api import ADMIN, Api, assert_problem, pre_alert, seizure
from tests.conftest import client_for, reset

ALERTS = "/v1/operations/ICEBREAK-II/alerts"


def corpus() -> dict[str, tuple[str, dict[str, Any]]]:
    """Six alerts of ICEBREAK-II by name: (reporting administration, body), in reporting order."""
    return {
        "meth_mail": ("KR-KCS", seizure()),
        "cocaine_container": (
            "HK-CED",
            seizure(
                priority="urgent",
                occurred_at="2020-06-18T14:00:00+08:00",
                location={"territory": "HK", "place": "Kwai Chung Container Terminal"},
                transport_mode="sea_container",
                route={"origin": "CO", "transit": ["PA"], "destination": "HK"},
                items=[{"commodity": "cocaine", "form": "powder", "quantity": 120, "unit": "kg"}],
                concealment_methods=["container_structure"],
                concealment="Bricks welded into the container floor",
                detection_method="detector_dog",
                identifiers=[{"type": "container", "value": "MSCU1234567"}],
                offenders={"count": 0, "nationalities": []},
                summary="120 kg cocaine in a refrigerated container from CO",
                narrative="Canine indication at the terminal quay",
                reference="CED-2020-118",
            ),
        ),
        "heroin_courier": (
            "TH-CUS",
            pre_alert(
                priority="flash",
                occurred_at="2020-06-19T03:00:00Z",
                transport_mode="air_passenger",
                items=[{"commodity": "heroin", "form": "other", "quantity": 0.8, "unit": "kg"}],
                concealment_methods=["swallowed"],
                detection_method="risk_profiling",
                identifiers=[{"type": "flight", "value": "TG628"}],
                summary="Courier on TG628 carrying swallowed heroin pellets",
                audience={"scope": "operation"},
            ),
        ),
        "ketamine_request": (
            "KR-KCS",
            {
                "kind": "request",
                "occurred_at": "2020-06-20T08:00:00Z",
                "location": {"territory": "KR"},
                "transport_mode": "express_courier",
                "route": {"origin": "DE", "destination": "KR"},
                "items": [{"commodity": "ketamine", "form": "powder", "quantity": 5, "unit": "kg"}],
                "concealment_methods": ["electronics"],
                "detection_method": "physical_inspection",
                "identifiers": [{"type": "airway_bill", "value": "176-12345675"}],
                "summary": "Request: trace the shipper of ketamine hidden in speakers",
            },
        ),
        "precursor_notice": (
            "RILO-AP",
            {
                "kind": "notice",
                "occurred_at": "2020-06-16T00:00:00Z",
                "location": {"territory": "KR"},
                "summary": "Bulletin on P-2-P precursor diversion",
            },
        ),
        "tablets_truck": (
            "TH-CUS",
            seizure(
                occurred_at="2020-06-18T20:00:00Z",
                location={"territory": "TH"},
                transport_mode="road_vehicle",
                route={"origin": "MM", "transit": [], "destination": "TH"},
                items=[
                    {
                        "commodity": "methamphetamine",
                        "form": "tablet",
                        "quantity": 200000,
                        "unit": "tablets",
                    },
                    {"commodity": "ketamine", "form": "powder", "quantity": 2, "unit": "kg"},
                ],
                concealment_methods=["vehicle_compartment", "false_bottom"],
                concealment=None,
                detection_method="intelligence",
                identifiers=[{"type": "vehicle", "value": "TH-1234-CM"}],
                summary="Yaba tablets and ketamine under a false floor of a truck",
                narrative=None,
            ),
        ),
    }


WITHDRAWN = "ketamine_request"
BY_OCCURRED_AT = [
    "precursor_notice",
    "meth_mail",
    "cocaine_container",
    "tablets_truck",
    "heroin_courier",
    "ketamine_request",
]
BY_SEQ = list(corpus())


@dataclass
class World:
    api: Api
    keys: dict[str, dict[str, str]]
    ids: dict[str, str]
    codes: count[int]

    def names(self, items: list[dict[str, Any]]) -> list[str]:
        by_id = {alert_id: name for name, alert_id in self.ids.items()}
        return [by_id.get(alert["id"], alert["id"]) for alert in items]

    async def listed(
        self, params: Any = None, *, who: str = "RILO-AP", operation: str = "ICEBREAK-II"
    ) -> list[str]:
        """Names of the alerts ``who`` lists (one page of up to 500)."""
        response = await self.api.client.get(
            f"/v1/operations/{operation}/alerts",
            params=params or {"limit": 500},
            headers=self.keys[who],
        )
        assert response.status_code == 200, response.text
        return self.names(response.json()["items"])

    async def pages(
        self, params: dict[str, Any], *, who: str = "RILO-AP", operation: str = "ICEBREAK-II"
    ) -> AsyncIterator[dict[str, Any]]:
        """Each page ``who`` lists, following ``next_cursor``; the next is asked for only
        once the caller is done with the one before."""
        cursor = None
        for _ in range(50):
            response = await self.api.client.get(
                f"/v1/operations/{operation}/alerts",
                params={**params, **({"cursor": cursor} if cursor else {})},
                headers=self.keys[who],
            )
            assert response.status_code == 200, response.text
            page: dict[str, Any] = response.json()
            yield page
            if (cursor := page["next_cursor"]) is None:
                return
        raise AssertionError("the pages never ended")

    async def operation(self, *, participants: list[str]) -> str:
        """A new operation, coordinated by RILO-AP, for a test that writes."""
        code = f"OWN-{next(self.codes)}"
        await self.api.operation(code, coordinator="RILO-AP", participants=participants)
        return code

    async def report(self, who: str, operation: str, body: dict[str, Any], name: str) -> str:
        self.ids[name] = (await self.api.report(self.keys[who], operation, body))["id"]
        return self.ids[name]


@pytest.fixture(scope="module")
async def world(app: FastAPI) -> AsyncIterator[World]:
    runtime = app.state.runtime
    await reset(runtime)
    async with client_for(app) as client:
        api = Api(client, runtime)
        keys = await api.ice_break()
        ids: dict[str, str] = {}
        for name, (who, body) in corpus().items():
            ids[name] = (await api.report(keys[who], "ICEBREAK-II", body))["id"]
        withdrawn = await client.post(
            f"/v1/alerts/{ids[WITHDRAWN]}/withdraw",
            json={"reason": "Shipper identified"},
            headers=keys["KR-KCS"],
        )
        assert withdrawn.status_code == 200, withdrawn.text
        yield World(api, keys, ids, count(1))


# --- filters -----------------------------------------------------------------------------

FILTERS: list[tuple[str, list[tuple[str, str]], set[str]]] = [
    ("kind", [("kind", "seizure")], {"meth_mail", "cocaine_container", "tablets_truck"}),
    (
        "kind-repeated",
        [("kind", "pre_alert"), ("kind", "request")],
        {"heroin_courier", "ketamine_request"},
    ),
    ("kind-notice", [("kind", "notice")], {"precursor_notice"}),
    ("priority", [("priority", "urgent")], {"cocaine_container"}),
    (
        "priority-repeated",
        [("priority", "urgent"), ("priority", "flash")],
        {"cocaine_container", "heroin_courier"},
    ),
    ("commodity", [("commodity", "ketamine")], {"ketamine_request", "tablets_truck"}),
    (
        "commodity-repeated",
        [("commodity", "methamphetamine"), ("commodity", "cocaine")],
        {"meth_mail", "cocaine_container", "tablets_truck"},
    ),
    ("transport_mode", [("transport_mode", "mail")], {"meth_mail"}),
    (
        "transport_mode-repeated",
        [("transport_mode", "sea_container"), ("transport_mode", "road_vehicle")],
        {"cocaine_container", "tablets_truck"},
    ),
    ("concealment_method", [("concealment_method", "false_bottom")], {"tablets_truck"}),
    (
        "concealment_method-repeated",
        [("concealment_method", "swallowed"), ("concealment_method", "tea_packaging")],
        {"heroin_courier", "meth_mail"},
    ),
    ("detection_method", [("detection_method", "intelligence")], {"tablets_truck"}),
    (
        "detection_method-repeated",
        [("detection_method", "x_ray"), ("detection_method", "detector_dog")],
        {"meth_mail", "cocaine_container"},
    ),
    ("reported_by", [("reported_by", "TH-CUS")], {"heroin_courier", "tablets_truck"}),
    ("reported_by-coordinator", [("reported_by", "RILO-AP")], {"precursor_notice"}),
    ("reported_by-outsider", [("reported_by", "JP-CUS")], set()),
    ("territory", [("territory", "KR")], {"meth_mail", "ketamine_request", "precursor_notice"}),
    ("origin", [("origin", "TH")], {"meth_mail", "heroin_courier"}),
    ("destination", [("destination", "HK")], {"cocaine_container", "heroin_courier"}),
    (
        "occurred_from",
        [("occurred_from", "2020-06-18T00:00:00Z")],
        {"cocaine_container", "tablets_truck", "heroin_courier", "ketamine_request"},
    ),
    ("occurred_to", [("occurred_to", "2020-06-18T00:00:00Z")], {"precursor_notice", "meth_mail"}),
    (
        "occurred-between-with-offsets",
        [
            ("occurred_from", "2020-06-18T12:00:00+09:00"),
            ("occurred_to", "2020-06-19T09:00:00+09:00"),
        ],
        {"cocaine_container", "tablets_truck"},
    ),
    ("identifier", [("identifier", "MSCU1234567")], {"cocaine_container"}),
    ("identifier-is-exact", [("identifier", "MSCU123")], set()),
    ("q-summary", [("q", "Yaba")], {"tablets_truck"}),
    ("q-narrative", [("q", "quay")], {"cocaine_container"}),
    ("q-concealment", [("q", "welded")], {"cocaine_container"}),
    ("q-every-word", [("q", "ketamine speakers")], {"ketamine_request"}),
    ("status-withdrawn", [("status", "withdrawn")], {"ketamine_request"}),
    ("status-open", [("status", "open")], set(BY_SEQ) - {WITHDRAWN}),
    ("combined-kind-territory", [("kind", "seizure"), ("territory", "TH")], {"tablets_truck"}),
    (
        "combined-commodity-status",
        [("commodity", "ketamine"), ("status", "open")],
        {"tablets_truck"},
    ),
    (
        "combined-kind-priority-origin",
        [("kind", "seizure"), ("priority", "routine"), ("origin", "TH")],
        {"meth_mail"},
    ),
    (
        "combined-detection-territory",
        [("detection_method", "x_ray"), ("detection_method", "intelligence"), ("territory", "TH")],
        {"tablets_truck"},
    ),
    (
        "combined-q-kind-reported_by",
        [("q", "ketamine"), ("kind", "seizure"), ("reported_by", "TH-CUS")],
        {"tablets_truck"},
    ),
    ("combined-nothing-matches", [("transport_mode", "mail"), ("territory", "HK")], set()),
]


@pytest.mark.parametrize(("params", "expected"), [pytest.param(p, e, id=n) for n, p, e in FILTERS])
async def test_each_filter_keeps_exactly_the_matching_alerts(
    world: World, params: list[tuple[str, str]], expected: set[str]
) -> None:
    names = await world.listed([*params, ("limit", "500")])

    assert sorted(names) == sorted(expected)


async def test_without_filters_every_alert_is_listed_newest_first_withdrawn_included(
    world: World,
) -> None:
    response = await world.api.client.get(ALERTS, headers=world.keys["RILO-AP"])

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["next_cursor"] is None
    assert world.names(response.json()["items"]) == BY_OCCURRED_AT[::-1]


async def test_listed_alerts_are_the_full_stored_alerts(world: World) -> None:
    listed = await world.api.client.get(
        ALERTS, params={"identifier": "TG628"}, headers=world.keys["KR-KCS"]
    )
    read = await world.api.client.get(
        f"/v1/alerts/{world.ids['heroin_courier']}", headers=world.keys["KR-KCS"]
    )

    assert listed.json()["items"] == [read.json()]


async def test_listed_alerts_carry_their_acks_and_reporters_as_read_alone(world: World) -> None:
    operation = await world.operation(participants=["KR-KCS", "HK-CED", "TH-CUS"])
    acked = await world.report("TH-CUS", operation, seizure(), "acked-twice")
    await world.report("KR-KCS", operation, seizure(), "unacked")
    for who, status in (("HK-CED", "received"), ("KR-KCS", "no_trace"), ("HK-CED", "intercepted")):
        response = await world.api.client.post(
            f"/v1/alerts/{acked}/acks", json={"status": status}, headers=world.keys[who]
        )
        assert response.status_code == 201, response.text

    listed = await world.api.client.get(
        f"/v1/operations/{operation}/alerts", headers=world.keys["KR-KCS"]
    )
    read = [
        (await world.api.client.get(f"/v1/alerts/{world.ids[name]}", headers=world.keys["KR-KCS"]))
        for name in ("unacked", "acked-twice")
    ]

    items = listed.json()["items"]
    assert items == [r.json() for r in read]
    assert [a["reported_by"] for a in items] == ["KR-KCS", "TH-CUS"]
    assert sorted((a["administration"], a["status"]) for a in items[1]["acks"]) == [
        ("HK-CED", "intercepted"),
        ("KR-KCS", "no_trace"),
    ]
    assert items[0]["acks"] == []


# --- sorting and paging -------------------------------------------------------------------

SORTS = {
    "-occurred_at": BY_OCCURRED_AT[::-1],
    "occurred_at": BY_OCCURRED_AT,
    "-seq": BY_SEQ[::-1],
    "seq": BY_SEQ,
}


@pytest.mark.parametrize("sort", list(SORTS))
async def test_each_sort_orders_the_alerts_across_pages(world: World, sort: str) -> None:
    seen: list[str] = []
    async for page in world.pages({"sort": sort, "limit": 2}):
        assert len(page["items"]) <= 2
        seen += world.names(page["items"])

    assert seen == SORTS[sort]


async def walk(
    world: World, operation: str, sort: str, between_pages: list[dict[str, Any]]
) -> list[str]:
    """Every page of ``operation`` as KR-KCS sees it, two at a time, reporting one of
    ``between_pages`` (by HK-CED) after each page."""
    seen: list[str] = []
    added = iter(between_pages)
    async for page in world.pages({"sort": sort, "limit": 2}, who="KR-KCS", operation=operation):
        seen += world.names(page["items"])
        body = next(added, None) if page["next_cursor"] else None
        if body is not None:
            await world.report("HK-CED", operation, body, body["summary"])
    return seen


async def test_paging_by_occurred_at_returns_each_alert_once_while_alerts_arrive(
    world: World,
) -> None:
    code = await world.operation(participants=["KR-KCS", "HK-CED"])
    times = [
        "2020-06-17T10:00:00Z",
        "2020-06-17T10:00:00Z",
        "2020-06-17T10:00:00Z",
        "2020-06-16T00:00:00Z",
        "2020-06-18T00:00:00Z",
        "2020-06-17T10:00:00Z",
        "2020-06-15T00:00:00Z",
    ]
    for n, at in enumerate(times):
        await world.report(
            "KR-KCS", code, seizure(occurred_at=at, summary=f"before-{n}"), f"before-{n}"
        )
    arriving = [
        seizure(occurred_at="2020-06-19T00:00:00Z", summary="newer than every page"),
        seizure(occurred_at="2020-06-17T10:00:00Z", summary="tied with an earlier page"),
        seizure(occurred_at="2020-06-01T00:00:00Z", summary="older than every page"),
    ]

    seen = await walk(world, code, "-occurred_at", arriving)

    # Ties in occurred_at go by seq; what arrives ahead of the cursor shows up, the rest does not.
    before = ["before-4", "before-5", "before-2", "before-1", "before-0", "before-3", "before-6"]
    assert seen == [*before, "older than every page"]


async def test_paging_by_seq_returns_each_alert_once_and_the_newly_arrived_at_the_end(
    world: World,
) -> None:
    code = await world.operation(participants=["KR-KCS", "HK-CED"])
    for n in range(5):
        await world.report("KR-KCS", code, seizure(summary=f"early-{n}"), f"early-{n}")
    arriving = [seizure(summary=f"late-{n}") for n in range(3)]

    seen = await walk(world, code, "seq", arriving)

    assert seen == [f"early-{n}" for n in range(5)] + [f"late-{n}" for n in range(3)]


# --- refused queries ----------------------------------------------------------------------

BAD_QUERIES: list[tuple[str, list[tuple[str, str]]]] = [
    ("kind", [("kind", "bogus")]),
    ("kind-case", [("kind", "SEIZURE")]),
    ("kind-one-of-two", [("kind", "seizure"), ("kind", "bogus")]),
    ("priority", [("priority", "high")]),
    ("commodity", [("commodity", "sugar")]),
    ("transport_mode", [("transport_mode", "boat")]),
    ("concealment_method", [("concealment_method", "hollow")]),
    ("detection_method", [("detection_method", "psychic")]),
    ("reported_by", [("reported_by", "kr-kcs")]),
    ("territory", [("territory", "XX")]),
    ("territory-case", [("territory", "kr")]),
    ("origin", [("origin", "ZZ")]),
    ("destination", [("destination", "KOR")]),
    ("occurred_from-without-offset", [("occurred_from", "2020-06-17T00:00:00")]),
    ("occurred_from-date", [("occurred_from", "2020-06-17")]),
    ("occurred_to-words", [("occurred_to", "yesterday")]),
    ("status", [("status", "closed")]),
    ("status-case", [("status", "OPEN")]),
    ("sort-unknown", [("sort", "occurred")]),
    ("sort-field", [("sort", "-kind")]),
    ("limit-0", [("limit", "0")]),
    ("limit-501", [("limit", "501")]),
    ("limit-negative", [("limit", "-1")]),
    ("limit-word", [("limit", "ten")]),
    ("cursor-garbage", [("cursor", "not a cursor!")]),
    ("cursor-base64-list", [("cursor", base64.urlsafe_b64encode(b"[1, 2]").decode())]),
    ("cursor-base64-empty-object", [("cursor", base64.urlsafe_b64encode(b"{}").decode())]),
    ("unknown-parameter", [("foo", "1")]),
    ("misspelt-filter", [("kinds", "seizure")]),
]


@pytest.mark.parametrize("params", [pytest.param(p, id=n) for n, p in BAD_QUERIES])
async def test_a_bad_query_is_422(world: World, params: list[tuple[str, str]]) -> None:
    query = httpx.QueryParams(tuple(params))

    response = await world.api.client.get(ALERTS, params=query, headers=world.keys["KR-KCS"])

    assert_problem(response, 422)


async def test_a_unix_time_is_not_a_timestamp_filter(world: World) -> None:
    response = await world.api.client.get(
        ALERTS, params={"occurred_to": "1592352000"}, headers=world.keys["KR-KCS"]
    )

    assert_problem(response, 422)


def forged(fields: dict[str, Any]) -> str:
    """A cursor the server never issued, in the shape of those it does."""
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


AT = "2020-06-17T00:00:00+00:00"
FORGED_CURSORS = [
    pytest.param({"sort": "-occurred_at", "seq": 1, "at": "yesterday"}, id="at-garbage"),
    pytest.param({"sort": "-occurred_at", "seq": "1", "at": AT}, id="seq-string"),
    pytest.param({"sort": "-occurred_at", "seq": 2**70, "at": AT}, id="seq-huge"),
    pytest.param({"sort": "-occurred_at", "seq": 2**63, "at": AT}, id="seq-above-int64"),
    pytest.param({"sort": "seq", "seq": -(2**63) - 1}, id="seq-below-int64"),
    pytest.param({"sort": "-occurred_at", "at": AT}, id="seq-missing"),
    pytest.param({"sort": "-occurred_at", "seq": 1}, id="at-missing"),
    pytest.param({"seq": 1, "at": AT}, id="sort-missing"),
    pytest.param(
        {"sort": "-occurred_at", "seq": 1, "at": "2020-06-17T00:00:00"}, id="at-without-offset"
    ),
    pytest.param(
        {"sort": "-occurred_at", "seq": 1, "at": "0001-01-01T00:00:00+01:00"}, id="at-before-utc"
    ),
    pytest.param(
        {"sort": "occurred_at", "seq": 1, "at": "9999-12-31T23:59:59-01:00"}, id="at-after-utc"
    ),
]


@pytest.mark.parametrize("fields", FORGED_CURSORS)
async def test_a_forged_cursor_is_422(world: World, fields: dict[str, Any]) -> None:
    params = {"cursor": forged(fields)}

    response = await world.api.client.get(ALERTS, params=params, headers=world.keys["RILO-AP"])

    assert_problem(response, 422)


async def test_a_cursor_from_another_sort_is_422(world: World) -> None:
    first = await world.api.client.get(
        ALERTS, params={"sort": "seq", "limit": 1}, headers=world.keys["RILO-AP"]
    )
    cursor = first.json()["next_cursor"]

    response = await world.api.client.get(
        ALERTS, params={"cursor": cursor}, headers=world.keys["RILO-AP"]
    )

    assert_problem(response, 422)


FTS_SYNTAX = [
    '"',
    "*",
    "NEAR(",
    "-",
    ":",
    "(",
    ")",
    "'",
    "\\",
    "%",
    "_",
    "<->",
    "!",
    "^",
    "AND",
    "OR",
    "NOT",
    "tea AND",
    "OR tea",
    "NOT tea",
    "-tea",
    "tea -gift",
    "summary:tea",
    "NEAR(tea gift)",
    "tea & gift | !x",
    "tea:*",
    'tea" OR "x',
    "\u0000",
]
FTS_WITH_ONLY_TEA = ['"tea', 'tea"', "tea*", "(tea)", "{tea}", "tea'", "TEA"]


@pytest.mark.parametrize("q", FTS_SYNTAX)
async def test_full_text_syntax_in_q_is_never_a_server_error(world: World, q: str) -> None:
    response = await world.api.client.get(ALERTS, params={"q": q}, headers=world.keys["RILO-AP"])

    if response.status_code == 200:
        assert set(response.json()) == {"items", "next_cursor"}
    else:
        assert_problem(response, 422)


@pytest.mark.parametrize("q", FTS_WITH_ONLY_TEA)
async def test_punctuation_around_a_word_is_not_query_syntax(world: World, q: str) -> None:
    names = await world.listed({"q": q})

    assert names == ["meth_mail"]


# A full-text page is read one of three ways on each store, by how many alerts match (see
# app/services/search.py). Thresholds set here force each way on this small corpus:
# SQLite's FEW_MATCHES and COMMON_MATCHES; PostgreSQL's FULLTEXT_SAMPLE (1: a sample too
# small to fill a page) and FULLTEXT_IN_ORDER (0: sort order; beyond any count: GIN).
FULLTEXT_READS = {
    "start-from-matches": (10**9, 10**9, 10**9, 10**9),
    "test-against-gathered-matches": (-1, 10**9, 1, 0),
    "look-each-alert-up": (-1, 0, 1, 10**9),
}


@pytest.mark.parametrize("read", FULLTEXT_READS)
@pytest.mark.parametrize("who", ["RILO-AP", "HK-CED"])
async def test_full_text_pages_are_the_same_however_the_store_reads_them(
    world: World, monkeypatch: pytest.MonkeyPatch, read: str, who: str
) -> None:
    few, common, sample, in_order = FULLTEXT_READS[read]
    monkeypatch.setattr(search, "FEW_MATCHES", few)
    monkeypatch.setattr(search, "COMMON_MATCHES", common)
    monkeypatch.setattr(search, "FULLTEXT_SAMPLE", sample)
    monkeypatch.setattr(search, "FULLTEXT_IN_ORDER", in_order)
    visible = set(await world.listed(who=who))
    matching = {"ketamine": {"ketamine_request", "tablets_truck"}, "tea": {"meth_mail"}}
    for q, expected in matching.items():
        names = []  # a page at a time, so that every page after the first uses a cursor
        async for page in world.pages({"q": q, "limit": "1"}, who=who):
            names += world.names(page["items"])
        assert names == [n for n in reversed(BY_OCCURRED_AT) if n in expected & visible]


# --- visibility ----------------------------------------------------------------------------


async def test_an_operation_not_taken_part_in_is_404_like_a_missing_one(world: World) -> None:
    client = world.api.client
    missing = assert_problem(
        await client.get("/v1/operations/NO-SUCH-OP/alerts", headers=world.keys["JP-CUS"]), 404
    )

    for who in ("JP-CUS", "JP-CUS/analyst"):
        outsider = assert_problem(await client.get(ALERTS, headers=world.keys[who]), 404)
        assert (outsider["status"], outsider["title"]) == (missing["status"], missing["title"])
    assert_problem(
        await client.get("/v1/operations/OTHER-OP/alerts", headers=world.keys["HK-CED"]), 404
    )


async def test_a_restricted_alert_is_listed_only_for_its_audience(world: World) -> None:
    code = await world.operation(participants=["KR-KCS", "HK-CED", "TH-CUS"])
    body = seizure(audience={"scope": "restricted", "recipients": ["TH-CUS"]})
    await world.report("KR-KCS", code, body, "for-thailand")
    await world.report("KR-KCS", code, seizure(), "for-everyone")

    assert await world.listed(operation=code, who="HK-CED") == ["for-everyone"]
    assert sorted(await world.listed(operation=code, who="TH-CUS")) == [
        "for-everyone",
        "for-thailand",
    ]
    assert sorted(await world.listed(operation=code, who="KR-KCS")) == [
        "for-everyone",
        "for-thailand",
    ]


async def test_the_coordinator_lists_every_alert(world: World) -> None:
    code = await world.operation(participants=["KR-KCS", "HK-CED", "TH-CUS"])
    await world.report("HK-CED", code, seizure(), "wide")
    await world.report(
        "KR-KCS", code, seizure(audience={"scope": "restricted", "recipients": []}), "to-nobody"
    )
    await world.report(
        "HK-CED", code, seizure(audience={"scope": "restricted", "recipients": ["TH-CUS"]}), "to-th"
    )

    assert sorted(await world.listed(operation=code)) == ["to-nobody", "to-th", "wide"]
    assert sorted(await world.listed(operation=code, who="HK-CED")) == ["to-th", "wide"]


async def test_a_removed_participant_lists_only_its_own_alerts(world: World) -> None:
    code = await world.operation(participants=["KR-KCS", "HK-CED", "TH-CUS"])
    await world.report("TH-CUS", code, seizure(), "own")
    await world.report("KR-KCS", code, seizure(), "others-wide")
    await world.report(
        "KR-KCS",
        code,
        seizure(audience={"scope": "restricted", "recipients": ["TH-CUS"]}),
        "others-to-th",
    )
    removed = await world.api.client.delete(
        f"/v1/operations/{code}/participants/TH-CUS", headers=ADMIN
    )
    assert removed.status_code == 204
    await world.report("KR-KCS", code, seizure(), "after-removal")

    assert await world.listed(operation=code, who="TH-CUS") == ["own"]
    assert await world.listed({"kind": "seizure"}, operation=code, who="TH-CUS") == ["own"]
    client, th = world.api.client, world.keys["TH-CUS"]
    assert (await client.get(f"/v1/alerts/{world.ids['own']}", headers=th)).status_code == 200
    assert_problem(await client.get(f"/v1/alerts/{world.ids['others-wide']}", headers=th), 404)
    assert sorted(await world.listed(operation=code, who="HK-CED")) == [
        "after-removal",
        "others-wide",
        "own",
    ]


# PostgreSQL reads a full-text page from a sample of the sort order first (search.py); these
# settings make the sample fill pages, cover everything, or fall back to the GIN index.
SAMPLED_READS = {"page-from-sample": (2, 0), "sample-holds-all": (10**9, 0), "gin": (1, 10**9)}


@pytest.mark.parametrize("read", SAMPLED_READS)
@pytest.mark.parametrize("sort", list(SORTS))
async def test_full_text_pages_follow_every_sort_however_they_are_sampled(
    world: World, monkeypatch: pytest.MonkeyPatch, read: str, sort: str
) -> None:
    code = await world.operation(participants=["KR-KCS"])
    # Seven alerts name the word, two at the same instant; two others do not.
    times = ["10:00", "11:00", "11:00", "09:00", "12:00", "08:00", "13:00", "10:30", "07:00"]
    for number, at in enumerate(times):
        summary = "amphora parcel" if number < 7 else "plain parcel"
        body = seizure(occurred_at=f"2020-06-17T{at}:00Z", summary=summary)
        await world.report("KR-KCS", code, body, f"{code}-{number}")
    sample, in_order = SAMPLED_READS[read]
    monkeypatch.setattr(search, "FULLTEXT_SAMPLE", sample)
    monkeypatch.setattr(search, "FULLTEXT_IN_ORDER", in_order)
    every = await world.listed({"sort": sort, "limit": 500}, operation=code)
    expected = [name for name in every if int(name.rsplit("-", 1)[1]) < 7]

    for limit in ("1", "2"):
        names = []
        async for page in world.pages(
            {"q": "amphora", "sort": sort, "limit": limit}, operation=code
        ):
            names += world.names(page["items"])
        assert names == expected, (limit, names)


def test_every_commodity_has_its_own_bit_in_an_int4() -> None:
    from app.models.alert import COMMODITY_BITS, commodity_mask
    from app.schemas.vocabulary import Commodity

    assert sorted(COMMODITY_BITS) == sorted(c.value for c in Commodity)
    assert len(COMMODITY_BITS) <= 31  # PostgreSQL's integer, sign bit left alone
    masks = [commodity_mask([c]) for c in COMMODITY_BITS]
    assert len(set(masks)) == len(masks) and all(m & (m - 1) == 0 for m in masks)


async def test_amending_an_alerts_items_moves_it_between_commodity_filters(world: World) -> None:
    code = await world.operation(participants=["KR-KCS", "HK-CED"])
    body = seizure(items=[{"commodity": "heroin", "quantity": 1, "unit": "kg"}])
    alert_id = await world.report("KR-KCS", code, body, "amended items")

    async def under(commodity: str) -> list[str]:
        return await world.listed({"commodity": commodity}, operation=code)

    assert (await under("heroin"), await under("fentanyl")) == (["amended items"], [])
    items = [
        {"commodity": "fentanyl", "quantity": 20, "unit": "g"},
        {"commodity": "other_precursor", "quantity": 3, "unit": "l"},
    ]
    current = await world.api.client.get(f"/v1/alerts/{alert_id}", headers=world.keys["KR-KCS"])
    response = await world.api.client.patch(
        f"/v1/alerts/{alert_id}",
        json={"items": items},
        headers={**world.keys["KR-KCS"], "If-Match": current.headers["ETag"]},
    )
    assert response.status_code == 200, response.text

    assert await under("heroin") == []
    assert await under("fentanyl") == await under("other_precursor") == ["amended items"]
    # The export reads the same filter.
    export = await world.api.client.get(
        f"/v1/operations/{code}/export",
        params={"format": "ndjson", "commodity": "heroin"},
        headers=world.keys["RILO-AP/analyst"],
    )
    assert export.status_code == 200 and export.text == ""
