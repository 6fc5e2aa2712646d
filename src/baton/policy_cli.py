"""``baton policy`` (check, test, explain, activate, history, rollback) and ``baton approvals``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
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
    try:
        policy = load_policy(directory)
    except PolicyError as exc:
        for problem in exc.problems:
            err.print(problem, markup=False, highlight=False)
        err.print(f"{len(exc.problems)} problem(s)")
        raise typer.Exit(1) from None
    out.print(
        f"ok: policy {policy.name} version {policy.version}: {len(policy.routing)} routing rules, "
        f"{len(policy.escalations)} escalation rules, {len(policy.sla)} SLA policies, "
        f"{len(policy.roles)} roles"
    )


def _load_or_exit(directory: Path) -> Policy:
    try:
        return load_policy(directory)
    except PolicyError as exc:
        for problem in exc.problems:
            err.print(problem, markup=False, highlight=False)
        raise typer.Exit(1) from None


@policy_app.command("test")
def policy_test(directory: Path) -> None:
    """Run the policy's YAML test cases (DIR/tests/*.yaml); exit 1 on any failure."""
    policy = _load_or_exit(directory)
    table = Table("", "case", "where", "problem")
    passed = failed = 0
    for where, case in load_cases(directory):
        if isinstance(case, str):
            failed += 1
            table.add_row("[red]ERROR[/red]", "", where, case)
            continue
        result = run_case(policy, case, where=where)
        if result.ok:
            passed += 1
            table.add_row("[green]PASS[/green]", case.name, where, "")
        else:
            failed += 1
            table.add_row("[red]FAIL[/red]", case.name, where, "\n".join(result.failures))
    out.print(table)
    out.print(f"{passed} passed, {failed} failed")
    if failed or not passed:
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
    try:
        located = read_yaml(ticket)
        case = TestCase.model_validate({"name": ticket.name, "expect": {}, **(located.data or {})})
    except (SourceError, ValidationError) as exc:
        err.print(f"{ticket}: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    for event_id, at, rows in explain(policy, case):
        out.print(f"[bold]event {event_id}[/bold] at {at}")
        for rule, verdict, inputs, note in rows:
            colour = "green" if verdict == "matched" else "dim"
            shown = ", ".join(f"{k}={v!r}" for k, v in inputs.items())
            out.print(f"  [{colour}]{verdict:>8}[/{colour}]  {rule}  {shown}  {note}", highlight=False)


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
