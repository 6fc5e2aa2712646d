"""``report.html`` in a real browser, offline: Debian's headless Chromium (Playwright) opens the
report a replay with ``--compare`` and ``--gate`` wrote, from disk, with the network switched off
and every request but the file itself refused. It must load nothing else, log no error, run no
script, and show its charts (drawn, with bars, not empty boxes), the differences and the gate.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from baton.policy.loader import load_policy
from baton.replay.gate import load_gate
from baton.replay.outputs import write_replay
from baton.signals.history_mapping import load_mapping
from tests.conftest import EXAMPLE_POLICY, ROOT, missing_data

HISTORY = ROOT.parent / "shared" / "data" / "servicenow_incident_event_log.csv.gz"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if missing_data(HISTORY):
        pytest.skip(f"the ServiceNow log is not at {HISTORY}")
    root = tmp_path_factory.mktemp("report")
    variant = root / "variant"
    shutil.copytree(EXAMPLE_POLICY, variant)
    sla = variant / "sla.yaml"
    sla.write_text(
        sla.read_text(encoding="utf-8").replace("escalate: tier_up", "escalate: null"), encoding="utf-8"
    )
    gate = root / "gate.yaml"
    gate.write_text("tier_up_tickets: {max_delta: 0}\nescalation_rate: {max_relative_increase: 0.05}\n")
    write_replay(
        root / "out",
        history=HISTORY,
        mapping=load_mapping("servicenow"),
        policy=load_policy(variant),
        baseline=load_policy(EXAMPLE_POLICY),
        limit=300,
        gate=load_gate(gate),
    )
    return root / "out" / "report.html"


def test_the_report_opens_offline_with_its_charts_differences_and_gate(
    browser: Browser, report: Path
) -> None:
    context = browser.new_context(offline=True, java_script_enabled=False)
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.route(
        "**/*", lambda route, request: route.continue_() if request.url == report.as_uri() else route.abort()
    )
    try:
        page.goto(report.as_uri())
        assert requests == [report.as_uri()], "the report loads nothing but itself"
        assert errors == []
        assert page.locator("script").count() == 0
        charts = page.locator("figure svg")
        assert charts.count() >= 3
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50
            assert charts.nth(i).locator("rect").count() > 1, "a chart with bars, not an empty frame"
        text = page.inner_text("body")
        assert "Tickets that change" in text and "of 300 tickets end differently" in text
        assert "Gate: passed" in text  # fewer tier-ups, and the escalation rate did not rise
        assert page.locator("table tr").count() > 10  # the KPIs side by side
    finally:
        context.close()
