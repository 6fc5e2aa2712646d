"""The ``baton`` command line, run in-process on a temporary workspace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from baton.cli import app
from baton.model import Event
from tests.conftest import EXAMPLE_POLICY, TEST_POLICY
from tests.helpers import event

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("BATON_WORKSPACE", str(ws))
    monkeypatch.delenv("BATON_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    return ws


def test_init_installs_the_example_policy(workspace: Path) -> None:
    assert (workspace / "policy" / "baton.yaml").exists()
    assert (workspace / "policy" / "templates").is_dir()
    assert (workspace / "baton.db").exists()


def test_schema_event_is_the_json_schema(workspace: Path) -> None:
    result = runner.invoke(app, ["schema", "event"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema == json.loads(json.dumps(Event.model_json_schema()))


def lines(*items: str) -> str:
    return "\n".join(items) + "\n"


def test_ingest_reports_bad_lines_by_number_and_keeps_the_good_ones(workspace: Path, tmp_path: Path) -> None:
    good = [event(i).model_dump_json() for i in range(3)]
    file = tmp_path / "events.jsonl"
    file.write_text(
        lines(
            good[0],
            "{not json",
            "",
            good[1],
            json.dumps(
                {"source": "x", "event_id": "1", "type": "nope", "occurred_at": "2026-01-01T00:00:00Z"}
            ),
            '{"a":' * 100 + "1" + "}" * 100,
            good[2],
            good[0],
        )
    )
    result = runner.invoke(app, ["ingest", str(file)])
    assert result.exit_code == 1
    out = result.output
    assert "line 2: malformed JSON" in out
    assert "line 5: type:" in out
    assert "line 6: JSON nested deeper" in out
    assert "events: 3 accepted, 1 duplicates, 3 errors" in out
    again = runner.invoke(app, ["ingest", str(file)])
    assert "events: 0 accepted, 4 duplicates, 3 errors" in again.output


def test_ingest_skips_an_oversized_line_without_loading_it(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_MAX_BODY_BYTES", "2048")
    file = tmp_path / "big.jsonl"
    file.write_text(lines("x" * 10_000, event(1).model_dump_json()))
    result = runner.invoke(app, ["ingest", str(file)])
    assert "line 1: line longer than 2048 bytes" in result.output
    assert "events: 1 accepted, 0 duplicates, 1 errors" in result.output


def test_ingest_of_a_missing_file_is_a_clear_error(workspace: Path) -> None:
    result = runner.invoke(app, ["ingest", "/nonexistent/file.jsonl"])
    assert result.exit_code == 2
    assert "No such file" in result.output


def test_tickets_list_and_show(workspace: Path, tmp_path: Path) -> None:
    file = tmp_path / "e.jsonl"
    file.write_text(lines(event(7, subject="Printer on fire").model_dump_json()))
    assert runner.invoke(app, ["ingest", str(file)]).exit_code == 0
    listed = runner.invoke(app, ["tickets", "list"])
    assert "Printer" in listed.output  # the table may wrap the subject at 80 columns
    ticket_id = next(word for word in listed.output.split() if word.startswith("T-"))
    shown = runner.invoke(app, ["tickets", "show", ticket_id])
    assert shown.exit_code == 0 and "decision" in shown.output and "Printer on fire" in shown.output
    assert runner.invoke(app, ["tickets", "show", "T-missing"]).exit_code == 1


def test_token_create_prints_a_token_once_and_refuses_unknown_roles(workspace: Path) -> None:
    ok = runner.invoke(app, ["token", "create", "--role", "viewer"])
    assert ok.exit_code == 0 and ok.output.startswith("bt_")
    bad = runner.invoke(app, ["token", "create", "--role", "emperor"])
    assert bad.exit_code != 0


def test_policy_check(tmp_path: Path) -> None:
    good = runner.invoke(app, ["policy", "check", str(EXAMPLE_POLICY)])
    assert good.exit_code == 0 and "ok: policy acme-support" in good.output
    bad_dir = tmp_path / "policy"
    shutil.copytree(TEST_POLICY, bad_dir)
    (bad_dir / "routing.yaml").write_text("routng: []\n")
    bad = runner.invoke(app, ["policy", "check", str(bad_dir)])
    assert bad.exit_code == 1
    assert f"{bad_dir / 'routing.yaml'}:1:1: unknown field 'routng'" in bad.output


def test_accounts_load_reports_bad_rows(workspace: Path, tmp_path: Path) -> None:
    csv = tmp_path / "accounts.csv"
    csv.write_text(
        "id,plan,mrr,renewal_date\nacme,enterprise,1000,2027-01-01\nbad,pro,lots,2027-01-01\nodd,x,1,not-a-date\n"
    )
    result = runner.invoke(app, ["accounts", "load", str(csv)])
    assert "accounts: 1 loaded, 2 rejected" in result.output
    assert ":3: mrr" in result.output and ":4: renewal_date" in result.output
