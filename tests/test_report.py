"""`relay report` states what the API states (issue: the OCU's analysis)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.api import seizure
from tests.server import admin_headers, relay_server, set_up_operation

pytestmark = pytest.mark.slow

RELAY = Path(sys.executable).with_name("relay")


async def _analyst(client: httpx.AsyncClient, admin: dict[str, str], administration: str) -> str:
    response = await client.post(
        "/v1/keys",
        json={"administration": administration, "role": "analyst", "label": "report test"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def _run_report(url: str, token: str, operation: str, fmt: str, out: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        str(RELAY),
        "report",
        operation,
        "--url",
        url,
        "--token",
        token,
        "--format",
        fmt,
        "--out",
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return await asyncio.to_thread(out.read_text)


async def test_report_totals_and_breakdowns_match_the_stats_endpoint(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        relay_server(database_url, tmp_path, name="report") as server,
        server.client() as client,
    ):
        admin = await admin_headers(server)
        live = await set_up_operation(client, admin, administrations=3, member_keys=3)
        bodies = [
            seizure(
                items=[
                    {
                        "commodity": "methamphetamine",
                        "form": "crystal",
                        "quantity": 2.5,
                        "unit": "kg",
                    }
                ]
            ),
            seizure(
                items=[
                    {"commodity": "methamphetamine", "quantity": 750, "unit": "g"},
                    {"commodity": "p2p", "quantity": 1500, "unit": "ml"},
                ],
                transport_mode="express_courier",
            ),
            seizure(
                items=[{"commodity": "mdma", "quantity": 1200, "unit": "tablets"}],
                concealment_methods=["brick_block"],
                audience={"scope": "restricted", "recipients": []},
            ),
        ]
        for i, body in enumerate(bodies):
            response = await client.post(
                f"/v1/operations/{live.code}/alerts", json=body, headers=live.members[i]
            )
            assert response.status_code == 201, response.text
        coordinator = (await client.get(f"/v1/operations/{live.code}", headers=admin)).json()[
            "coordinator"
        ]
        token = await _analyst(client, admin, coordinator)
        stats = (
            await client.get(
                f"/v1/operations/{live.code}/stats",
                params={"by": "commodity"},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()

        markdown = await _run_report(server.base_url, token, live.code, "md", tmp_path / "r.md")
        total = stats["total"]
        row = re.search(
            r"^\| (\d+) \| (\d+) \| ([\d.,]+) \| ([\d.,]+) \| ([\d.,]+) \| ([\d.,]+) \|$",
            markdown,
            re.M,
        )
        assert row is not None, markdown
        stated = [float(cell.replace(",", "")) for cell in row.groups()]
        assert stated == pytest.approx(
            [
                total["alerts"],
                total["seizures"],
                total["mass_kg"],
                total["volume_l"],
                total["tablets"],
                total["pieces"],
            ]
        )
        assert stated == pytest.approx([3, 3, 3.25, 1.5, 1200, 0])
        for group in stats["groups"]:
            assert f"| {group['key']} | {group['alerts']} | {group['seizures']} |" in markdown
        assert "1 of 3 alerts (33.3 %)" in markdown
        assert "**TLP:AMBER**" in markdown

        page = await _run_report(server.base_url, token, live.code, "html", tmp_path / "r.html")
        assert page.startswith("<!doctype html>")
        assert "<svg" in page and "<script" not in page and "http" not in page.split("</style>")[0]
        assert "<b>3</b>alerts" in page and "<b>3.25</b>kg seized" in page


async def test_report_refuses_a_member_key(database_url: str, tmp_path: Path) -> None:
    async with (
        relay_server(database_url, tmp_path, name="report-member") as server,
        server.client() as client,
    ):
        admin = await admin_headers(server)
        live = await set_up_operation(client, admin, administrations=1, member_keys=1)
        token = live.members[0]["Authorization"].removeprefix("Bearer ")
        process = await asyncio.create_subprocess_exec(
            str(RELAY),
            "report",
            live.code,
            "--url",
            server.base_url,
            "--token",
            token,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 1
        assert "analyst key" in err.decode()
