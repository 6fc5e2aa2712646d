"""``baton import``: a history file through the engine, with `row N: reason` for each bad row and
``tickets: N, events: M, errors: K`` as the last line; importing again adds nothing."""

from __future__ import annotations

import gzip
import json
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from baton.cli import app
from baton.store.db import open_database
from baton.store.schema import events, outbox, tickets
from tests.conftest import ROOT, TEST_POLICY, missing_data

runner = CliRunner()
SERVICENOW = ROOT.parent / "shared" / "data" / "servicenow_incident_event_log.csv.gz"

MAPPING = """\
source: helpdesk
id: id
time: {column: at, format: "%Y-%m-%d %H:%M"}
status: {column: status, map: {open: open, waiting: pending, solved: solved}}
team: team
subject: title
"""
GOOD = [
    "A,2026-01-05 09:00,open,desk,Printer jam",
    "A,2026-01-05 10:00,open,network,Printer jam",
    "A,2026-01-05 11:00,solved,network,Printer jam",
    "B,2026-01-05 09:30,open,desk,VPN down",
    "B,2026-01-05 09:45,waiting,desk,VPN down",
]
BAD = [
    "B,2026-02-30 10:00,open,desk,VPN down",  # no such day
    ",2026-01-05 10:00,open,desk,Nobody",  # no id
    "C,2026-01-05 10:00,open,desk",  # a column short
    "C,2026-01-05 10:00,lost,desk,Where",  # a status the mapping does not know
]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("BATON_WORKSPACE", str(ws))
    monkeypatch.delenv("BATON_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["init", "--policy", str(TEST_POLICY)])
    assert result.exit_code == 0, result.output
    return ws


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "helpdesk.yaml"
    path.write_text(MAPPING)
    return path


def log(tmp_path: Path, rows: list[str], name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text("id,at,status,team,title\n" + "\n".join(rows) + "\n")
    return path


def last_line(result: Result) -> str:
    return result.output.rstrip("\n").splitlines()[-1]


def counts(workspace: Path) -> tuple[int, int]:
    db = open_database(f"sqlite:///{workspace / 'baton.db'}")
    try:
        with db.reader.connect() as conn:
            n_tickets = conn.scalar(select(func.count()).select_from(tickets)) or 0
            n_events = conn.scalar(select(func.count()).select_from(events)) or 0
        return n_tickets, n_events
    finally:
        db.dispose()


def test_import_reports_bad_rows_by_number_and_ends_with_the_counts(
    workspace: Path, tmp_path: Path, mapping: Path
) -> None:
    file = log(tmp_path, [*GOOD[:2], BAD[0], GOOD[2], BAD[1], BAD[2], GOOD[3], BAD[3], GOOD[4]])
    result = runner.invoke(app, ["import", str(file), "--mapping", str(mapping)])
    assert result.exit_code == 1, result.output
    assert "row 4: at: '2026-02-30 10:00' is not a time (%Y-%m-%d %H:%M)" in result.output
    assert "row 6: id: no ticket id" in result.output
    assert "row 7: expected 5 columns, found 4" in result.output
    assert "row 9: status: 'lost' is not in the mapping's status map" in result.output
    assert last_line(result) == "tickets: 2, events: 5, errors: 4"
    assert counts(workspace) == (2, 5)

    again = runner.invoke(app, ["import", str(file), "--mapping", str(mapping)])
    assert "5 events already imported" in again.output
    assert last_line(again) == "tickets: 0, events: 0, errors: 4"
    assert counts(workspace) == (2, 5)


def test_a_longer_export_adds_only_its_new_rows(workspace: Path, tmp_path: Path, mapping: Path) -> None:
    first = runner.invoke(app, ["import", str(log(tmp_path, GOOD[:3])), "-m", str(mapping)])
    assert last_line(first) == "tickets: 1, events: 3, errors: 0" and first.exit_code == 0
    later = runner.invoke(app, ["import", str(log(tmp_path, GOOD, name="later.csv")), "-m", str(mapping)])
    assert last_line(later) == "tickets: 1, events: 2, errors: 0"
    assert counts(workspace) == (2, 5)


def test_gzip_jsonl_with_a_limit(workspace: Path, tmp_path: Path, mapping: Path) -> None:
    path = tmp_path / "log.jsonl.gz"
    keys = ["id", "at", "status", "team", "title"]
    with gzip.open(path, "wt") as f:
        for row in GOOD:
            f.write(json.dumps(dict(zip(keys, row.split(","), strict=True))) + "\n")
    result = runner.invoke(app, ["import", str(path), "-m", str(mapping), "--limit", "1", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert last_line(result) == "tickets: 1, events: 3, errors: 0"


def test_history_is_recorded_not_sent_unless_asked(workspace: Path, tmp_path: Path, mapping: Path) -> None:
    runner.invoke(app, ["import", str(log(tmp_path, GOOD[:1])), "-m", str(mapping)])
    runner.invoke(app, ["import", str(log(tmp_path, GOOD[3:4], name="b.csv")), "-m", str(mapping), "--act"])
    db = open_database(f"sqlite:///{workspace / 'baton.db'}")
    try:
        with db.reader.connect() as conn:
            statuses = sorted(conn.scalars(select(outbox.c.status)))
    finally:
        db.dispose()
    assert statuses == ["pending", "shadow"]  # the routing rule's notification, once per ticket


def test_dry_run_counts_and_stores_nothing(workspace: Path, tmp_path: Path, mapping: Path) -> None:
    result = runner.invoke(
        app, ["import", str(log(tmp_path, [*GOOD, BAD[0]])), "-m", str(mapping), "--dry-run"]
    )
    assert result.exit_code == 1
    assert "team handovers: 1" in result.output
    assert last_line(result) == "tickets: 2, events: 5, errors: 1"
    assert counts(workspace) == (0, 0)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "source: helpdesk\nid: id\ntime: {column: at}\ncolour: red\n",
            "helpdesk.yaml:4:1: unknown field 'colour'",
        ),
        (MAPPING + "assignee: agent\n", "helpdesk.yaml:7:1: column 'agent' is not in the file"),
    ],
)
def test_a_bad_mapping_is_reported_where_written(
    workspace: Path, tmp_path: Path, mapping: Path, text: str, problem: str
) -> None:
    mapping.write_text(textwrap.dedent(text))
    result = runner.invoke(app, ["import", str(log(tmp_path, GOOD)), "-m", str(mapping)])
    assert result.exit_code == 2
    assert problem in result.output
    assert last_line(result) == "tickets: 0, events: 0, errors: 1"
    assert counts(workspace) == (0, 0)


def test_an_unreadable_file(workspace: Path, tmp_path: Path, mapping: Path) -> None:
    result = runner.invoke(app, ["import", str(tmp_path / "missing.csv"), "-m", str(mapping)])
    assert result.exit_code == 2
    assert "missing.csv: No such file or directory" in result.output
    assert last_line(result) == "tickets: 0, events: 0, errors: 1"


@pytest.mark.skipif(missing_data(SERVICENOW), reason="the ServiceNow log is not in ../shared/data")
def test_the_builtin_servicenow_mapping(workspace: Path) -> None:
    result = runner.invoke(app, ["import", str(SERVICENOW), "--mapping", "servicenow", "--limit", "25"])
    assert result.exit_code == 0, result.output
    assert last_line(result).startswith("tickets: 25, events: ")
    n_tickets, n_events = counts(workspace)
    assert n_tickets == 25 and last_line(result) == f"tickets: 25, events: {n_events}, errors: 0"
