"""``baton policy`` (check, test, explain, activate, history, rollback) and ``baton approvals``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from baton.cli_common import Workspace, err, out
from baton.cli_common import database as _database
from baton.cli_common import settings_for as _settings
from baton.clock import SystemClock, from_ms
from baton.engine.approvals import approvers_of, decide_approval, pending_approvals
from baton.errors import PolicyError
from baton.policy import versions
from baton.policy.compiler import compile_files
from baton.policy.loader import load_policy, policy_files
from baton.policy.model import Policy
from baton.policy.source import SourceError, read_yaml
from baton.policy.testing import TestCase, explain, load_cases, run_case

__all__ = ["approvals_app", "policy_app"]

policy_app = typer.Typer(help="Check, test, explain, activate and roll back policies.", no_args_is_help=True)
approvals_app = typer.Typer(help="Actions waiting for approval.", no_args_is_help=True)


@policy_app.command("check")
def policy_check(directory: Path) -> None:
    """Validate a policy folder; print every problem as file:line:col: message."""
    policy = _load_or_exit(directory)
    out.print(
        f"ok: policy {policy.name} version {policy.version}: {len(policy.routing)} routing rules, "
        f"{len(policy.escalations)} escalation rules, {len(policy.sla)} SLA policies, "
        f"{len(policy.roles)} roles"
    )


def _load_or_exit(directory: Path) -> Policy:
    """The policy in ``directory``, or exit 1 after printing every problem and their count."""
    try:
        return load_policy(directory)
    except PolicyError as exc:
        _fail(*exc.problems, f"{len(exc.problems)} problem(s)")


def _fail(*lines: str) -> NoReturn:
    for line in lines:
        err.print(line, markup=False, highlight=False)
    raise typer.Exit(1)


@policy_app.command("test")
def policy_test(directory: Path) -> None:
    """Run the policy's YAML test cases (DIR/tests/*.yaml); exit 1 on any failure."""
    policy = _load_or_exit(directory)
    table = Table("", "case", "where", "problem")
    passed = failed = 0
    for where, case in load_cases(directory):
        if isinstance(case, str):
            failed += 1
            table.add_row("[red]ERROR[/red]", "", escape(where), escape(case))
            continue
        result = run_case(policy, case, where=where)
        if result.ok:
            passed += 1
            table.add_row("[green]PASS[/green]", escape(case.name), escape(where), "")
        else:
            failed += 1
            table.add_row(
                "[red]FAIL[/red]", escape(case.name), escape(where), escape("\n".join(result.failures))
            )
    if not passed and not failed:
        _fail(f"{directory / 'tests'}: no test cases (*.yaml files, each a list of cases)")
    out.print(table)
    out.print(f"{passed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@policy_app.command("explain")
def policy_explain(
    directory: Path,
    ticket: Annotated[
        Path, typer.Option("--ticket", help="A YAML case: account, ticket, events (as in tests).")
    ],
) -> None:
    """Show the reasoning trail: each rule considered, matched or not, and the inputs it read."""
    policy = _load_or_exit(directory)
    case = _read_case(ticket)
    try:
        trail = explain(policy, case)
    except (ValidationError, ValueError) as exc:  # an event the engine refuses, e.g. an unknown type
        _fail(f"{ticket}:1:1: the case cannot be played: {_first_line(exc)}")
    for event_id, at, rows in trail:
        out.print(f"[bold]event {event_id}[/bold] at {at}")
        for rule, verdict, inputs, note in rows:
            colour = "green" if verdict == "matched" else "dim"
            shown = ", ".join(f"{k}={v!r}" for k, v in inputs.items())
            out.print(f"  [{colour}]{verdict:>8}[/{colour}]  {rule}  {shown}  {note}", highlight=False)


def _read_case(path: Path) -> TestCase:
    """The case in ``path`` (a mapping, as a test case without ``name`` and ``expect``), or exit 1
    with each problem located once, as ``file:line:col: message``."""
    try:
        located = read_yaml(path)
    except SourceError as exc:  # its location already names the file
        _fail(f"{exc.where}: {exc.message}")
    data = located.data if located.data is not None else {}
    if not isinstance(data, dict):
        _fail(f"{path}:1:1: a ticket file is one case, a mapping (account, ticket, events...), not a list")
    try:
        return TestCase.model_validate({"name": path.name, "expect": {}, **data})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [part for part in error["loc"] if isinstance(part, int | str)]
            named = {"extra_forbidden": "unknown field", "missing": "missing field"}.get(error["type"])
            if named and loc:
                message = f"{named} {loc[-1]!r}"
            else:
                message = f"{'.'.join(map(str, loc))}: {error['msg']}" if loc else error["msg"]
            problems.append(f"{located.locator.where(loc)}: {message}")
        _fail(*problems)


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@policy_app.command("activate")
def policy_activate(
    directory: Path,
    workspace: Workspace = None,
    actor: Annotated[str, typer.Option(help="Who activates it (recorded).")] = "cli",
) -> None:
    """Check DIR, record it as a version and make it the active policy (audited)."""
    policy = _load_or_exit(directory)
    settings = _settings(workspace)
    with _database(settings, migrate=True) as db, db.write() as conn:
        version, changed = versions.activate(
            conn,
            files=policy_files(directory),
            name=policy.name,
            actor=actor,
            at=SystemClock().now(),
            is_postgres=db.is_postgres,
        )
    out.print(f"{'activated' if changed else 'already active'}: {policy.name} {version}")


@policy_app.command("history")
def policy_history(workspace: Workspace = None) -> None:
    """Every policy version recorded, in the order first recorded, with its latest activation."""
    settings = _settings(workspace)
    table = Table("version", "name", "activated", "by")
    with _database(settings) as db, db.reader.connect() as conn:
        for row in versions.history(conn):
            activated = row["activated_ms"]
            when = from_ms(activated).isoformat()[:19] if isinstance(activated, int) else ""
            table.add_row(str(row["version"]), str(row["name"]), when, str(row["activated_by"] or ""))
    out.print(table)


@policy_app.command("rollback")
def policy_rollback(
    version: str,
    workspace: Workspace = None,
    actor: Annotated[str, typer.Option(help="Who rolls back (recorded).")] = "cli",
) -> None:
    """Reactivate a recorded version and write its files into the workspace policy folder."""
    settings = _settings(workspace)
    with _database(settings, migrate=True) as db, db.write() as conn:
        files = versions.stored_files(conn, version)
        policy = compile_files(files, root=Path(f"policy@{version}"))
        versions.activate(
            conn,
            files=files,
            name=policy.name,
            actor=actor,
            at=SystemClock().now(),
            is_postgres=db.is_postgres,
        )
    target = settings.resolved_policy_dir
    for name in policy_files(target) if target.is_dir() else {}:
        if name not in files:  # a file the rolled-back version did not have would change its hash
            (target / name).unlink()
    for name, raw in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    out.print(f"rolled back to {policy.name} {version}; files written to {target}")


@approvals_app.command("list")
def approvals_list(
    workspace: Workspace = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Actions waiting for a person's approval."""
    settings = _settings(workspace)
    table = Table("id", "ticket", "rule", "author", "kind", "to")
    with _database(settings) as db, db.reader.connect() as conn:
        items = pending_approvals(conn)
    if as_json:
        sys.stdout.write(json.dumps(items, sort_keys=True, default=str) + "\n")
        return
    for item in items:
        table.add_row(
            str(item["id"]),
            item["ticket_id"],
            item["rule"] or "",
            item["author"] or "",
            item["kind"],
            str(item["params"].get("to") or item["params"].get("address") or ""),
        )
    out.print(table)


def _verdict(action_id: int, *, approve: bool, actor: str, reason: str, workspace: Path | None) -> None:
    settings = _settings(workspace)
    approvers = approvers_of(load_policy(settings.resolved_policy_dir))
    with _database(settings) as db, db.write() as conn:
        verdict = decide_approval(
            conn,
            approvers=approvers,
            action_id=action_id,
            approve=approve,
            actor=actor,
            reason=reason,
            at=SystemClock().now(),
            is_postgres=db.is_postgres,
        )
    out.print(f"action {verdict.id} on {verdict.ticket_id}: {verdict.status}")


@approvals_app.command("approve")
def approvals_approve(
    action_id: int,
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    actor: Annotated[str, typer.Option(help="Who approves (recorded; may not be the rule's author).")],
    workspace: Workspace = None,
) -> None:
    """Release a waiting action to the outbox."""
    _verdict(action_id, approve=True, actor=actor, reason=reason, workspace=workspace)


@approvals_app.command("reject")
def approvals_reject(
    action_id: int,
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    actor: Annotated[str, typer.Option(help="Who rejects (recorded).")],
    workspace: Workspace = None,
) -> None:
    """Refuse a waiting action; it is never sent."""
    _verdict(action_id, approve=False, actor=actor, reason=reason, workspace=workspace)
