"""Realistic operation traffic, driven through the public HTTP API.

``relay simulate`` points it at any server with an admin token; ``relay demo`` seeds an
ICE BREAK II-like operation first. The traffic follows what the WCO reported of ICE
BREAK II: mostly methamphetamine and its precursors, mostly in mail and express
parcels, often in tea packaging or pressed into bricks, moving out of the Golden
Triangle towards East Asia and Oceania.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

# (code, name, territory): 21 administrations from 18 territories, and the OCU.
ADMINISTRATIONS: list[tuple[str, str, str]] = [
    ("AU-ABF", "Australian Border Force", "AU"),
    ("BD-CUS", "Bangladesh Customs", "BD"),
    ("BN-RCED", "Royal Customs and Excise Department, Brunei", "BN"),
    ("CN-GACC", "General Administration of Customs of China", "CN"),
    ("HK-CED", "Hong Kong Customs and Excise Department", "HK"),
    ("MO-SA", "Macao Customs Service", "MO"),
    ("IN-CBIC", "Indian Customs", "IN"),
    ("ID-DGCE", "Indonesian Customs and Excise", "ID"),
    ("JP-CUS", "Japan Customs", "JP"),
    ("JP-OSAKA", "Osaka Customs", "JP"),
    ("KR-KCS", "Korea Customs Service", "KR"),
    ("KR-INCHEON", "Incheon Main Customs", "KR"),
    ("MY-RMCD", "Royal Malaysian Customs Department", "MY"),
    ("MN-CUS", "Mongolian Customs", "MN"),
    ("MM-CUS", "Myanmar Customs", "MM"),
    ("NZ-CUS", "New Zealand Customs Service", "NZ"),
    ("PH-BOC", "Philippine Bureau of Customs", "PH"),
    ("SG-CUS", "Singapore Customs", "SG"),
    ("SG-ICA", "Singapore Immigration and Checkpoints Authority", "SG"),
    ("LK-CUS", "Sri Lanka Customs", "LK"),
    ("TH-CUS", "Thai Customs Department", "TH"),
]
OCU = ("RILO-AP", "RILO Asia/Pacific (Operation Coordination Unit)", "KR")
OPERATION = "ICEBREAK-II"

ROUTES: list[tuple[str, list[str], str]] = [
    ("MM", ["TH"], "KR"),
    ("TH", [], "KR"),
    ("TH", ["MY"], "AU"),
    ("LA", ["TH"], "JP"),
    ("MM", ["TH", "MY"], "NZ"),
    ("TH", ["HK"], "JP"),
    ("MY", [], "AU"),
    ("IN", ["SG"], "AU"),
    ("CN", [], "PH"),
    ("MM", [], "BD"),
    ("TH", [], "HK"),
    ("VN", ["MY"], "ID"),
]
PLACES: dict[str, tuple[str, str | None]] = {
    "KR": ("Incheon International Mail Centre", "KRICN"),
    "JP": ("Tokyo International Post Office", "JPTYO"),
    "AU": ("Sydney Gateway Facility", "AUSYD"),
    "NZ": ("Auckland International Mail Centre", "NZAKL"),
    "HK": ("Hong Kong Air Mail Centre", "HKHKG"),
    "PH": ("Port of Manila", "PHMNL"),
    "BD": ("Teknaf land port", None),
    "ID": ("Soekarno-Hatta Airport cargo terminal", "IDCGK"),
    "TH": ("Suvarnabhumi Airport", "THBKK"),
    "MY": ("Port Klang", "MYPKG"),
    "SG": ("Changi Airfreight Centre", "SGSIN"),
}


def _weighted(rng: random.Random, choices: Sequence[tuple[str, float]]) -> str:
    values = [value for value, _ in choices]
    return rng.choices(values, weights=[weight for _, weight in choices])[0]


@dataclass
class TrafficModel:
    """Draws alert bodies; a fixed seed gives the same traffic every time."""

    rng: random.Random = field(default_factory=lambda: random.Random(2020))  # noqa: S311
    serial: int = 0

    def alert(self, *, reporter_territory: str, is_coordinator: bool) -> dict[str, Any]:
        self.serial += 1
        if is_coordinator:  # the OCU seizes nothing; it posts bulletins
            return self._notice()
        kind = _weighted(self.rng, [("seizure", 0.7), ("pre_alert", 0.2), ("request", 0.1)])
        origin, transit, destination = self.rng.choice(ROUTES)
        if kind == "seizure":
            destination = reporter_territory
        mode = _weighted(
            self.rng,
            [
                ("mail", 0.4),
                ("express_courier", 0.25),
                ("air_passenger", 0.12),
                ("air_cargo", 0.1),
                ("sea_container", 0.08),
                ("road_vehicle", 0.05),
            ],
        )
        commodity, form, quantity, unit = self._goods(parcel=mode in ("mail", "express_courier"))
        concealment = self._concealment(commodity)
        occurred = datetime.now(UTC) - timedelta(minutes=self.rng.randint(1, 90))
        place, unlocode = PLACES.get(
            reporter_territory, (f"{reporter_territory} border post", None)
        )
        body: dict[str, Any] = {
            "kind": kind,
            "priority": _weighted(self.rng, [("routine", 0.75), ("urgent", 0.2), ("flash", 0.05)]),
            "occurred_at": occurred.isoformat(timespec="seconds"),
            "location": {"territory": reporter_territory, "place": place, "unlocode": unlocode},
            "transport_mode": mode,
            "route": {"origin": origin, "transit": transit, "destination": destination},
            "items": [{"commodity": commodity, "form": form, "quantity": quantity, "unit": unit}],
            "concealment_methods": [concealment],
            "concealment": _CONCEALMENT_TEXT[concealment],
            "detection_method": self.rng.choice(
                ["x_ray", "risk_profiling", "detector_dog", "physical_inspection", "intelligence"]
            ),
            "identifiers": [
                {
                    "type": "tracking_number",
                    "value": f"EE{self.rng.randint(10**8, 10**9 - 1)}{origin}",
                }
            ],
            "tlp": _weighted(self.rng, [("AMBER", 0.6), ("GREEN", 0.3), ("AMBER+STRICT", 0.1)]),
            "summary": f"{_goods_text(quantity, unit, form, commodity)} "
            f"in {concealment.replace('_', ' ')}, {mode.replace('_', ' ')} from {origin}",
            "reference": f"{reporter_territory}-{self.serial:05d}",
            "audience": {"scope": "operation"},
        }
        if kind == "pre_alert":
            body["summary"] = (
                f"Suspect {mode.replace('_', ' ')} consignment {origin} to {destination}"
            )
            body["location"] = {"territory": origin if origin in PLACES else reporter_territory}
            body["audience"] = {"scope": "restricted", "recipients": []}
            body["items"] = [] if self.rng.random() < 0.5 else body["items"]
        if kind == "request":
            body["summary"] = f"Request: controlled delivery support for parcel to {destination}"
            body["items"] = []
        return body

    def _goods(self, *, parcel: bool) -> tuple[str, str, float, str]:
        """What was seized; parcels carry grams to a few kilograms, freight far more."""
        scale = 0.1 if parcel else 1.0
        commodity = _weighted(
            self.rng,
            [
                ("methamphetamine", 0.5),
                ("ephedrine", 0.07),
                ("pseudoephedrine", 0.05),
                ("p2p", 0.04),
                ("apaan", 0.03),
                ("heroin", 0.08),
                ("ketamine", 0.08),
                ("cannabis", 0.07),
                ("mdma", 0.05),
                ("cocaine", 0.03),
            ],
        )
        if commodity == "mdma" or (commodity == "methamphetamine" and self.rng.random() < 0.2):
            return (
                commodity,
                "tablet",
                float(int(self.rng.randint(200, 20_000) * scale) or 50),
                "tablets",
            )
        if commodity in ("p2p",):
            return commodity, "liquid", round(self.rng.uniform(0.5, 40) * scale, 2), "l"
        if commodity == "cannabis":
            return commodity, "plant", round(self.rng.uniform(0.2, 25) * scale + 0.1, 2), "kg"
        if self.rng.random() < 0.3:
            return commodity, "powder", float(self.rng.randint(50, 950)), "g"
        return (
            commodity,
            "crystal" if commodity == "methamphetamine" else "powder",
            round(self.rng.uniform(0.3, 30) * scale + 0.2, 2),
            "kg",
        )

    def _concealment(self, commodity: str) -> str:
        if commodity == "methamphetamine":
            return _weighted(
                self.rng,
                [
                    ("tea_packaging", 0.45),
                    ("brick_block", 0.2),
                    ("food_product", 0.1),
                    ("electronics", 0.1),
                    ("documents_mail", 0.1),
                    ("luggage", 0.05),
                ],
            )
        return _weighted(
            self.rng,
            [
                ("brick_block", 0.3),
                ("food_product", 0.2),
                ("cosmetics", 0.15),
                ("machinery", 0.15),
                ("luggage", 0.1),
                ("container_structure", 0.1),
            ],
        )

    def _notice(self) -> dict[str, Any]:
        return {
            "kind": "notice",
            "priority": "routine",
            "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "location": {"territory": OCU[2]},
            "summary": self.rng.choice(
                [
                    "OCU bulletin: tea-bag concealments rising in mail from TH",
                    "OCU bulletin: brick-pressed methamphetamine seen in express parcels",
                    "OCU bulletin: precursor shipments declared as cleaning chemicals",
                ]
            ),
            "tlp": "GREEN",
        }


_CONCEALMENT_TEXT = {
    "tea_packaging": "Vacuum-packed in Chinese tea bags inside a gift box",
    "brick_block": "Pressed into bricks wrapped in plastic film",
    "food_product": "Hidden in packets of dried food",
    "electronics": "Inside the casing of a speaker",
    "documents_mail": "Flat packets between greeting cards",
    "luggage": "False lining of a suitcase",
    "cosmetics": "Mixed into cosmetic cream jars",
    "machinery": "Inside machine parts declared as spares",
    "container_structure": "Behind a welded panel in the container wall",
}


def _goods_text(quantity: float, unit: str, form: str, commodity: str) -> str:
    name = commodity.replace("_", " ")
    if unit == "tablets":
        return f"{quantity:g} {name} tablets"
    return f"{quantity:g} {unit} {form} {name}"


@dataclass
class Reporter:
    code: str
    territory: str
    headers: dict[str, str]
    is_coordinator: bool


async def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text}"
        )
    data: dict[str, Any] = response.json() if response.content else {}
    return data


async def seed_operation(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """Create the OCU, the 21 administrations and the operation (idempotent)."""
    for code, name, territory in (OCU, *ADMINISTRATIONS):
        response = await client.post(
            "/v1/administrations",
            json={"code": code, "name": name, "territory": territory},
            headers=admin,
        )
        if response.status_code != 409:
            await _check(response)
    now = datetime.now(UTC).replace(microsecond=0)
    response = await client.post(
        "/v1/operations",
        json={
            "code": OPERATION,
            "name": "ICE BREAK II (demo)",
            "description": "Methamphetamine and precursors, all modes of transport",
            "coordinator": OCU[0],
            "participants": [code for code, _, _ in ADMINISTRATIONS],
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(weeks=5)).isoformat(),
        },
        headers=admin,
    )
    if response.status_code != 409:
        await _check(response)


async def mint_key(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    *,
    administration: str | None,
    role: str,
    label: str,
) -> str:
    body: dict[str, Any] = {"role": role, "label": label}
    if administration is not None:
        body["administration"] = administration
    created = await _check(await client.post("/v1/keys", json=body, headers=admin))
    return str(created["token"])


async def reporters_for(
    client: httpx.AsyncClient, admin: dict[str, str], operation: str
) -> list[Reporter]:
    """A member key for the coordinator and every participant of ``operation``."""
    op = await _check(await client.get(f"/v1/operations/{operation}", headers=admin))
    territories: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        page = await _check(await client.get("/v1/administrations", params=params, headers=admin))
        territories.update({a["code"]: a["territory"] for a in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            break
    reporters = []
    for code in [op["coordinator"], *op["participants"]]:
        token = await mint_key(
            client, admin, administration=code, role="member", label=f"{code} simulator"
        )
        reporters.append(
            Reporter(
                code,
                territories[code],
                {"Authorization": f"Bearer {token}"},
                code == op["coordinator"],
            )
        )
    return reporters


async def simulate(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    *,
    operation: str = OPERATION,
    rate: float = 0.5,
    count: int | None = None,
    report: Callable[[str], None] = print,
) -> int:
    """Post alerts at ``rate`` a second (``count`` of them, or until cancelled), with
    acknowledgements from recipients. Returns how many alerts were posted."""
    reporters = await reporters_for(client, admin, operation)
    by_code = {r.code: r for r in reporters}
    model = TrafficModel()
    posted = 0
    while count is None or posted < count:
        reporter = model.rng.choice(reporters)
        body = model.alert(
            reporter_territory=reporter.territory, is_coordinator=reporter.is_coordinator
        )
        response = await client.post(
            f"/v1/operations/{operation}/alerts", json=body, headers=reporter.headers
        )
        if response.status_code != 201:
            detail = response.json().get("detail")
            report(f"! {reporter.code} {body['kind']}: {response.status_code} {detail}")
        else:
            posted += 1
            alert = response.json()
            report(
                f"{alert['seq']:>6}  {reporter.code:<10} {alert['kind']:<9} "
                f"{alert['priority']:<7} {alert['summary']}"
            )
            recipients = alert["audience"].get("recipients") or []
            for code in recipients[:2]:
                if code in by_code and code != reporter.code:
                    await client.post(
                        f"/v1/alerts/{alert['id']}/acks",
                        json={"status": model.rng.choice(["received", "actioning"])},
                        headers=by_code[code].headers,
                    )
        await asyncio.sleep(1 / rate if rate > 0 else 0)
    return posted
