"""Malformed alert bodies and merge patches are refused with 422 and leave nothing behind
(API.md sections 1 and 5)."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from tests.api import Api, assert_problem, pre_alert, seizure
from tests.conftest import client_for, reset

ALERTS = "/v1/operations/ICEBREAK-II/alerts"
JSON = {"Content-Type": "application/json"}
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Raw:
    """A body sent exactly as these bytes (for text that ``json.dumps`` would not produce)."""

    text: bytes


def changed(base: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    """``base`` with the field at ``path`` set to ``value``."""
    body = copy.deepcopy(base)
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return body


def without(base: dict[str, Any], path: Path) -> dict[str, Any]:
    """``base`` with the field at ``path`` left out."""
    body = copy.deepcopy(base)
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return body


def raw_with(base: dict[str, Any], path: Path, literal: str) -> Raw:
    """``base`` as JSON text with the field at ``path`` replaced by the JSON ``literal``."""
    marker = "__RAW_LITERAL__"
    return Raw(json.dumps(changed(base, path, marker)).replace(f'"{marker}"', literal).encode())


def in_minutes(minutes: int) -> Callable[[], dict[str, Any]]:
    """A seizure whose ``occurred_at`` lies ``minutes`` ahead of the moment it is sent."""
    return lambda: seizure(occurred_at=(datetime.now(UTC) + timedelta(minutes=minutes)).isoformat())


def dotted(path: Path) -> str:
    return ".".join(str(step) for step in path)


def encode(body: Any) -> bytes:
    if callable(body):
        body = body()
    if isinstance(body, Raw):
        return body.text
    # ensure_ascii writes lone surrogates as the escapes a careless client would send
    return json.dumps(body).encode()


# --- malformed new alerts ----------------------------------------------------------------

BAD_ENUMS: list[tuple[Path, list[str]]] = [
    (("kind",), ["bogus", "Seizure", "SEIZURE", ""]),
    (("priority",), ["normal", "URGENT"]),
    (("transport_mode",), ["teleport", "Mail"]),
    (("detection_method",), ["psychic", "x-ray"]),
    (("concealment_methods", 0), ["hollow_book"]),
    (("items", 0, "commodity"), ["sugar", "Methamphetamine", "p-2-p"]),
    (("items", 0, "form"), ["gas"]),
    (("items", 0, "unit"), ["lb", "KG"]),
    (("identifiers", 0, "type"), ["passport"]),
    (("tlp",), ["WHITE", "amber", "AMBER-STRICT"]),
    (("audience", "scope"), ["public", "everyone"]),
]

WRONG_TYPES: list[tuple[Path, list[Any]]] = [
    (
        ("occurred_at",),
        [1592386200, 1592386200.5, True, ["2020-06-17T00:30:00Z"], {"at": "2020-06-17T00:30:00Z"}],
    ),
    (("items", 0, "quantity"), ["2.35", True, None, [2.35]]),
    (("summary",), [42, True, ["a summary"]]),
    (("kind",), [1]),
    (("priority",), [1]),
    (("tlp",), [2]),
    (("location",), ["KR", ["KR"]]),
    (("location", "territory"), [82]),
    (("items",), [{"commodity": "heroin", "quantity": 1, "unit": "kg"}, "methamphetamine"]),
    (("items", 0), ["methamphetamine"]),
    (("concealment_methods",), ["tea_packaging"]),
    (("identifiers", 0, "value"), [123]),
    (("offenders",), [1]),
    (("offenders", "count"), ["1", 1.5, True]),
    (("offenders", "nationalities"), ["TH"]),
    (("route",), ["TH-KR"]),
    (("route", "transit"), ["MY"]),
    (("audience",), ["operation"]),
    (("narrative",), [5]),
    (("reference",), [5]),
    (("concealment",), [False]),
]

REQUIRED: list[Path] = [
    ("kind",),
    ("occurred_at",),
    ("location",),
    ("location", "territory"),
    ("summary",),
    ("items", 0, "commodity"),
    ("items", 0, "quantity"),
    ("items", 0, "unit"),
    ("identifiers", 0, "type"),
    ("identifiers", 0, "value"),
]

BAD_TERRITORIES: list[tuple[Path, Any]] = [
    (("location", "territory"), "XX"),
    (("location", "territory"), "kr"),
    (("location", "territory"), "KOR"),
    (("location", "territory"), ""),
    (("location", "territory"), "UK"),
    (("route", "origin"), "ZZ"),
    (("route", "destination"), "EU"),
    (("route", "transit"), ["XX"]),
    (("offenders", "nationalities"), ["XX"]),
    (("offenders", "nationalities"), ["kr"]),
]

BAD_UNLOCODES: list[Any] = ["KRIC", "kricn", "KRICN1", "KR-ICN", 12345, ""]

BAD_AUDIENCES: list[tuple[str, Any]] = [
    ("no-scope", {}),
    ("null-scope", {"scope": None}),
    ("recipients-string", {"scope": "restricted", "recipients": "TH-CUS"}),
    ("recipients-number", {"scope": "restricted", "recipients": [1]}),
    ("recipients-lowercase", {"scope": "restricted", "recipients": ["th-cus"]}),
    ("recipient-outside", {"scope": "restricted", "recipients": ["JP-CUS"]}),
    ("recipient-unknown", {"scope": "restricted", "recipients": ["XX-NONE"]}),
    ("one-recipient-outside", {"scope": "restricted", "recipients": ["TH-CUS", "JP-CUS"]}),
]

UNKNOWN_FIELDS: list[tuple[Path, Any]] = [
    (("bogus",), 1),
    (("id",), "01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    (("seq",), 7),
    (("revision",), 3),
    (("status",), "withdrawn"),
    (("reported_by",), "TH-CUS"),
    (("location", "country"), "Korea"),
    (("items", 0, "purity"), 0.8),
    (("route", "via"), "MY"),
    (("audience", "recipient"), "TH-CUS"),
    (("offenders", "names"), ["Somchai"]),
    (("identifiers", 0, "owner"), "Somchai"),
]

BAD_OCCURRED_AT = [
    "1592386200",
    "2020-06-17T09:30:00",
    "2020-06-17",
    "2020-06-17 09:30",
    "17/06/2020 09:30",
    "",
    "2020-13-01T00:00:00Z",
    "2020-06-17T25:00:00Z",
    "now",
]

NUL_FIELDS: list[Path] = [
    ("summary",),
    ("narrative",),
    ("concealment",),
    ("reference",),
    ("location", "place"),
    ("identifiers", 0, "value"),
]

NOT_OBJECTS = [
    b"[]",
    b'"x"',
    b"3",
    b"null",
    b"true",
    b"",
    b"{",
    b"{'kind': 'seizure'}",
    b'{"kind": "seizure",}',
]


def malformed_alerts() -> list[Any]:
    cases: list[Any] = []

    def case(name: str, body: Any) -> None:
        cases.append(pytest.param(body, id=name))

    for path, values in BAD_ENUMS:
        for value in values:
            case(f"enum-{dotted(path)}={value!r}", changed(seizure(), path, value))
    for path, values in WRONG_TYPES:
        for value in values:
            case(
                f"type-{dotted(path)}={type(value).__name__}:{value!r}"[:80],
                changed(seizure(), path, value),
            )
    for path in REQUIRED:
        case(f"missing-{dotted(path)}", without(seizure(), path))
        if path != ("items", 0, "quantity"):
            case(f"null-{dotted(path)}", changed(seizure(), path, None))
    case("seizure-without-items", without(seizure(), ("items",)))
    case("seizure-with-empty-items", seizure(items=[]))
    case("seizure-without-transport_mode", without(seizure(), ("transport_mode",)))
    case("seizure-null-transport_mode", seizure(transport_mode=None))
    case("pre_alert-without-route", without(pre_alert(), ("route",)))
    case("pre_alert-without-destination", without(pre_alert(), ("route", "destination")))
    case("pre_alert-null-destination", changed(pre_alert(), ("route", "destination"), None))
    for quantity in (0, 0.0, -1, -0.001):
        case(f"quantity={quantity}", changed(seizure(), ("items", 0, "quantity"), quantity))
    for literal in ("1e999", "-1e999", "NaN", "Infinity", "-Infinity", '"NaN"', '"Infinity"'):
        case(f"quantity-raw={literal}", raw_with(seizure(), ("items", 0, "quantity"), literal))
    for value in BAD_OCCURRED_AT:
        case(f"occurred_at={value!r}", seizure(occurred_at=value))
    case("occurred_at-6-minutes-ahead", in_minutes(6))
    case("occurred_at-a-day-ahead", in_minutes(24 * 60))
    case("summary-empty", seizure(summary=""))
    case("summary-301", seizure(summary="x" * 301))
    case("narrative-20001", seizure(narrative="n" * 20_001))
    for path in NUL_FIELDS:
        case(f"nul-in-{dotted(path)}", changed(seizure(), path, "before\u0000after"))
    case("lone-high-surrogate-summary", seizure(summary="\ud800"))
    case("lone-low-surrogate-narrative", seizure(narrative="text \udfff text"))
    case("lone-surrogate-place", changed(seizure(), ("location", "place"), "Incheon \udc00"))
    for path, value in UNKNOWN_FIELDS:
        case(f"unknown-{dotted(path)}", changed(seizure(), path, value))
    for path, value in BAD_TERRITORIES:
        case(f"territory-{dotted(path)}={value!r}", changed(seizure(), path, value))
    for value in BAD_UNLOCODES:
        case(f"unlocode={value!r}", changed(seizure(), ("location", "unlocode"), value))
    for name, audience in BAD_AUDIENCES:
        case(f"audience-{name}", seizure(audience=audience))
    for text in NOT_OBJECTS:
        case(f"not-an-object:{text.decode()!r}", Raw(text))
    return cases


MALFORMED_ALERTS = malformed_alerts()


def test_there_are_at_least_a_hundred_distinct_malformed_alerts() -> None:
    names = [case.id for case in MALFORMED_ALERTS]
    assert len(names) == len(set(names)) >= 100


@dataclass(frozen=True)
class World:
    api: Api
    reporter: dict[str, str]


@pytest.fixture(scope="module")
async def world(app: FastAPI) -> AsyncIterator[World]:
    """ICEBREAK-II (KR-KCS and TH-CUS take part, JP-CUS stands outside), built once per store.

    Refused requests store nothing, so every test here may share it; each test checks
    against the state it found rather than an empty store, so one leak fails one test.
    """
    runtime = app.state.runtime
    await reset(runtime)
    async with client_for(app) as client:
        api = Api(client, runtime)
        for code, territory in (
            ("RILO-AP", "KR"),
            ("KR-KCS", "KR"),
            ("TH-CUS", "TH"),
            ("JP-CUS", "JP"),
        ):
            await api.administration(code, territory)
        await api.operation("ICEBREAK-II", coordinator="RILO-AP", participants=["KR-KCS", "TH-CUS"])
        yield World(api, await api.key("KR-KCS"))


async def snapshot(world: World, operation: str = "ICEBREAK-II") -> tuple[list[str], int]:
    """The operation's alert ids, newest first, and its event head, as the reporter sees them."""
    listed = await world.api.client.get(
        f"/v1/operations/{operation}/alerts?sort=-seq&limit=500", headers=world.reporter
    )
    events = await world.api.client.get(
        f"/v1/events?operation={operation}&limit=500", headers=world.reporter
    )
    return [alert["id"] for alert in listed.json()["items"]], events.json()["next_since"]


@pytest.mark.parametrize("body", MALFORMED_ALERTS)
async def test_a_malformed_alert_is_422_and_stores_nothing(world: World, body: Any) -> None:
    before = await snapshot(world)

    response = await world.api.client.post(
        ALERTS, content=encode(body), headers={**world.reporter, **JSON}
    )

    assert_problem(response, 422)
    assert await snapshot(world) == before


# --- malformed merge patches ---------------------------------------------------------------

BASES: dict[str, Callable[[], dict[str, Any]]] = {
    "wide": seizure,
    "narrow": lambda: seizure(
        audience={"scope": "restricted", "recipients": ["TH-CUS", "RILO-AP"]}
    ),
    "pre": pre_alert,
}


def future_patch() -> dict[str, Any]:
    return {"occurred_at": (datetime.now(UTC) + timedelta(minutes=6)).isoformat()}


def item(**overrides: Any) -> list[dict[str, Any]]:
    return [{"commodity": "heroin", "quantity": 1, "unit": "kg", **overrides}]


def restricted(*recipients: str) -> dict[str, Any]:
    return {"scope": "restricted", "recipients": list(recipients)}


MALFORMED_PATCHES: list[tuple[str, str, Any]] = [
    ("kind-to-pre_alert", "wide", {"kind": "pre_alert"}),
    ("kind-to-notice", "wide", {"kind": "notice"}),
    ("kind-bogus", "wide", {"kind": "bogus"}),
    ("kind-null", "wide", {"kind": None}),
    ("kind-to-seizure", "pre", {"kind": "seizure"}),
    ("narrow-operation-to-restricted", "wide", {"audience": restricted("TH-CUS")}),
    ("narrow-operation-to-nobody", "wide", {"audience": {"scope": "restricted"}}),
    ("narrow-drop-a-recipient", "narrow", {"audience": restricted("TH-CUS")}),
    ("narrow-drop-every-recipient", "narrow", {"audience": restricted()}),
    ("narrow-replace-recipients", "narrow", {"audience": {"recipients": ["TH-CUS"]}}),
    ("narrow-null-recipients", "narrow", {"audience": {"recipients": None}}),
    ("widen-to-an-outsider", "narrow", {"audience": restricted("TH-CUS", "RILO-AP", "JP-CUS")}),
    ("widen-to-an-unknown", "narrow", {"audience": restricted("TH-CUS", "RILO-AP", "XX-NONE")}),
    ("null-occurred_at", "wide", {"occurred_at": None}),
    ("null-summary", "wide", {"summary": None}),
    ("null-location", "wide", {"location": None}),
    ("null-territory", "wide", {"location": {"territory": None}}),
    ("null-items", "wide", {"items": None}),
    ("empty-items", "wide", {"items": []}),
    ("null-transport_mode", "wide", {"transport_mode": None}),
    ("null-route", "pre", {"route": None}),
    ("null-destination", "pre", {"route": {"destination": None}}),
    ("occurred_at-number", "wide", {"occurred_at": 1592386200}),
    ("occurred_at-without-offset", "wide", {"occurred_at": "2020-06-17T09:30:00"}),
    ("occurred_at-ahead", "wide", future_patch),
    ("priority-number", "wide", {"priority": 1}),
    ("priority-bogus", "wide", {"priority": "critical"}),
    ("transport_mode-bogus", "wide", {"transport_mode": "teleport"}),
    ("detection_method-bogus", "wide", {"detection_method": "psychic"}),
    ("concealment-method-bogus", "wide", {"concealment_methods": ["hollow"]}),
    ("concealment-methods-string", "wide", {"concealment_methods": "tea_packaging"}),
    ("tlp-1.0-white", "wide", {"tlp": "WHITE"}),
    ("quantity-string", "wide", {"items": item(quantity="1")}),
    ("quantity-zero", "wide", {"items": item(quantity=0)}),
    ("quantity-negative", "wide", {"items": item(quantity=-1)}),
    ("quantity-bool", "wide", {"items": item(quantity=True)}),
    (
        "quantity-nan",
        "wide",
        Raw(b'{"items": [{"commodity": "heroin", "quantity": NaN, "unit": "kg"}]}'),
    ),
    ("unit-bogus", "wide", {"items": item(unit="lb")}),
    ("item-without-quantity", "wide", {"items": [{"commodity": "heroin", "unit": "kg"}]}),
    ("items-string", "wide", {"items": "x"}),
    ("summary-empty", "wide", {"summary": ""}),
    ("summary-number", "wide", {"summary": 5}),
    ("summary-301", "wide", {"summary": "x" * 301}),
    ("narrative-20001", "wide", {"narrative": "n" * 20_001}),
    ("narrative-nul", "wide", {"narrative": "a\u0000b"}),
    ("summary-lone-surrogate", "wide", {"summary": "\ud800"}),
    ("location-string", "wide", {"location": "KR"}),
    ("territory-bogus", "wide", {"location": {"territory": "XX"}}),
    ("unlocode-lowercase", "wide", {"location": {"unlocode": "kricn"}}),
    ("origin-bogus", "wide", {"route": {"origin": "ZZ"}}),
    ("transit-string", "wide", {"route": {"transit": "MY"}}),
    ("offenders-count-string", "wide", {"offenders": {"count": "3"}}),
    ("audience-string", "wide", {"audience": "operation"}),
    ("audience-scope-bogus", "wide", {"audience": {"scope": "public"}}),
    ("server-field-seq", "wide", {"seq": 1}),
    ("server-field-id", "wide", {"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}),
    ("server-field-revision", "wide", {"revision": 9}),
    ("server-field-status", "wide", {"status": "withdrawn"}),
    ("server-field-reported_by", "wide", {"reported_by": "TH-CUS"}),
    ("unknown-field", "wide", {"bogus": 1}),
    ("unknown-item-field", "wide", {"items": item(purity=0.9)}),
    ("not-an-object-array", "wide", Raw(b"[]")),
    ("not-an-object-string", "wide", Raw(b'"x"')),
    ("not-an-object-number", "wide", Raw(b"3")),
    ("not-an-object-null", "wide", Raw(b"null")),
    ("not-an-object-bool", "wide", Raw(b"true")),
    ("not-json", "wide", Raw(b"{")),
    ("empty-body", "wide", Raw(b"")),
]


def test_there_are_at_least_forty_distinct_malformed_patches() -> None:
    names = [name for name, _, _ in MALFORMED_PATCHES]
    assert len(names) == len(set(names)) >= 40


@pytest.mark.parametrize(
    ("base", "change"), [pytest.param(b, c, id=n) for n, b, c in MALFORMED_PATCHES]
)
async def test_a_malformed_patch_is_422_and_leaves_the_alert_unchanged(
    world: World, base: str, change: Any
) -> None:
    api, reporter = world.api, world.reporter
    alert = await api.report(reporter, "ICEBREAK-II", BASES[base]())

    response = await api.client.patch(
        f"/v1/alerts/{alert['id']}",
        content=encode(change),
        headers={**reporter, "Content-Type": "application/merge-patch+json"},
    )

    assert_problem(response, 422)
    reread = await api.client.get(f"/v1/alerts/{alert['id']}", headers=reporter)
    assert reread.json() == alert
    events = (
        await api.client.get(f"/v1/events?since={alert['seq'] - 1}&limit=500", headers=reporter)
    ).json()
    assert [(e["type"], e["alert"]["id"]) for e in events["items"]] == [
        ("alert.created", alert["id"])
    ]
