"""``baton outbox`` (the dead-letter queue) and ``baton override`` (manual overrides, X2).

Every command takes an actor and a reason; both end up on the ticket's timeline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from baton.bootstrap import build_runtime
from baton.cli_common import Workspace, out
from baton.clock import SystemClock
from baton.engine import operations as ops
from baton.settings import load_settings
from baton.store.db import open_database

__all__ = ["outbox_app", "override_app"]

outbox_app = typer.Typer(help="The outbox and its dead-letter queue.", no_args_is_help=True)
override_app = typer.Typer(help="Override the engine on a ticket, with a reason.", no_args_is_help=True)
Actor = Annotated[str, typer.Option(help="Who does it (recorded).")]
Reason = Annotated[str, typer.Option(help="Why (recorded).")]


@outbox_app.command("list")
def outbox_list(
    workspace: Workspace = None,
    status: Annotated[str, typer.Option(help="dead, pending, claimed, done, awaiting_approval...")] = "dead",
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Actions in the outbox with a status (the dead-letter queue by default)."""
    db = open_database(load_settings(workspace=workspace).resolved_database_url)
    try:
        with db.reader.connect() as conn:
            items = ops.list_actions(conn, status=status, limit=limit)
    finally:
        db.dispose()
    if as_json:
        sys.stdout.write(json.dumps(items, sort_keys=True) + "\n")
        return
    table = Table(
        Column("id", no_wrap=True),
        Column("ticket", no_wrap=True),
        "connector",
        "action",
        "attempts",
        "last error",
    )
    for item in items:
        table.add_row(
            str(item["id"]),
            item["ticket_id"],
            item["connector"],
            item["action"],
            str(item["attempts"]),
            item["last_error"] or "",
        )
    out.print(table)


@outbox_app.command("show")
def outbox_show(action_id: int, workspace: Workspace = None) -> None:
    """One action: its parameters and every audit entry about it."""
    db = open_database(load_settings(workspace=workspace).resolved_database_url)
    try:
        with db.reader.connect() as conn:
            item = ops.show_action(conn, action_id)
    finally:
        db.dispose()
    sys.stdout.write(json.dumps(item, sort_keys=True, indent=2, default=str) + "\n")


def _change(action_id: int, workspace: Path | None, actor: str, reason: str, which: str) -> None:
    db = open_database(load_settings(workspace=workspace).resolved_database_url)
    change = {"retry": ops.retry_action, "drop": ops.drop_action, "cancel": ops.cancel_action}[which]
    try:
        with db.write() as conn:
            item = change(
                conn,
                action_id,
                actor=actor,
                reason=reason,
                at=SystemClock().now(),
                is_postgres=db.is_postgres,
            )
    finally:
        db.dispose()
    out.print(f"action {item['id']} on {item['ticket_id']}: {item['status']}")


@outbox_app.command("retry")
def outbox_retry(action_id: int, actor: Actor, reason: Reason, workspace: Workspace = None) -> None:
    """Put a dead-lettered action back in the outbox with fresh attempts."""
    _change(action_id, workspace, actor, reason, "retry")


@outbox_app.command("drop")
def outbox_drop(action_id: int, actor: Actor, reason: Reason, workspace: Workspace = None) -> None:
    """Give up on a dead-lettered action for good."""
    _change(action_id, workspace, actor, reason, "drop")


@outbox_app.command("cancel")
def outbox_cancel(action_id: int, actor: Actor, reason: Reason, workspace: Workspace = None) -> None:
    """Stop an action that has not left yet."""
    _change(action_id, workspace, actor, reason, "cancel")


def _override(
    ticket_id: str, action: str, actor: str, reason: str, workspace: Path | None, **values: str
) -> None:
    runtime = build_runtime(load_settings(workspace=workspace), actor="override")
    try:
        event = ops.override_event(
            ticket_id, action=action, actor=actor, reason=reason, at=SystemClock().now(), **values
        )
        (result,) = runtime.engine.ingest([event])
    finally:
        runtime.db.dispose()
    if result.status != "accepted":
        out.print(f"override not applied: {result.error or result.status}")
        raise typer.Exit(1)
    out.print(f"{action} applied to {ticket_id} (decision {result.decision_id})")


@override_app.command("reassign")
def override_reassign(
    ticket_id: str,
    actor: Actor,
    reason: Reason,
    person: Annotated[str | None, typer.Option(help="The new owner.")] = None,
    role: Annotated[str | None, typer.Option(help="The role; resolved to a person if no --person.")] = None,
    workspace: Workspace = None,
) -> None:
    """Give the ticket another owner."""
    if person is None and role is None:
        raise typer.BadParameter("give --person or --role")
    _override(
        ticket_id,
        "reassign",
        actor,
        reason,
        workspace,
        **{k: v for k, v in {"person": person, "role": role}.items() if v},
    )


@override_app.command("tier")
def override_tier(
    ticket_id: str, tier: str, actor: Actor, reason: Reason, workspace: Workspace = None
) -> None:
    """Move the ticket to another tier (its role's person takes it)."""
    _override(ticket_id, "tier", actor, reason, workspace, tier=tier)


@override_app.command("priority")
def override_priority(
    ticket_id: str, priority: str, actor: Actor, reason: Reason, workspace: Workspace = None
) -> None:
    """Change the priority (running SLA clocks take the new targets)."""
    _override(ticket_id, "priority", actor, reason, workspace, priority=priority)


@override_app.command("pause-sla")
def override_pause(ticket_id: str, actor: Actor, reason: Reason, workspace: Workspace = None) -> None:
    """Hold the SLA clocks until someone resumes them."""
    _override(ticket_id, "pause_sla", actor, reason, workspace)


@override_app.command("resume-sla")
def override_resume(ticket_id: str, actor: Actor, reason: Reason, workspace: Workspace = None) -> None:
    """Lift a manual SLA hold."""
    _override(ticket_id, "resume_sla", actor, reason, workspace)
