"""``relay report``: an operation report built from the public API: totals, breakdowns by
commodity, mode, concealment and route, a weekly trend, the largest seizures and the
share of restricted traffic. Markdown, or one self-contained HTML file with SVG charts.

The report is marked with the most restrictive TLP among the alerts it draws on.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from app.jsonenc import loads

DIMENSIONS = ["commodity", "transport_mode", "concealment_method", "route", "week", "reported_by"]
TLP_ORDER = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]
TOP = 10


@dataclass
class ReportData:
    operation: dict[str, Any]
    viewer: dict[str, Any]
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    largest: list[dict[str, Any]] = field(default_factory=list)
    alerts: int = 0
    restricted: int = 0
    tlp: str = "CLEAR"
    generated_at: str = ""

    @property
    def total(self) -> dict[str, Any]:
        total: dict[str, Any] = self.stats["commodity"]["total"]
        return total


class ReportError(Exception):
    pass


def _get(client: httpx.Client, path: str, **params: str) -> Any:
    response = client.get(path, params=params)
    if response.status_code != 200:
        detail = response.json().get("detail") if response.content else ""
        raise ReportError(f"GET {path}: {response.status_code} {detail}")
    return response.json()


def gather(client: httpx.Client, operation: str, *, advance: Callable[[str], None]) -> ReportData:
    """Everything the report states, from the API; ``advance`` is told of each step."""
    me = _get(client, "/v1/me")
    if me["role"] != "analyst":
        raise ReportError("the report needs an analyst key (statistics and export)")
    data = ReportData(operation=_get(client, f"/v1/operations/{operation}"), viewer=me)
    advance("operation")
    for by in DIMENSIONS:
        data.stats[by] = _get(client, f"/v1/operations/{operation}/stats", by=by)
        advance(f"stats by {by}")
    masses: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    with client.stream(
        "GET", f"/v1/operations/{operation}/export", params={"format": "ndjson", "status": "open"}
    ) as response:
        if response.status_code != 200:
            raise ReportError(f"export: {response.status_code}")
        for line in response.iter_lines():
            if not line:
                continue
            row = loads(line)
            if row["alert_id"] not in seen:
                seen.add(row["alert_id"])
                data.alerts += 1
                data.restricted += row["audience"] == "restricted"
                if TLP_ORDER.index(row["tlp"]) > TLP_ORDER.index(data.tlp):
                    data.tlp = row["tlp"]
            if row["kind"] == "seizure" and row["unit"] in ("kg", "g"):
                kg = row["quantity"] * (0.001 if row["unit"] == "g" else 1.0)
                entry = masses.setdefault(
                    row["alert_id"],
                    {"alert_id": row["alert_id"], "kg": 0.0, "commodities": set(), "row": row},
                )
                entry["kg"] += kg
                entry["commodities"].add(row["commodity"])
    advance("export")
    data.largest = sorted(masses.values(), key=lambda e: e["kg"], reverse=True)[:TOP]
    data.generated_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return data


# --- rendering -------------------------------------------------------------------------------

TITLES = {
    "commodity": "By commodity",
    "transport_mode": "By mode of transport",
    "concealment_method": "By concealment",
    "route": "By route (origin-destination)",
    "week": "Weekly trend",
    "reported_by": "By reporting administration",
}


def _label(key: str | None) -> str:
    return "(not stated)" if key is None else str(key).replace("_", " ")


def _num(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value else "0"


def _groups(data: ReportData, by: str, limit: int | None = None) -> list[dict[str, Any]]:
    groups = list(data.stats[by]["groups"])
    if by != "week":
        groups.sort(key=lambda g: (g["mass_kg"], g["alerts"]), reverse=True)
    return groups[:limit] if limit else groups


def _restricted_share(data: ReportData) -> float:
    return 100.0 * data.restricted / data.alerts if data.alerts else 0.0


def _live_note(data: ReportData) -> str:
    """Statistics and the export are read one after the other; on a live operation alerts
    may arrive (or be withdrawn) in between, and the report says so rather than hide it."""
    drift = data.alerts - data.total["alerts"]
    if drift == 0:
        return ""
    return (
        f"The operation was live while this report was gathered: the alert-level figures "
        f"(restricted share, largest seizures) cover {data.alerts} alerts, the totals "
        f"{data.total['alerts']}."
    )


def render_markdown(data: ReportData) -> str:
    op, total = data.operation, data.total
    lines = [
        f"# Operation {op['name']} ({op['code']})",
        "",
        f"**TLP:{data.tlp}** — as seen by {data.viewer['administration']} "
        f"({data.viewer['label']}); generated {data.generated_at}.",
        "",
        f"Coordinator {op['coordinator']}, {len(op['participants'])} participating administrations, "
        f"planned {op['starts_at'][:10]} to {op['ends_at'][:10]}.",
        "",
        "## Totals",
        "",
        "| alerts | seizures | mass (kg) | volume (l) | tablets | pieces |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {total['alerts']} | {total['seizures']} | {_num(total['mass_kg'])} | "
        f"{_num(total['volume_l'])} | {_num(total['tablets'])} | {_num(total['pieces'])} |",
        "",
        f"Restricted traffic: {data.restricted} of {data.alerts} alerts "
        f"({_restricted_share(data):.1f} %) were shared with named recipients only.",
    ]
    if note := _live_note(data):
        lines += ["", f"_{note}_"]
    for by in DIMENSIONS:
        lines += [
            "",
            f"## {TITLES[by]}",
            "",
            "| group | alerts | seizures | mass (kg) | volume (l) | tablets |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for g in _groups(data, by, 15 if by == "route" else None):
            lines.append(
                f"| {_label(g['key'])} | {g['alerts']} | {g['seizures']} | {_num(g['mass_kg'])} | "
                f"{_num(g['volume_l'])} | {_num(g['tablets'])} |"
            )
    lines += [
        "",
        "## Largest seizures",
        "",
        "| kg | commodities | reported by | place | mode | summary |",
        "| ---: | --- | --- | --- | --- | --- |",
    ]
    for entry in data.largest:
        row = entry["row"]
        lines.append(
            f"| {_num(entry['kg'])} | {', '.join(sorted(entry['commodities']))} | {row['reported_by']} | "
            f"{row['place'] or row['territory']} | {_label(row['transport_mode'])} | "
            f"{row['summary'].replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def _bars(groups: list[dict[str, Any]], value: str, unit: str) -> str:
    """A horizontal bar chart as inline SVG."""
    rows = [g for g in groups if g[value]] or groups
    if not rows:
        return "<p class=muted>No data.</p>"
    top = max(g[value] for g in rows) or 1
    height, width, label_w = 22, 640, 190
    parts = [f'<svg viewBox="0 0 {width} {height * len(rows) + 4}" role="img" class="chart">']
    for i, g in enumerate(rows):
        y = i * height + 2
        w = (width - label_w - 90) * g[value] / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{html.escape(_label(g["key"]))}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{height - 8}" rx="2"></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{_num(g[value])} {unit}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(groups: list[dict[str, Any]]) -> str:
    head = "<tr><th>group</th><th>alerts</th><th>seizures</th><th>mass (kg)</th><th>volume (l)</th><th>tablets</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(_label(g['key']))}</td><td>{g['alerts']}</td><td>{g['seizures']}</td>"
        f"<td>{_num(g['mass_kg'])}</td><td>{_num(g['volume_l'])}</td><td>{_num(g['tablets'])}</td></tr>"
        for g in groups
    )
    return f"<table>{head}{body}</table>"


CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:900px;margin:2rem auto;padding:0 1rem;color:#1d2733}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2rem;border-bottom:1px solid #d8dee6;padding-bottom:.2rem}
.tlp{display:inline-block;padding:.1rem .5rem;border-radius:3px;background:#000;color:#ffc000;font-weight:700}
.muted{color:#5b6b7c} table{border-collapse:collapse;width:100%;margin:.5rem 0} td,th{padding:.25rem .5rem;border-bottom:1px solid #e6eaef;text-align:right}
td:first-child,th:first-child{text-align:left} .kpis{display:flex;gap:1rem;flex-wrap:wrap}
.kpi{flex:1 1 120px;background:#f3f6f9;border-radius:6px;padding:.6rem .8rem} .kpi b{display:block;font-size:1.4rem}
.chart{width:100%;font-size:12px} .chart rect{fill:#2f6db5} .chart text{fill:#1d2733}
"""


def render_html(data: ReportData) -> str:
    op, total = data.operation, data.total
    kpis = "".join(
        f"<div class=kpi><b>{value}</b>{label}</div>"
        for value, label in (
            (total["alerts"], "alerts"),
            (total["seizures"], "seizures"),
            (_num(total["mass_kg"]), "kg seized"),
            (_num(total["volume_l"]), "litres seized"),
            (_num(total["tablets"]), "tablets seized"),
            (f"{_restricted_share(data):.1f} %", "restricted traffic"),
        )
    )
    sections = []
    for by in DIMENSIONS:
        groups = _groups(data, by, 15 if by == "route" else None)
        chart = _bars(
            groups, "seizures" if by == "week" else "mass_kg", "seizures" if by == "week" else "kg"
        )
        sections.append(f"<h2>{TITLES[by]}</h2>{chart}{_table(groups)}")
    largest = "".join(
        f"<tr><td>{_num(e['kg'])}</td><td>{html.escape(', '.join(sorted(e['commodities'])))}</td>"
        f"<td>{html.escape(e['row']['reported_by'])}</td><td>{html.escape(e['row']['place'] or e['row']['territory'])}</td>"
        f"<td>{html.escape(_label(e['row']['transport_mode']))}</td><td>{html.escape(e['row']['summary'])}</td></tr>"
        for e in data.largest
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Operation {html.escape(op["name"])} — report</title><style>{CSS}</style></head><body>
<p><span class=tlp>TLP:{html.escape(data.tlp)}</span></p>
<h1>Operation {html.escape(op["name"])} ({html.escape(op["code"])})</h1>
<p class=muted>Coordinator {html.escape(op["coordinator"])}, {len(op["participants"])} participating administrations,
planned {op["starts_at"][:10]} to {op["ends_at"][:10]}. As seen by {html.escape(data.viewer["administration"] or "")}
({html.escape(data.viewer["label"])}); generated {data.generated_at}.</p>
<h2>Totals</h2><div class=kpis>{kpis}</div>
<p>{data.restricted} of {data.alerts} alerts were shared with named recipients only.</p>
<p class=muted>{html.escape(_live_note(data))}</p>
{"".join(sections)}
<h2>Largest seizures</h2>
<table><tr><th>kg</th><th>commodities</th><th>reported by</th><th>place</th><th>mode</th><th>summary</th></tr>{largest}</table>
</body></html>
"""


def build(url: str, token: str, operation: str, *, fmt: str, advance: Callable[[str], None]) -> str:
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        data = gather(client, operation, advance=advance)
    return render_html(data) if fmt == "html" else render_markdown(data)


STEPS = 2 + len(DIMENSIONS)
