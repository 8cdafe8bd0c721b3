"""``stat_rollup``, kept up by every write, equals the figures rebuilt from the alerts.

Reports arrive concurrently (so the committer adds them up in batches), then amendments
change items, concealments, routes, times and audiences, and withdrawals take alerts
out. The table kept step by step must then hold what one statement over the stored
alerts computes, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.committer import WriteTx
from app.models import StatRollup
from app.services import rollup
from tests.api import Api, pre_alert, seizure

COMMODITIES = ("methamphetamine", "heroin", "ketamine", "cannabis")
UNITS = ("g", "kg", "ml", "l", "tablets", "pieces")
CONCEALMENTS = ("tea_packaging", "brick_block", "luggage", "food_product")
MEMBERS = ("RILO-AP", "KR-KCS", "HK-CED", "TH-CUS")
TERRITORY = {"RILO-AP": "KR", "KR-KCS": "KR", "HK-CED": "HK", "TH-CUS": "TH"}

Rows = dict[tuple[Any, ...], tuple[float, ...]]


def random_body(rng: random.Random, reporter: str) -> dict[str, Any]:
    others = [m for m in MEMBERS if m != reporter]
    audience: dict[str, Any] = (
        {"scope": "operation"}
        if rng.random() < 0.5
        else {"scope": "restricted", "recipients": rng.sample(others, rng.randint(1, 2))}
    )
    day = rng.randint(15, 28)
    common = {
        "occurred_at": f"2020-06-{day:02d}T{rng.randint(0, 23):02d}:30:00+09:00",
        "location": {"territory": TERRITORY[reporter]},
        "audience": audience,
    }
    if rng.random() < 0.3:
        return pre_alert(**common)
    items = [
        {
            "commodity": rng.choice(COMMODITIES),
            "quantity": round(rng.uniform(0.1, 900), 3),
            "unit": rng.choice(UNITS),
        }
        for _ in range(rng.randint(1, 3))
    ]
    return seizure(
        **common,
        items=items,
        concealment_methods=rng.sample(CONCEALMENTS, rng.randint(0, 2)),
        transport_mode=rng.choice(("mail", "air_cargo", "express_courier")),
        route=rng.choice(
            [None, {"origin": "TH", "transit": [], "destination": "KR"}, {"destination": "HK"}]
        ),
    )


def random_patch(rng: random.Random, alert: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {"summary": "amended"}
    if alert["kind"] == "seizure":
        patch["items"] = [
            {"commodity": rng.choice(COMMODITIES), "quantity": 12.5, "unit": rng.choice(UNITS)}
        ]
        patch["concealment_methods"] = rng.sample(CONCEALMENTS, rng.randint(0, 2))
        patch["detection_method"] = rng.choice(("x_ray", "detector_dog"))
    if alert["audience"]["scope"] == "restricted" and rng.random() < 0.5:
        patch["audience"] = {"scope": "operation", "recipients": None}
    patch["occurred_at"] = "2020-07-01T00:00:00Z"
    return patch


async def kept_rows(session: AsyncSession) -> Rows:
    rows: Rows = {}
    for row in (await session.execute(select(StatRollup))).scalars():
        figures = (row.alerts, row.seizures, row.mass_kg, row.volume_l, row.tablets, row.pieces)
        key = (row.operation_id, row.dimension, row.viewer_id, row.scope, row.reporter_id, row.key)
        if row.alerts:
            rows[key] = figures
        else:  # a group emptied by withdrawals keeps its row, at zero
            assert (row.seizures, *figures[2:]) == pytest.approx((0,) * 5, abs=1e-6), key
    return rows


async def rebuilt_rows(tx: WriteTx) -> Rows:
    await tx.session.run_sync(lambda session: rollup.rebuild(session.connection()))
    return await kept_rows(tx.session)


async def test_figures_kept_by_each_write_equal_the_figures_rebuilt_from_the_alerts(
    api: Api,
) -> None:
    rng = random.Random(1717)
    keys = await api.ice_break()
    reporters = [rng.choice(MEMBERS) for _ in range(60)]
    created = await asyncio.gather(
        *(api.report(keys[r], "ICEBREAK-II", random_body(rng, r)) for r in reporters)
    )
    created.append(await api.report(keys["KR-KCS"], "OTHER-OP", random_body(rng, "KR-KCS")))
    by_reporter = dict(zip((a["id"] for a in created), [*reporters, "KR-KCS"], strict=True))

    for alert in rng.sample(created, 20):
        headers = keys[by_reporter[alert["id"]]]
        patch = random_patch(rng, alert)
        response = await api.client.patch(f"/v1/alerts/{alert['id']}", json=patch, headers=headers)
        assert response.status_code == 200, response.text
    for alert in rng.sample(created, 12):
        headers = keys[by_reporter[alert["id"]]]
        response = await api.client.post(
            f"/v1/alerts/{alert['id']}/withdraw", json={"reason": "test"}, headers=headers
        )
        assert response.status_code == 200, response.text

    async with api.runtime.db.read_sessions() as session:
        kept = await kept_rows(session)
    rebuilt = await api.runtime.committer.run(rebuilt_rows)
    assert kept.keys() == rebuilt.keys()
    for key, figures in rebuilt.items():
        assert kept[key] == pytest.approx(figures, rel=1e-9, abs=1e-9), key
    # Every dimension and both kinds of viewer row were exercised.
    assert {key[1] for key in kept} == set(rollup.DIMENSIONS)
    assert any(key[2] != 0 for key in kept)


async def test_relay_rollup_recounts_figures_that_went_wrong(api: Api) -> None:
    keys = await api.ice_break()
    await api.report(keys["KR-KCS"], "ICEBREAK-II", seizure())
    url = "/v1/operations/ICEBREAK-II/stats?by=transport_mode"
    right = (await api.client.get(url, headers=keys["RILO-AP/analyst"])).json()

    async def corrupt(tx: WriteTx) -> None:  # as a bulk load that bypassed the server would
        await tx.session.execute(update(StatRollup).values(mass_kg=StatRollup.mass_kg + 1000))

    await api.runtime.committer.run(corrupt)
    wrong = (await api.client.get(url, headers=keys["RILO-AP/analyst"])).json()
    assert wrong["total"]["mass_kg"] == pytest.approx(right["total"]["mass_kg"] + 1000)

    rows = await rollup.rebuild_store(api.runtime.db)

    assert rows > 0
    assert (await api.client.get(url, headers=keys["RILO-AP/analyst"])).json() == right
