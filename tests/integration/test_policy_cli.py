"""``baton policy test`` and ``baton policy explain`` at the command line: what they print, and
their exit status (0 all passed, 1 a failing case, 1 a policy with problems, 1 a bad ticket file)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from baton import cli_common
from baton.cli import app
from baton.policy.testing import TestCase, load_cases
from tests.conftest import EXAMPLE_POLICY

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide enough that no table cell wraps, so names and messages can be looked for whole. The
    consoles are made once, at import, so the width is set on them (COLUMNS in the runner's
    environment would come too late; pytest-xdist's workers have COLUMNS=80)."""
    monkeypatch.setattr(cli_common.out, "width", 400)
    monkeypatch.setattr(cli_common.err, "width", 400)


BILLING_DISPUTE = """\
account: {id: acme, name: Acme, plan: enterprise, mrr: 20000, renewal_date: 2026-04-01, ae: jo@acme.example}
ticket: {subject: "We were charged twice", body: "Invoice 1042 was charged twice.", category: billing}
events:
  - {after: 1h, type: customer.replied, body: "Any news?"}
"""


def policy(*args: str) -> Result:
    return runner.invoke(app, ["policy", *args])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "policy"
    shutil.copytree(EXAMPLE_POLICY, target)
    return target


def break_policy(folder: Path) -> str:
    """Give the policy one problem (a misspelt role); return how `check` reports it."""
    routing = folder / "routing.yaml"
    text = routing.read_text()
    at = text.index("owner: l1-agent}")
    line, col = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
    routing.write_text(text.replace("owner: l1-agent}", "owner: l1-agnet}", 1))
    return f"{routing}:{line}:{col}: unknown role 'l1-agnet'"


# -- policy test -----------------------------------------------------------------------------


def test_policy_test_passes_every_example_case() -> None:
    names = [case.name for _, case in load_cases(EXAMPLE_POLICY) if isinstance(case, TestCase)]
    result = policy("test", str(EXAMPLE_POLICY))
    assert result.exit_code == 0, result.output
    assert f"{len(names)} passed, 0 failed" in result.stdout
    assert result.stdout.count("PASS") == len(names)
    for name in names:
        assert name in result.stdout


def test_policy_test_exits_1_on_a_failing_case_and_says_what_differed(folder: Path) -> None:
    (folder / "tests" / "zz-wrong.yaml").write_text(
        "- name: a billing question expected in the wrong queue\n"
        "  ticket: {subject: Refund please, category: billing}\n"
        "  expect: {route: default, queue: general}\n"
    )
    total = sum(1 for _ in load_cases(folder))
    result = policy("test", str(folder))
    assert result.exit_code == 1, result.output
    assert f"{total - 1} passed, 1 failed" in result.stdout
    assert "FAIL" in result.stdout and "a billing question expected in the wrong queue" in result.stdout
    assert "route: expected 'default', got 'billing'" in result.stdout
    assert "queue: expected 'general', got 'billing'" in result.stdout
    assert f"{folder / 'tests' / 'zz-wrong.yaml'}:1:3" in result.stdout


def test_policy_test_reports_a_case_file_it_cannot_read_as_an_error(folder: Path) -> None:
    (folder / "tests" / "zz-broken.yaml").write_text("- name: half a case\n  ticket: {subject: [\n")
    result = policy("test", str(folder))
    assert result.exit_code == 1
    assert "ERROR" in result.stdout and f"{folder / 'tests' / 'zz-broken.yaml'}:3:1" in result.stdout
    assert "1 failed" in result.stdout


def test_policy_test_reports_a_time_that_is_not_a_duration_where_it_is_written(folder: Path) -> None:
    # It used to be read as no time at all, and the case ran at its start.
    (folder / "tests" / "zz-when.yaml").write_text(
        "- name: '[bold]odd[/bold] timing'\n  ticket: {subject: hello}\n"
        "  events:\n    - {after: soon, type: customer.replied}\n"
    )
    result = policy("test", str(folder))
    assert result.exit_code == 1
    where = f"{folder / 'tests' / 'zz-when.yaml'}:4:8"  # the event that says it
    assert where in result.stdout, result.stdout
    assert "events.0.after: 'soon' is not a duration (use e.g. 30m, 1h30m or 2d)" in result.stdout


def test_policy_test_prints_case_names_as_written(folder: Path) -> None:
    (folder / "tests" / "zz-name.yaml").write_text(
        "- name: '[bold]exactly[/bold] this'\n  ticket: {subject: hi}\n  expect: {route: nowhere}\n"
    )
    result = policy("test", str(folder))
    assert "[bold]exactly[/bold] this" in result.stdout  # not taken for markup


def test_policy_test_without_cases_fails_and_says_so(folder: Path) -> None:
    shutil.rmtree(folder / "tests")
    result = policy("test", str(folder))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"{folder / 'tests'}: no test cases (*.yaml files, each a list of cases)"
    assert result.stdout == ""


def test_policy_test_of_a_bad_policy_lists_its_problems_and_runs_nothing(folder: Path) -> None:
    problem = break_policy(folder)
    result = policy("test", str(folder))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [problem, "1 problem(s)"]
    assert "passed" not in result.output


# -- policy explain --------------------------------------------------------------------------


def test_policy_explain_shows_each_rule_considered_with_what_it_read(tmp_path: Path) -> None:
    ticket = tmp_path / "ticket.yaml"
    ticket.write_text(BILLING_DISPUTE)
    result = policy("explain", str(EXAMPLE_POLICY), "--ticket", str(ticket))
    assert result.exit_code == 0, result.output
    out = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert out[0] == "event 0 at 2026-03-02T09:00:00+00:00"
    assert "no match routing.enterprise-outage account.plan='enterprise', ticket.text=" in " | ".join(out)
    assert any(line.startswith("matched routing.billing ticket.category='billing'") for line in out)
    assert not any(line.startswith("matched routing.default") for line in out)  # first match wins
    assert any(
        line.startswith(
            "matched escalation.billing-dispute-renewal account.mrr=20000.0,"
            " account.renewal_date='2026-04-01'"
        )
        for line in out
    )
    assert any(
        line.startswith("no match escalation.contract-clause-legal ticket.tags=['billing']") for line in out
    )
    assert any(
        line.startswith("matched owner.billing-sme for='escalation.billing-dispute-renewal' hana")
        for line in out
    )
    assert "event 1 at 2026-03-02T10:00:00+00:00" in out
    assert any(
        line.startswith("no match escalation.repeat-contact ticket.customer_replies=1") for line in out
    )


def test_policy_explain_of_a_bad_policy_lists_its_problems(folder: Path, tmp_path: Path) -> None:
    ticket = tmp_path / "ticket.yaml"
    ticket.write_text(BILLING_DISPUTE)
    problem = break_policy(folder)
    result = policy("explain", str(folder), "--ticket", str(ticket))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [problem, "1 problem(s)"]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, ["{path}:1:1: cannot read (No such file or directory)"]),
        (
            "ticket: {subject: [\n",
            ["{path}:2:1: invalid YAML: expected the node content, but found '<stream end>'"],
        ),
        (
            "- ticket: {subject: x}\n",
            ["{path}:1:1: a ticket file is one case, a mapping (account, ticket, events...), not a list"],
        ),
        (
            "tickt: {subject: x}\n",
            ["{path}:1:1: missing field 'ticket'", "{path}:1:1: unknown field 'tickt'"],
        ),
        (
            "ticket: {subject: x}\nevents:\n  - {after: 1h, kind: customer.replied}\n",
            ["{path}:3:5: missing field 'type'", "{path}:3:17: unknown field 'kind'"],
        ),
        ("ticket: {subject: x}\nat: [1]\n", ["{path}:2:1: at: Input should be a valid string"]),
        (
            "ticket: {subject: x}\nevents:\n  - {after: 1h, type: customer.exploded}\n",
            ["{path}:1:1: the case cannot be played: type: Input should be 'ticket.created',"],
        ),
    ],
    ids=[
        "missing",
        "invalid YAML",
        "a list",
        "a misspelt key",
        "an event without a type",
        "a wrong type",
        "an unknown event type",
    ],
)
def test_a_bad_ticket_file_is_one_clear_error(
    tmp_path: Path, content: str | None, expected: list[str]
) -> None:
    path = tmp_path / "ticket.yaml"
    if content is not None:
        path.write_text(content)
    result = policy("explain", str(EXAMPLE_POLICY), "--ticket", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == len(expected), result.stderr
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith(want.format(path=path)), line
        assert line.count(str(path)) == 1  # the file is named once, not twice
    assert "Traceback" not in result.output


def test_a_ticket_path_that_is_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = policy("explain", str(EXAMPLE_POLICY), "--ticket", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"{tmp_path}:1:1: cannot read (Is a directory)"
