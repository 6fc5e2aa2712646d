"""``baton replay`` with unusable inputs: each gets one clear message and exit code 2 (the code a CI
job reads as "the check could not run", never as "the gate was crossed", which is 1), and nothing
is left half-written as if it had run.

The history is a few rows in the ServiceNow export's own layout, written here, so these run
without the shared data.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from baton.cli import app
from tests.unit.analytics.test_kpis import KPI_POLICY

runner = CliRunner()
HEADER = (
    "number,incident_state,active,reassignment_count,reopen_count,sys_mod_count,made_sla,caller_id,"
    "opened_by,opened_at,sys_created_by,sys_created_at,sys_updated_by,sys_updated_at,contact_type,"
    "location,category,subcategory,u_symptom,cmdb_ci,impact,urgency,priority,assignment_group,"
    "assigned_to,knowledge,u_priority_confirmation,notify,problem_id,rfc,vendor,caused_by,closed_code,"
    "resolved_by,resolved_at,closed_at"
)


def row(number: str, state: str, opened: str, updated: str) -> str:
    return (
        f"{number},{state},true,0,0,0,true,Caller 1,Opened by 1,{opened},Created by 1,{opened},"
        f"Updated by 1,{updated},Phone,Location 1,Category 1,Subcategory 1,Symptom 1,?,2 - Medium,"
        "2 - Medium,3 - Moderate,Group 1,?,true,false,Do Not Notify,?,?,?,?,code 1,?,?,?"
    )


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "incidents.csv"
    rows = [
        row("INC1", "New", "1/3/2016 09:00", "1/3/2016 09:05"),
        row("INC1", "Resolved", "1/3/2016 09:00", "1/3/2016 12:00"),
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def replay(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["replay", "--policy", str(KPI_POLICY), *args])
    return result.exit_code, result.output.replace("\n", " ")


def test_the_small_history_itself_replays(history: Path, tmp_path: Path) -> None:
    code, output = replay(
        "--history", str(history), "--mapping", "servicenow", "--out", str(tmp_path / "out")
    )
    assert code == 0, output
    assert "tickets: 1, events: 2" in output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing history", "No such file"),
        ("unknown mapping", "zendesk-export"),
        ("missing accounts", "accounts.csv"),
        ("compare is not a policy", "missing file"),
        ("out is a file", "cannot write the replay's outputs here"),
        ("out cannot be made", "cannot write the replay's outputs here"),
    ],
)
def test_an_unusable_input_is_exit_2_with_one_clear_message(
    history: Path, tmp_path: Path, change: str, message: str
) -> None:
    args = {"--history": str(history), "--mapping": "servicenow", "--out": str(tmp_path / "out")}
    extra: list[str] = []
    if change == "missing history":
        args["--history"] = str(tmp_path / "nowhere.csv")
    elif change == "unknown mapping":
        args["--mapping"] = "zendesk-export"
    elif change == "missing accounts":
        extra = ["--accounts", str(tmp_path / "accounts.csv")]
    elif change == "compare is not a policy":
        (tmp_path / "empty").mkdir()
        extra = ["--compare", str(tmp_path / "empty")]
    elif change == "out is a file":
        (tmp_path / "taken").write_text("mine\n")
        args["--out"] = str(tmp_path / "taken")
    elif change == "out cannot be made":
        (tmp_path / "taken").write_text("mine\n")
        args["--out"] = str(tmp_path / "taken" / "below")
    code, output = replay(*[part for pair in args.items() for part in pair], *extra)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output
    if change == "out is a file":
        assert (tmp_path / "taken").read_text() == "mine\n"  # not overwritten, not removed


def test_a_history_with_no_usable_event_fails_the_run_instead_of_passing_the_gate(
    tmp_path: Path,
) -> None:
    # Every row's time is garbage: each is reported, and an empty replay must not pass a gate
    # that a CI job relies on (a KPI nobody measured would otherwise count as "no data").
    path = tmp_path / "broken.csv"
    path.write_text(
        "\n".join([HEADER, row("INC1", "New", "soon", "later"), row("INC2", "New", "x", "y")]) + "\n"
    )
    gate = tmp_path / "gate.yaml"
    gate.write_text("sla_compliance: {min: 0.9}\n")
    code, output = replay(
        "--history", str(path), "--mapping", "servicenow", "--out", str(tmp_path / "out"), "--gate", str(gate)
    )
    assert code == 2, output
    assert "row 2:" in output and "row 3:" in output
    assert "no usable event in 2 row(s) (2 unusable): nothing to replay" in output
    assert "gate: passed" not in output
    assert not (tmp_path / "out" / "kpis.json").exists()


def test_kpis_of_a_history_as_it_happened_read_the_accounts_given(history: Path, tmp_path: Path) -> None:
    # A mapping that names the account column; the account file gives its MRR band.
    builtin = (
        Path(__file__).resolve().parents[2] / "src" / "baton" / "signals" / "mappings" / "servicenow.yaml"
    )
    mapping = tmp_path / "with-accounts.yaml"
    mapping.write_text(builtin.read_text(encoding="utf-8") + "account: location\n", encoding="utf-8")
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("id,name,plan,mrr\nLocation 1,Big,enterprise,25000\nbad line,,,not a number\n")
    args = ["kpis", "--history", str(history), "--mapping", str(mapping), "--json"]
    without = runner.invoke(app, args)
    with_accounts = runner.invoke(app, [*args, "--accounts", str(accounts)])
    assert without.exit_code == 0 and with_accounts.exit_code == 0, with_accounts.output
    plain = orjson.loads(without.stdout)["kpis"]
    known = orjson.loads(with_accounts.stdout)["kpis"]
    assert plain["sla_recorded_met.mrr_band.unknown"] == 1 and "sla_recorded_met.mrr_band.20k+" not in plain
    assert known["sla_recorded_met.mrr_band.20k+"] == 1 and known["enrichment_success_rate"] == 1.0
    assert "accounts.csv" in with_accounts.stderr  # the bad line is reported, not fatal
    missing = runner.invoke(app, [*args, "--accounts", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "none.csv" in missing.output
