"""``report.html``: a replay's KPIs, comparison and gate in one self-contained page.

Inline CSS and inline SVG drawn here, no script and nothing fetched: the file opens offline, in a
CI artifact viewer or from an e-mail. Everything comes from ``kpis.json``'s document plus the
duration histograms, in a fixed order, so the same replay gives the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from html import escape
from typing import Any

from baton.analytics.kpis import HISTOGRAM_HOURS, KpiReport, Value

__all__ = ["HEADLINE", "bar_chart", "format_value", "render_report"]

# (name, label, format) of the KPIs shown first.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("tickets", "Tickets", "count"),
    ("resolved_tickets", "Resolved", "count"),
    ("mttr_hours", "MTTR (final resolution)", "hours"),
    ("ttr_p50_hours", "Time to resolution p50", "hours"),
    ("ttr_p90_hours", "Time to resolution p90", "hours"),
    ("first_resolution_p50_hours", "Time to first resolution p50", "hours"),
    ("active_resolution_p50_hours", "Active resolution time p50", "hours"),
    ("first_response_p50_hours", "Time to first response p50", "hours"),
    ("first_action_p50_hours", "Time to first action p50", "hours"),
    ("escalation_rate", "Escalation rate", "rate"),
    ("repeat_escalation_rate", "Repeat-escalation rate", "rate"),
    ("handoffs_per_ticket", "Handoffs per ticket", "number"),
    ("bounce_rate", "Bounce rate (A→B→A)", "rate"),
    ("return_rate", "Return rate", "rate"),
    ("sla_compliance", "SLA compliance", "rate"),
    ("sla_recorded_compliance", "SLA compliance recorded by the source", "rate"),
    ("fcr_rate", "First-contact resolution", "rate"),
    ("reopen_rate", "Reopen rate", "rate"),
    ("sme_interruptions_per_100", "SME interruptions per 100 tickets", "number"),
    ("enrichment_success_rate", "Enrichment success", "rate"),
    ("rollback_rate", "Automated-action rollback rate", "rate"),
    ("revenue_at_risk_arr", "Revenue at risk (ARR)", "money"),
)
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2430;padding:0 1rem}h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #d8dde6;padding-bottom:.3rem}.meta{color:#5a6475;margin:.2rem 0}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;padding:.25rem .5rem;
border-bottom:1px solid #eceff4;vertical-align:top}th{background:#f5f7fa;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.up{color:#0b7a3e}.down{color:#b3261e}
.pass{color:#0b7a3e;font-weight:600}.fail{color:#b3261e;font-weight:600}.nodata{color:#5a6475}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1rem}
figure{margin:0;border:1px solid #eceff4;border-radius:6px;padding:.5rem}
figcaption{font-weight:600;margin:.2rem .3rem}
code{background:#f5f7fa;padding:0 .2rem;border-radius:3px}details summary{cursor:pointer;margin:.5rem 0}
"""
_COLOURS = ("#3b6fd8", "#e08a1e")
_NONE = "&ndash;"  # no value


def format_value(value: Value, kind: str) -> str:
    """A KPI value for people: rates as percentages, hours with one decimal, counts grouped."""
    if value is None:
        return "-"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "hours":
        return f"{value:,.1f} h"
    if kind == "money":
        return f"{value:,.0f}"
    if kind == "count" or isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.3f}"


def _fmt(value: Value, kind: str) -> str:
    return _NONE if value is None else escape(format_value(value, kind))


def _kind(name: str) -> str:
    for key, _, kind in HEADLINE:
        if key == name:
            return kind
    if name.endswith("_hours"):
        return "hours"
    if "rate" in name.split(".")[0] or "compliance" in name.split(".")[0]:
        return "rate"
    return "number"


def _delta_cell(delta: Value, relative: Value, kind: str) -> str:
    if delta is None:
        return f'<td class="n">{_NONE}</td>'
    sign = "+" if delta > 0 else ""
    shown = f"{sign}{delta * 100:.1f} pt" if kind == "rate" else f"{sign}{_fmt(delta, kind)}"
    if relative is not None and kind != "rate":
        shown += f" ({'+' if relative > 0 else ''}{relative * 100:.1f}%)"
    css = "up" if delta > 0 else "down" if delta < 0 else ""
    return f'<td class="n {css}">{escape(shown)}</td>'


def _kpi_table(rows: Sequence[tuple[str, str, str]], doc: dict[str, Any]) -> str:
    compare = doc.get("compare", {}).get("kpis")
    head = "<tr><th>KPI</th><th>name</th>"
    head += "<th>baseline</th><th>policy</th><th>delta</th></tr>" if compare else "<th>value</th></tr>"
    out = [f"<table>{head}"]
    for name, label, kind in rows:
        cells = f"<td>{escape(label)}</td><td><code>{escape(name)}</code></td>"
        if compare:
            row = compare.get(name, {})
            cells += f'<td class="n">{_fmt(row.get("baseline"), kind)}</td>'
            cells += f'<td class="n">{_fmt(row.get("policy"), kind)}</td>'
            cells += _delta_cell(row.get("delta"), row.get("relative"), kind)
        else:
            cells += f'<td class="n">{_fmt(doc["kpis"].get(name), kind)}</td>'
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def bar_chart(
    categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, kind: str
) -> str:
    """Vertical grouped bars as inline SVG; a missing value draws no bar and says so."""
    width, height, left, bottom, top = 520, 240, 48, 44, 16
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max((v for _, values in series for v in values if v is not None), default=0.0)
    scale = 1.0 if kind == "rate" else (peak or 1.0)
    group = plot_w / max(len(categories), 1)
    bar = group * 0.8 / max(len(series), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'width="100%" font-size="11" font-family="system-ui,sans-serif">'
    ]
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        tick = scale * i / 4
        label = (
            _fmt(tick, "rate")
            if kind == "rate"
            else escape(f"{tick:,.0f}" if kind == "count" else f"{tick:,.2f}")
        )
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eceff4"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#5a6475">{label}</text>')
    for c, category in enumerate(categories):
        x0 = left + c * group + group * 0.1
        for s, (name, values) in enumerate(series):
            value = values[c] if c < len(values) else None
            x = x0 + s * bar
            if value is None:
                parts.append(
                    f'<text x="{x + bar / 2:.1f}" y="{top + plot_h - 3}" text-anchor="middle" '
                    'fill="#9aa3b2">n/a</text>'
                )
                continue
            h = plot_h * min(value / scale, 1.0) if scale else 0.0
            shown = f"{value:,.0f}" if kind == "count" else format_value(value, kind)
            tip = f"{name}: {category}: {shown}"
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar * 0.95:.1f}" height="{h:.1f}" '
                f'fill="{_COLOURS[s % len(_COLOURS)]}"><title>{escape(tip)}</title></rect>'
            )
        parts.append(
            f'<text x="{left + c * group + group / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle">'
            f"{escape(category)}</text>"
        )
    for s, (name, _) in enumerate(series):
        x = left + s * 170
        parts.append(
            f'<rect x="{x}" y="{height - 16}" width="10" height="10" fill="{_COLOURS[s % len(_COLOURS)]}"/>'
        )
        parts.append(f'<text x="{x + 14}" y="{height - 7}">{escape(name[:26])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _buckets() -> list[str]:
    edges = [_hours_label(h) for h in HISTOGRAM_HOURS]
    return [f"<{edges[0]}", *(f"{a}-{b}" for a, b in itertools.pairwise(edges)), f"{edges[-1]}+"]


def _hours_label(hours: float) -> str:
    return f"{hours / 24:g}d" if hours >= 24 else f"{hours:g}h"


def _series(doc: dict[str, Any], names: Sequence[str]) -> list[tuple[str, list[float | None]]]:
    sides = [("policy", doc["kpis"])]
    if "baseline" in doc:
        sides = [("baseline", doc["baseline"]["kpis"]), *sides]
    out: list[tuple[str, list[float | None]]] = []
    for side, kpis in sides:
        label = doc["policy"]["name"] if side == "policy" else doc["baseline"]["policy"]["name"]
        out.append((f"{side}: {label}", [kpis.get(n) for n in names]))
    return out


def _charts(doc: dict[str, Any], reports: Sequence[tuple[str, KpiReport]]) -> str:
    figures: list[tuple[str, str]] = []
    for key, title in (
        ("resolution", "Time to resolution (tickets)"),
        ("first_action", "Time to first action"),
    ):
        series = [(label, [float(v) for v in r.histograms.get(key, [])]) for label, r in reports]
        if any(sum(values) for _, values in series if values):
            figures.append((title, bar_chart(_buckets(), series, kind="count")))
    tiers = sorted({n.split(".", 2)[2] for n in doc["kpis"] if n.startswith("escalation_rate.tier.")})
    if tiers:
        names = [f"escalation_rate.tier.{t}" for t in tiers]
        figures.append(("Escalation rate per tier", bar_chart(tiers, _series(doc, names), kind="rate")))
    for dim, title in (("priority", "priority"), ("tier", "tier"), ("mrr_band", "MRR band")):
        for kpi, what in (("sla_compliance", "SLA compliance"), ("sla_recorded_compliance", "Recorded SLA")):
            groups = sorted({n.split(".", 2)[2] for n in doc["kpis"] if n.startswith(f"{kpi}.{dim}.")})
            names = [f"{kpi}.{dim}.{g}" for g in groups]
            if groups and any(doc["kpis"].get(n) is not None for n in names):
                figures.append((f"{what} per {title}", bar_chart(groups, _series(doc, names), kind="rate")))
    body = "".join(f"<figure><figcaption>{escape(t)}</figcaption>{svg}</figure>" for t, svg in figures)
    return f'<div class="charts">{body}</div>' if figures else "<p>Nothing to chart.</p>"


def _gate(doc: dict[str, Any]) -> str:
    gate = doc.get("gate")
    if gate is None:
        return ""
    verdict = '<span class="pass">passed</span>' if gate["passed"] else '<span class="fail">FAILED</span>'
    rows = [
        "<table><tr><th>KPI</th><th>limit</th><th>baseline</th><th>policy</th><th>observed</th><th></th></tr>"
    ]
    for r in gate["results"]:
        css = {"pass": "pass", "fail": "fail"}.get(r["status"], "nodata")
        rows.append(
            f"<tr><td><code>{escape(r['kpi'])}</code></td><td>{escape(r['rule'])} {r['limit']:g}</td>"
            f'<td class="n">{_fmt(r["baseline"], "number")}</td>'
            f'<td class="n">{_fmt(r["policy"], "number")}</td>'
            f'<td class="n">{_fmt(r["observed"], "number")}</td>'
            f'<td class="{css}">{escape(r["status"])}</td></tr>'
        )
    rows.append("</table>")
    return f"<h2>Gate: {verdict}</h2>" + "".join(rows)


def _differences(doc: dict[str, Any]) -> str:
    compare = doc.get("compare")
    if compare is None:
        return ""
    t = compare["tickets"]
    out = [
        f"<h2>Tickets that change</h2><p>{t['changed']:,} of {t['tickets']:,} tickets end differently "
        f"under <code>{escape(doc['policy']['name'])}</code> than under the baseline "
        f"<code>{escape(doc['baseline']['policy']['name'])}</code>.</p>",
        "<table><tr><th>what differs</th><th>tickets</th></tr>",
        *(f'<tr><td>{escape(d)}</td><td class="n">{n:,}</td></tr>' for d, n in t["by"].items()),
        "</table>",
    ]
    for dim, examples in t["examples"].items():
        if not examples:
            continue
        out.append(f"<details><summary>Examples: {escape(dim)} ({t['by'][dim]:,})</summary><table>")
        out.append("<tr><th>ticket</th><th>baseline</th><th>policy</th></tr>")
        for e in examples:
            out.append(
                f"<tr><td><code>{escape(e['external_id'] or e['ticket'])}</code></td>"
                f"<td>{escape(e['baseline'])}</td><td>{escape(e['policy'])}</td></tr>"
            )
        out.append("</table></details>")
    return "\n".join(out)


def render_report(doc: dict[str, Any], reports: Sequence[tuple[str, KpiReport]]) -> str:
    """The page for ``doc`` (the kpis.json document); ``reports`` give the histograms, labelled."""
    policy, history = doc["policy"], doc["history"]
    title = f"Replay of {history['file']} through {policy['name']}"
    meta = (
        f"policy <code>{escape(policy['name'])}</code> version <code>{escape(policy['version'])}</code>"
        + (
            f" compared with <code>{escape(doc['baseline']['policy']['name'])}</code> version "
            f"<code>{escape(doc['baseline']['policy']['version'])}</code>"
            if "baseline" in doc
            else ""
        )
    )
    counts = (
        f"{doc['tickets']:,} tickets, {doc['events']:,} events ({doc['errors']:,} rows unusable), "
        f"{doc['decisions']:,} decisions, {doc['timers_fired']:,} timers fired; "
        f"mapping <code>{escape(history['mapping'])}</code>, "
        f"sha256 <code>{escape(history['sha256'][:16])}</code>"
        + (f", first {history['limit']:,} tickets" if history.get("limit") else "")
        + (f"; as of {escape(doc['as_of'])}" if doc.get("as_of") else "")
    )
    headline = [(n, label, kind) for n, label, kind in HEADLINE if n in doc["kpis"]]
    every = [(n, n, _kind(n)) for n in sorted(doc["kpis"])]
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n<h1>{escape(title)}</h1>\n"
        f'<p class="meta">{meta}</p><p class="meta">{counts}</p>\n'
        f"{_gate(doc)}\n<h2>Key figures</h2>\n{_kpi_table(headline, doc)}\n"
        f"<h2>Charts</h2>\n{_charts(doc, reports)}\n{_differences(doc)}\n"
        f"<h2>Every KPI</h2><details><summary>{len(every)} KPIs (definitions in docs/kpis.md)</summary>"
        f"{_kpi_table(every, doc)}</details>\n</body></html>\n"
    )
