"""``baton replay``: outputs, determinism, comparison of two policies, gates and exit codes, and
decision records shaped exactly like the live service's.

The history is the first tickets of the real ServiceNow log (the test is skipped without it); the
policies are tests/fixtures/kpi_policy and a copy with a different routing rule name and much
longer SLA targets, so that routes, tiers, owners, escalations and SLA outcomes all differ.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from baton.cli import app
from baton.clock import FakeClock
from baton.engine.runtime import Engine
from baton.model import Event
from baton.policy.loader import load_policy
from baton.replay.run import PolicyRun
from baton.store import repo
from baton.store.db import Database
from baton.store.schema import decisions, events, outbox
from tests.conftest import ROOT, missing_data
from tests.integration.test_kpis_live import drive, mixed
from tests.unit.analytics.test_kpis import ACCOUNTS, KPI_POLICY

HISTORY = ROOT.parent / "shared" / "data" / "servicenow_incident_event_log.csv.gz"
LIMIT = "120"
runner = CliRunner()
needs_log = pytest.mark.skipif(missing_data(HISTORY), reason=f"the ServiceNow log is not at {HISTORY}")


@pytest.fixture(scope="module")
def relaxed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The KPI policy with another routing rule name and SLA targets ten times longer."""
    folder = tmp_path_factory.mktemp("relaxed") / "policy"
    shutil.copytree(KPI_POLICY, folder)
    routing = folder / "routing.yaml"
    routing.write_text(routing.read_text().replace("name: default", "name: everything"))
    sla = folder / "sla.yaml"
    sla.write_text(
        sla.read_text().replace(
            "first_response: 2h, resolution: 10h", "first_response: 24h, resolution: 200h"
        )
    )
    return folder


def replay(out: Path, *extra: str, policy: Path = KPI_POLICY) -> tuple[int, str]:
    args = ["replay", "--policy", str(policy), "--history", str(HISTORY), "--out", str(out), "--limit", LIMIT]
    result = runner.invoke(app, [*args, *extra])
    return result.exit_code, result.output


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@needs_log
def test_replay_writes_decisions_kpis_and_a_self_contained_report(tmp_path: Path) -> None:
    code, output = replay(tmp_path / "out", "--mapping", "servicenow")
    assert code == 0, output
    doc = orjson.loads((tmp_path / "out" / "kpis.json").read_bytes())
    lines = (tmp_path / "out" / "decisions.jsonl").read_bytes().splitlines()
    assert doc["tickets"] == int(LIMIT) == doc["kpis"]["tickets"]
    assert doc["events"] > doc["tickets"] and doc["errors"] == 0
    assert len(lines) == doc["decisions"] == doc["events"] + doc["timers_fired"]
    first = orjson.loads(lines[0])
    assert {r["rule"] for r in first["reasons"]} >= {"routing.default", "sla.basic"}
    assert doc["history"] == {
        "file": HISTORY.name,
        "limit": int(LIMIT),
        "mapping": "servicenow",
        "rows": doc["events"],
        "sha256": doc["history"]["sha256"],
    }
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<svg" in html and "<style>" in html
    for fetched in ("<script", "<link", "src=", "url(", "@import", "https://"):
        assert fetched not in html


@needs_log
def test_replay_and_history_kpis_tune_the_collector_as_the_engine_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the collector's default thresholds, a whole-log replay ran 33 s instead of 28 s: its
    # millions of short-lived objects set off a collection every 700 allocations.
    calls: list[str] = []
    monkeypatch.setattr("baton.cli.tune_gc", lambda: calls.append("tuned"))
    code, output = replay(tmp_path / "out")
    assert code == 0, output
    assert calls == ["tuned"]
    result = runner.invoke(app, ["kpis", "--history", str(HISTORY), "--limit", LIMIT, "--json"])
    assert result.exit_code == 0, result.output
    assert calls == ["tuned", "tuned"]


@needs_log
def test_the_same_inputs_give_the_same_bytes(tmp_path: Path, relaxed: Path) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text("escalation_rate: {max_relative_increase: 10}\n")
    runs = [replay(tmp_path / name, "--compare", str(relaxed), "--gate", str(gate)) for name in ("a", "b")]
    assert [code for code, _ in runs] == [0, 0], runs
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert set(files(tmp_path / "a")) == {
        "decisions.jsonl",
        "decisions.baseline.jsonl",
        "kpis.json",
        "report.html",
    }


@needs_log
def test_the_same_bytes_from_separate_processes_whatever_their_hash_seed(
    tmp_path: Path, relaxed: Path
) -> None:
    """Nothing in the outputs may depend on set or dict order that differs between processes."""
    baton = Path(sys.executable).parent / "baton"
    for seed in ("1", "2"):
        args = ["replay", "--policy", str(KPI_POLICY), "--compare", str(relaxed), "--history", str(HISTORY)]
        done = subprocess.run(
            [str(baton), *args, "--out", str(tmp_path / seed), "--limit", "40"],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert files(tmp_path / "1") == files(tmp_path / "2")


@needs_log
def test_compare_reports_what_changes_and_every_kpi_side_by_side(tmp_path: Path, relaxed: Path) -> None:
    code, output = replay(tmp_path, "--compare", str(relaxed))
    assert code == 0, output
    doc = orjson.loads((tmp_path / "kpis.json").read_bytes())
    tickets = doc["compare"]["tickets"]
    assert tickets["tickets"] == int(LIMIT)
    assert tickets["by"]["route"] == int(LIMIT)  # the rule is called differently in each
    assert tickets["by"]["tier"] > 0 and tickets["by"]["escalation"] > 0 and tickets["by"]["sla"] > 0
    assert tickets["changed"] == int(LIMIT)
    example = tickets["examples"]["route"][0]
    assert (example["baseline"], example["policy"]) == ("everything", "default")
    assert example["external_id"].startswith("INC")
    assert len(tickets["examples"]["tier"]) == min(10, tickets["by"]["tier"])
    rate = doc["compare"]["kpis"]["escalation_rate"]
    assert rate["policy"] == doc["kpis"]["escalation_rate"]
    assert rate["baseline"] == doc["baseline"]["kpis"]["escalation_rate"]
    assert rate["delta"] == pytest.approx(rate["policy"] - rate["baseline"], abs=1e-6)
    assert rate["delta"] > 0  # shorter targets: more tier-ups
    assert set(doc["compare"]["kpis"]) == set(doc["kpis"]) | set(doc["baseline"]["kpis"])
    html = (tmp_path / "report.html").read_text()
    assert "Tickets that change" in html and "everything" in html
    assert "tickets that change against the baseline: 120" in output


@needs_log
@pytest.mark.parametrize(
    ("gate", "candidate_is_strict", "code"),
    [
        ("escalation_rate: {max_relative_increase: 0.05}\n", True, 1),
        ("escalation_rate: {max_relative_increase: 0.05}\n", False, 0),
        ("sla_compliance.basic: {min_delta: 0}\n", True, 1),  # short for sla_compliance.sla_policy.basic
        ("sla_compliance.basic: {min_delta: 0}\n", False, 0),
        ("tickets: {min: 120, max: 120}\nmttr_hours: {max: 100000}\n", True, 0),
        ("tickets: {max: 119}\n", True, 1),
    ],
)
def test_gate_exit_codes(
    tmp_path: Path, relaxed: Path, gate: str, candidate_is_strict: bool, code: int
) -> None:
    file = tmp_path / "gate.yaml"
    file.write_text(gate)
    policy, baseline = (KPI_POLICY, relaxed) if candidate_is_strict else (relaxed, KPI_POLICY)
    got, output = replay(tmp_path / "out", "--compare", str(baseline), "--gate", str(file), policy=policy)
    assert got == code, output
    doc = orjson.loads((tmp_path / "out" / "kpis.json").read_bytes())
    assert doc["gate"]["passed"] is (code == 0)
    assert ("gate: passed" in output) is (code == 0)


@needs_log
@pytest.mark.parametrize(
    ("gate", "compare", "message"),
    [
        ("no_such_kpi: {max: 1}\n", True, "gate.yaml:1:1: no KPI is called 'no_such_kpi'"),
        ("escalation_rate: {most: 1}\n", True, "gate.yaml:1:19: unknown limit 'most'"),
        ("escalation_rate: {}\n", True, "gate.yaml:1:1: set at least one of"),
        (
            "escalation_rate: {min_delta: 0}\n",
            False,
            "min_delta compares with a baseline; run with --compare",
        ),
    ],
)
def test_a_bad_gate_is_an_error_not_a_pass(
    tmp_path: Path, relaxed: Path, gate: str, compare: bool, message: str
) -> None:
    file = tmp_path / "gate.yaml"
    file.write_text(gate)
    extra = ["--compare", str(relaxed)] if compare else []
    args = ["--policy", str(KPI_POLICY), "--history", str(HISTORY), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, ["replay", *args, "--limit", "5", "--gate", str(file), *extra])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", "")


@pytest.mark.parametrize("shadow", [False, True], ids=["acting", "shadow"])
def test_replay_records_are_the_live_decision_bodies(db: Database, tmp_path: Path, shadow: bool) -> None:
    """The live service (acting, or in shadow mode) and replay write the same record: line for
    line equal for the same events. In shadow mode the live service sends nothing."""
    folder = KPI_POLICY
    if shadow:
        folder = tmp_path / "shadow"
        shutil.copytree(KPI_POLICY, folder)
        with (folder / "baton.yaml").open("a", encoding="utf-8") as f:
            f.write("safety: {shadow: true}\n")
    policy = load_policy(folder)
    assert policy.shadow is shadow
    stream: list[Event] = sorted(mixed().events, key=lambda e: e.occurred_at)
    sink = io.BytesIO()
    run = PolicyRun(policy, accounts=ACCOUNTS, decisions=sink)
    clock = FakeClock(stream[0].occurred_at)
    engine = Engine(db=db, policy=policy, clock=clock)
    with db.write() as conn:
        repo.upsert_accounts(conn, list(ACCOUNTS.values()))
    for e in stream:
        run.feed(e)
    drive(engine, clock, stream)
    replayed = [orjson.loads(line) for line in sink.getvalue().splitlines()]
    with db.reader.connect() as conn:
        stored = [
            (row.body, row.source)
            for row in conn.execute(
                select(decisions.c.body, events.c.source)
                .join(events, events.c.seq == decisions.c.event_seq)
                .order_by(decisions.c.event_seq)
            )
        ]
    assert len(stored) == len(replayed) and any(source == "baton.timer" for _, source in stored)
    by_id = {r["id"]: r for r in replayed}
    for body, source in stored:
        if source != "baton.timer":
            assert body == by_id[body["id"]]
    # Timer decisions carry the store's timer id in their event id (so their decision id): the rest
    # is the same record.
    timers = [body for body, source in stored if source == "baton.timer"]
    simulated = [r for r in replayed if r["event_source"] == "baton.timer"]
    strip = ("id", "event_id")
    assert [{k: v for k, v in t.items() if k not in strip} for t in timers] == [
        {k: v for k, v in t.items() if k not in strip} for t in simulated
    ]
    with db.reader.connect() as conn:
        statuses = {row.status for row in conn.execute(select(outbox.c.status))}
    actions = [a for r in replayed for a in r["actions"]]
    assert actions and all(a["shadow"] is shadow for a in actions)
    assert statuses and (statuses == {"shadow"}) is shadow  # shadow: every action recorded, none to send
