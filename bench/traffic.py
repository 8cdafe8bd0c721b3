"""What the million-alert benchmark's operations and alerts look like: who takes part,
how often each reports, and alert bodies drawn with realistic distributions (after what
the WCO reported of ICE BREAK II; see app/simulator.py) over five weeks."""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.schemas.types import format_utc
from app.simulator import ADMINISTRATIONS, OCU, PLACES, ROUTES

MAIN = "ICEBREAK-II"
SECOND = "CATALYST"
STARTS = datetime(2026, 9, 21, tzinfo=UTC)
WEEKS = 5
ENDS = STARTS + timedelta(weeks=WEEKS)
SECOND_SHARE = 0.05
EUROPE = [
    ("RILO-WE", "RILO Western Europe", "BE"),
    ("DE-ZOLL", "German Customs", "DE"),
    ("NL-DOUANE", "Netherlands Customs", "NL"),
    ("FR-DGDDI", "French Customs", "FR"),
    ("GB-BF", "UK Border Force", "GB"),
]
# How often each administration of the main operation reports (the OCU posts notices).
ACTIVITY = {
    "KR-KCS": 10, "AU-ABF": 9, "JP-CUS": 8, "HK-CED": 8, "NZ-CUS": 6, "KR-INCHEON": 5,
    "TH-CUS": 5, "MY-RMCD": 4, "SG-CUS": 4, "PH-BOC": 4, "CN-GACC": 4, "ID-DGCE": 3,
    "JP-OSAKA": 3, "IN-CBIC": 2, "BD-CUS": 2, "MM-CUS": 1, "LK-CUS": 1, "MO-SA": 1,
    "SG-ICA": 1, "BN-RCED": 0.5, "MN-CUS": 0.5, "RILO-AP": 2,
}  # fmt: skip


class Weighted:
    """A weighted choice by bisection: ``random.choices`` is slow for a million draws."""

    def __init__(self, choices: Sequence[tuple[Any, float]]) -> None:
        self.values = [value for value, _ in choices]
        total = 0.0
        self.cumulative = []
        for _, weight in choices:
            total += weight
            self.cumulative.append(total)
        self.total = total

    def __call__(self, rng: random.Random) -> Any:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.total)]


KIND = Weighted([("seizure", 0.70), ("pre_alert", 0.18), ("request", 0.12)])
PRIORITY = Weighted([("routine", 0.75), ("urgent", 0.2), ("flash", 0.05)])
TLP = Weighted(
    [("AMBER", 0.6), ("GREEN", 0.25), ("AMBER+STRICT", 0.1), ("RED", 0.03), ("CLEAR", 0.02)]
)
MODE = Weighted(
    [
        ("mail", 0.34), ("express_courier", 0.22), ("air_passenger", 0.12), ("air_cargo", 0.10),
        ("sea_container", 0.08), ("road_vehicle", 0.05), ("sea_passenger", 0.02),
        ("sea_vessel", 0.02), ("rail", 0.015), ("pedestrian", 0.01), ("other", 0.015),
    ]
)  # fmt: skip
DETECTION = Weighted(
    [
        ("x_ray", 0.3), ("risk_profiling", 0.25), ("detector_dog", 0.12),
        ("physical_inspection", 0.12), ("intelligence", 0.1), ("random_selection", 0.04),
        ("controlled_delivery", 0.02), (None, 0.05),
    ]
)  # fmt: skip
COMMODITY = Weighted(
    [
        ("methamphetamine", 0.45), ("heroin", 0.07), ("ketamine", 0.07), ("cannabis", 0.07),
        ("ephedrine", 0.06), ("mdma", 0.05), ("pseudoephedrine", 0.04), ("p2p", 0.03),
        ("cocaine", 0.03), ("apaan", 0.02), ("amphetamine", 0.02), ("tramadol", 0.02),
        ("opium", 0.01), ("nps", 0.01), ("fentanyl", 0.005), ("methylamine", 0.005),
        ("p2np", 0.005), ("apaa", 0.003), ("other_drug", 0.004), ("other_precursor", 0.003),
    ]
)  # fmt: skip
ITEM_COUNT = Weighted([(1, 0.70), (2, 0.22), (3, 0.08)])
CONCEALMENT_COUNT = Weighted([(0, 0.10), (1, 0.75), (2, 0.15)])
ACK_COUNT = Weighted([(0, 0.65), (1, 0.25), (2, 0.10)])
ACK_STATUS = Weighted(
    [("received", 0.5), ("actioning", 0.25), ("intercepted", 0.05), ("no_trace", 0.1),
     ("closed", 0.1)]
)  # fmt: skip
CONCEALMENT_TEXT = {
    "tea_packaging": "Vacuum-packed in Chinese tea bags inside a gift box",
    "food_product": "Hidden in packets of dried food",
    "brick_block": "Pressed into bricks wrapped in plastic film",
    "false_bottom": "Under a false bottom of the carton",
    "body_carry": "Strapped to the body under clothing",
    "swallowed": "Swallowed pellets found on a scan",
    "clothing": "Sewn into the lining of jackets",
    "luggage": "False lining of a suitcase",
    "machinery": "Inside machine parts declared as spares",
    "electronics": "Inside the casing of a speaker",
    "cosmetics": "Mixed into cosmetic cream jars",
    "documents_mail": "Flat packets between greeting cards",
    "vehicle_compartment": "In a welded compartment under the fuel tank",
    "container_structure": "Behind a welded panel in the container wall",
    "other": "Concealed in a hollowed-out wooden statue",
}
CONCEALMENT = Weighted(
    [
        ("tea_packaging", 0.22), ("brick_block", 0.14), ("food_product", 0.12),
        ("electronics", 0.08), ("documents_mail", 0.08), ("luggage", 0.07),
        ("cosmetics", 0.06), ("machinery", 0.06), ("clothing", 0.04), ("false_bottom", 0.03),
        ("container_structure", 0.03), ("vehicle_compartment", 0.02), ("body_carry", 0.02),
        ("swallowed", 0.01), ("other", 0.02),
    ]
)  # fmt: skip
DECLARED = [
    "tea", "dried fruit", "auto parts", "cosmetics", "clothing", "toys", "books", "coffee",
    "kitchenware", "spare parts", "documents", "herbal supplements", "rice crackers",
    "phone cases", "ceramics", "aquarium filters", "garden tools", "a guitar amplifier",
]  # fmt: skip
CITIES = [
    "Seoul", "Busan", "Incheon", "Tokyo", "Osaka", "Sydney", "Melbourne", "Perth",
    "Auckland", "Hong Kong", "Macau", "Manila", "Cebu", "Jakarta", "Surabaya", "Bangkok",
    "Chiang Mai", "Kuala Lumpur", "Penang", "Singapore", "Colombo", "Dhaka", "Chittagong",
    "Yangon", "Mandalay", "Guangzhou", "Shenzhen", "Ulaanbaatar", "Chennai", "Mumbai",
]  # fmt: skip
FLIGHTS = [
    f"{carrier}{number}"
    for carrier in ("TG", "KE", "OZ", "CX", "MH", "SQ", "JL", "NH", "QF", "NZ", "PR", "GA")
    for number in range(601, 621)
]
NATIONALITIES = ["TH", "MY", "KR", "CN", "VN", "MM", "AU", "NZ", "PH", "ID", "LA", "HK"]
BULLETINS = [
    "OCU bulletin: tea-bag concealments rising in mail from TH",
    "OCU bulletin: brick-pressed methamphetamine seen in express parcels",
    "OCU bulletin: precursor shipments declared as cleaning chemicals",
    "OCU bulletin: couriers swallowing pellets on flights from MY",
]


@dataclass(frozen=True, slots=True)
class Admin:
    id: int
    code: str
    territory: str
    key_id: str
    key_label: str


@dataclass(slots=True)
class Op:
    id: int
    code: str
    coordinator: Admin
    participants: list[Admin]
    reporter: Weighted = field(init=False)

    def __post_init__(self) -> None:
        everyone = [self.coordinator, *self.participants]
        self.reporter = Weighted([(a, ACTIVITY.get(a.code, 3.0)) for a in everyone])


def _quantity(rng: random.Random, commodity: str, parcel: bool) -> tuple[str, float, str]:
    scale = 0.1 if parcel else 1.0
    if commodity in ("mdma", "tramadol") or (commodity == "methamphetamine" and rng.random() < 0.2):
        return "tablet", float(int(rng.randint(200, 20_000) * scale) or 50), "tablets"
    if commodity in ("p2p", "apaan", "methylamine") and rng.random() < 0.6:
        if rng.random() < 0.3:
            return "liquid", float(rng.randint(100, 900)), "ml"
        return "liquid", round(rng.uniform(0.5, 40) * scale, 2) or 0.05, "l"
    if commodity == "cannabis":
        return "plant", round(rng.uniform(0.2, 25) * scale + 0.1, 2), "kg"
    if commodity == "nps" and rng.random() < 0.5:
        return "other", float(rng.randint(10, 500)), "pieces"
    if rng.random() < 0.3:
        return "powder", float(rng.randint(50, 950)), "g"
    form = "crystal" if commodity == "methamphetamine" else "powder"
    return form, round(rng.uniform(0.3, 30) * scale + 0.2, 2), "kg"


def _identifiers(rng: random.Random, mode: str | None, origin: str) -> list[dict[str, str]]:
    out = []
    if mode in ("mail", "express_courier"):
        out.append(
            {"type": "tracking_number", "value": f"EE{rng.randint(10**8, 10**9 - 1)}{origin}"}
        )
    elif mode == "air_cargo":
        out.append(
            {
                "type": "airway_bill",
                "value": f"{rng.randint(100, 999)}-{rng.randint(10**7, 10**8 - 1)}",
            }
        )
    elif mode == "sea_container":
        out.append({"type": "container", "value": f"MSKU{rng.randint(10**6, 10**7 - 1)}"})
        if rng.random() < 0.5:
            out.append({"type": "bill_of_lading", "value": f"BL{rng.randint(10**9, 10**10 - 1)}"})
    elif mode in ("air_passenger",):
        out.append({"type": "flight", "value": rng.choice(FLIGHTS)})
    elif mode == "road_vehicle":
        out.append(
            {"type": "vehicle", "value": f"{rng.choice('ABCDEFGH')}{rng.randint(1000, 9999)}"}
        )
    if rng.random() < 0.15:
        out.append(
            {"type": "company", "value": f"{rng.choice(CITIES)} Trading Co. {rng.randint(1, 400)}"}
        )
    return out


def draw_document(
    rng: random.Random, op: Op, reporter: Admin, occurred: datetime, serial: int
) -> dict[str, Any]:
    """An alert body in its stored form: every field of ``AlertBody``, in its order."""
    if reporter is op.coordinator:
        return {
            "kind": "notice",
            "priority": "routine",
            "occurred_at": format_utc(occurred),
            "location": {"territory": reporter.territory, "place": None, "unlocode": None},
            "transport_mode": None,
            "route": None,
            "items": [],
            "concealment_methods": [],
            "concealment": None,
            "detection_method": None,
            "identifiers": [],
            "offenders": None,
            "tlp": "GREEN",
            "summary": rng.choice(BULLETINS),
            "narrative": None,
            "reference": None,
            "audience": {"scope": "operation"},
        }
    kind = KIND(rng)
    origin, transit, destination = rng.choice(ROUTES)
    if kind == "seizure":
        destination = reporter.territory
    mode = MODE(rng)
    parcel = mode in ("mail", "express_courier")
    items = []
    commodities: list[str] = []
    if kind == "seizure" or (kind == "pre_alert" and rng.random() < 0.5):
        for _ in range(ITEM_COUNT(rng)):
            commodity = COMMODITY(rng)
            form, quantity, unit = _quantity(rng, commodity, parcel)
            items.append({"commodity": commodity, "form": form, "quantity": quantity, "unit": unit})
            commodities.append(commodity)
    methods = list(dict.fromkeys(CONCEALMENT(rng) for _ in range(CONCEALMENT_COUNT(rng))))
    territory = reporter.territory
    if kind == "pre_alert" and origin in PLACES:
        territory = origin
    place, unlocode = PLACES.get(territory, (f"{territory} border post", None))
    what = commodities[0].replace("_", " ") if commodities else "suspect goods"
    how = methods[0].replace("_", " ") if methods else "no concealment"
    way = mode.replace("_", " ")
    if kind == "seizure":
        first = items[0]
        summary = f"{first['quantity']:g} {first['unit']} {first['form']} {what} in {how}, {way} from {origin}"
    elif kind == "pre_alert":
        summary = f"Suspect {way} consignment {origin} to {destination}: {what}"
    else:
        summary = f"Request: controlled delivery support for {way} to {destination}"
    narrative = None
    if rng.random() < 0.85:
        narrative = (
            f"{DETECTION.values[rng.randrange(7)].replace('_', ' ').capitalize()} at {place}; "
            f"declared as {rng.choice(DECLARED)}. Consignee address in {rng.choice(CITIES)} "
            f"linked to earlier seizures in {rng.choice(CITIES)}."
        )
    offenders = None
    if mode in ("air_passenger", "sea_passenger", "pedestrian", "road_vehicle"):
        count = rng.randint(1, 3)
        offenders = {
            "count": count,
            "nationalities": sorted({rng.choice(NATIONALITIES) for _ in range(count)}),
        }
    audience: dict[str, Any] = {"scope": "operation"}
    if kind == "pre_alert" and rng.random() < 0.8:
        on_route = {origin, destination, *transit}
        targeted = sorted(a.code for a in op.participants if a.territory in on_route)
        audience = {"scope": "restricted", "recipients": list(dict.fromkeys(targeted))}
    elif kind != "pre_alert" and rng.random() < (0.15 if kind == "seizure" else 0.3):
        others = [a for a in (*op.participants, op.coordinator) if a is not reporter]
        picked = rng.sample(others, rng.randint(1, 3))
        audience = {"scope": "restricted", "recipients": [a.code for a in picked]}
    return {
        "kind": kind,
        "priority": PRIORITY(rng),
        "occurred_at": format_utc(occurred),
        "location": {"territory": territory, "place": place, "unlocode": unlocode},
        "transport_mode": mode,
        "route": {"origin": origin, "transit": list(transit), "destination": destination},
        "items": items,
        "concealment_methods": methods,
        "concealment": CONCEALMENT_TEXT[methods[0]] if methods else None,
        "detection_method": DETECTION(rng),
        "identifiers": _identifiers(rng, mode, origin),
        "offenders": offenders,
        "tlp": TLP(rng),
        "summary": summary,
        "narrative": narrative,
        "reference": f"{reporter.territory}-2026-{serial:07d}",
        "audience": audience,
    }


# --- who takes part ------------------------------------------------------------------------

KEYS_CREATED = STARTS - timedelta(days=7)


def administrations() -> list[dict[str, Any]]:
    """The ``administration`` rows: the OCU, the 21 of ICE BREAK II, and five of Europe."""
    return [
        {"code": code, "name": name, "territory": territory, "created_at": KEYS_CREATED}
        for code, name, territory in (OCU, *ADMINISTRATIONS, *EUROPE)
    ]


def operations(ids: dict[str, int], keys: dict[str, dict[str, Any]]) -> list[Op]:
    """ICE BREAK II (most alerts) and a second operation sharing three participants."""
    territory = {code: t for code, _, t in (OCU, *ADMINISTRATIONS, *EUROPE)}

    def admin(code: str) -> Admin:
        return Admin(ids[code], code, territory[code], keys[code]["id"], keys[code]["label"])

    main = Op(0, MAIN, admin(OCU[0]), [admin(code) for code, _, _ in ADMINISTRATIONS])
    europe = [admin(code) for code, _, _ in EUROPE]
    shared = [admin(code) for code in ("KR-KCS", "AU-ABF", "HK-CED")]
    return [main, Op(0, SECOND, europe[0], [*europe[1:], *shared])]


def operation_row(op: Op) -> dict[str, Any]:
    return {
        "code": op.code,
        "name": op.code.title(),
        "description": "Benchmark operation",
        "coordinator_id": op.coordinator.id,
        "starts_at": STARTS,
        "ends_at": ENDS,
        "closed_at": None,
        "created_at": STARTS - timedelta(days=1),
    }


def participation_rows(op: Op) -> list[dict[str, Any]]:
    joined = STARTS - timedelta(days=1)
    return [
        {"operation_id": op.id, "administration_id": a.id, "joined_at": joined, "removed_at": None}
        for a in op.participants
    ]
