"""The ``baton`` command line."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Column, Table

from baton import audit
from baton.bootstrap import build_runtime
from baton.clock import SystemClock, from_ms, to_ms
from baton.engine.approvals import approvers_of, decide_approval, pending_approvals
from baton.enrich.accounts import read_accounts_csv
from baton.errors import BatonError, PolicyError
from baton.model import Event, dump
from baton.policy import versions
from baton.policy.compiler import compile_files
from baton.policy.loader import load_policy, policy_files
from baton.policy.model import Policy
from baton.policy.source import SourceError, read_yaml
from baton.policy.testing import TestCase, explain, load_cases, run_case
from baton.settings import Settings, load_settings
from baton.signals.canonical import read_jsonl
from baton.store import read, repo
from baton.store.db import Database, open_database
from baton.web.auth import ROLES, create_token

__all__ = ["app", "main"]

app = typer.Typer(help="Baton: the execution layer for support escalations.", no_args_is_help=True)
audit_app = typer.Typer(help="Verify, checkpoint and export the audit log.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
schema_app = typer.Typer(help="JSON Schemas of Baton's formats.", no_args_is_help=True)
policy_app = typer.Typer(help="Check, test, explain, activate and roll back policies.", no_args_is_help=True)
approvals_app = typer.Typer(help="Actions waiting for approval.", no_args_is_help=True)
tickets_app = typer.Typer(help="Look at tickets.", no_args_is_help=True)
accounts_app = typer.Typer(help="Account context.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(token_app, name="token")
app.add_typer(schema_app, name="schema")
app.add_typer(policy_app, name="policy")
app.add_typer(approvals_app, name="approvals")
app.add_typer(tickets_app, name="tickets")
app.add_typer(accounts_app, name="accounts")

out = Console()
err = Console(stderr=True, soft_wrap=True)

Workspace = Annotated[
    Path | None, typer.Option("--workspace", "-w", help="Workspace folder (BATON_WORKSPACE).")
]
EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy"


def _settings(workspace: Path | None) -> Settings:
    return load_settings(workspace=workspace)


@contextmanager
def _database(settings: Settings, *, migrate: bool = False) -> Iterator[Database]:
    db = open_database(settings.resolved_database_url)
    try:
        if migrate:
            db.migrate()
        yield db
    finally:
        db.dispose()


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


@app.command()
def init(
    workspace: Workspace = None,
    policy: Annotated[Path | None, typer.Option(help="Policy folder to copy in.")] = None,
    accounts: Annotated[Path | None, typer.Option(help="Accounts CSV to load.")] = None,
) -> None:
    """Create a workspace: database, policy and accounts."""
    settings = _settings(workspace)
    settings.workspace.mkdir(parents=True, exist_ok=True)
    target = settings.resolved_policy_dir
    source = policy or (EXAMPLE_POLICY if not target.exists() else None)
    if source is not None:
        load_policy(source)  # refuse to install a policy that does not load
        shutil.copytree(source, target, dirs_exist_ok=True)
    with _database(settings, migrate=True):
        pass
    if accounts is not None:
        _load_accounts(settings, accounts)
    out.print(f"workspace ready at {settings.workspace} (policy {load_policy(target).version})")


def _load_accounts(settings: Settings, path: Path) -> None:
    with _database(settings) as db:
        good, bad = [], 0
        for row in read_accounts_csv(path):
            if row.account is None:
                bad += 1
                err.print(f"{path}:{row.line}: {row.error}")
            else:
                good.append(row.account)
        with db.write() as conn:
            loaded = repo.upsert_accounts(conn, good)
        out.print(f"accounts: {loaded} loaded, {bad} rejected")


@accounts_app.command("load")
def accounts_load(path: Path, workspace: Workspace = None) -> None:
    """Load (upsert) accounts from a CSV file."""
    _load_accounts(_settings(workspace), path)


@app.command()
def serve(
    workspace: Workspace = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    worker: Annotated[bool, typer.Option(help="Also run a worker thread in this process.")] = True,
) -> None:
    """Serve the API and dashboard (and, by default, a worker)."""
    import uvicorn

    from baton.web.app import create_app

    settings = _settings(workspace)
    _setup_logging(settings)
    runtime = build_runtime(settings)
    thread_worker = runtime.worker() if worker else None
    if thread_worker is not None:
        threading.Thread(target=thread_worker.run, name="baton-worker", daemon=True).start()
    api = create_app(
        settings=settings,
        db=runtime.db,
        batcher=runtime.batcher(),
        approvers=lambda: approvers_of(runtime.engine.policy),
    )
    try:
        uvicorn.run(api, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
    finally:
        if thread_worker is not None:
            thread_worker.stop()


@app.command("worker")
def run_worker(workspace: Workspace = None) -> None:
    """Run a worker: fire due timers and deliver the outbox until stopped."""
    settings = _settings(workspace)
    _setup_logging(settings)
    runtime = build_runtime(settings)
    w = runtime.worker()
    # SIGTERM (systemd, Kubernetes) stops after the current round, like Ctrl-C: claims are
    # finished or handed back instead of waiting out a lease.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: w.stop())
    try:
        w.run()
    except KeyboardInterrupt:
        w.stop()


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="A JSONL file of canonical events.")],
    workspace: Workspace = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
) -> None:
    """Ingest canonical events from a JSONL file, with a progress bar and a per-line error report."""
    settings = _settings(workspace)
    runtime = build_runtime(settings)
    counts = {"accepted": 0, "duplicate": 0, "failed": 0, "errors": 0}
    pending: list[Event] = []
    lines: list[int] = []

    def flush() -> None:
        for line, result in zip(lines, runtime.engine.ingest(pending), strict=True):
            counts[result.status] += 1
            if result.status == "failed":
                err.print(f"line {line}: not stored: {result.error}")
        pending.clear()
        lines.clear()

    try:
        handle = file.open("rb")
    except OSError as exc:
        raise typer.BadParameter(f"{file}: {exc.strerror}") from None
    with (
        handle,
        Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("ingest", total=file.stat().st_size)
        for item in read_jsonl(
            handle, max_line_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
        ):
            if item.event is None:
                counts["errors"] += 1
                err.print(f"line {item.number}: {item.error}")
            else:
                pending.append(item.event)
                lines.append(item.number)
                if len(pending) >= batch:
                    flush()
            progress.update(task, completed=handle.tell())
        if pending:
            flush()
    out.print(
        f"events: {counts['accepted']} accepted, {counts['duplicate']} duplicates, "
        f"{counts['errors'] + counts['failed']} errors"
    )
    if counts["errors"] or counts["failed"]:
        raise typer.Exit(1)


@schema_app.command("event")
def schema_event() -> None:
    """Print the JSON Schema of the canonical event."""
    out.print_json(json.dumps(Event.model_json_schema()))


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


@audit_app.command("verify")
def audit_verify(
    workspace: Workspace = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint file to check the tail against.")
    ] = None,
) -> None:
    """Walk the hash chain; report any modified, deleted, inserted, reordered or truncated entry."""
    settings = _settings(workspace)
    with _database(settings) as db:
        cp = audit.read_checkpoint(checkpoint) if checkpoint else None
        with db.reader.connect() as conn:
            report = audit.verify(conn, checkpoint=cp)
        if report.ok:
            out.print(f"ok: {report.length} entries, head {report.head}")
            return
        for problem in report.problems:
            err.print(
                f"entry {problem.seq}: {problem.kind}: {problem.message}", markup=False, highlight=False
            )
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    file: Annotated[
        Path, typer.Argument(help="Where to write the checkpoint (keep it outside the database).")
    ],
    workspace: Workspace = None,
) -> None:
    """Verify the chain, then record its length and head hash in FILE."""
    settings = _settings(workspace)
    with _database(settings) as db:
        with db.reader.connect() as conn:
            report = audit.verify(conn)
        if not report.ok:
            for problem in report.problems:
                err.print(
                    f"entry {problem.seq}: {problem.kind}: {problem.message}", markup=False, highlight=False
                )
            raise typer.Exit(1)
        cp = audit.write_checkpoint(file, report, at=SystemClock().now())
        out.print(f"checkpoint: {cp.length} entries, head {cp.head} -> {file}")


@audit_app.command("export")
def audit_export(
    ticket_id: str,
    workspace: Workspace = None,
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write a ticket's evidence (events, decisions with reasons, actions, outcomes) as JSONL."""
    settings = _settings(workspace)
    with _database(settings) as db:
        with db.reader.connect() as conn:
            items = read.timeline(conn, ticket_id)
        if not items:
            err.print(f"no audit entries for ticket {ticket_id!r}")
            raise typer.Exit(1)
        lines = [audit.canonical_json(item) for item in items]
        if output is None:
            sys.stdout.write("\n".join(lines) + "\n")
        else:
            output.write_text("\n".join(lines) + "\n")
            out.print(f"{len(lines)} entries -> {output}")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="Who or what the token is for.")] = "cli",
    workspace: Workspace = None,
) -> None:
    """Create an API token; it is printed once and never stored in clear."""
    settings = _settings(workspace)
    with _database(settings, migrate=True) as db:
        with db.write() as conn:
            token = create_token(conn, role=role, name=name, now_ms=to_ms(SystemClock().now()))
        typer.echo(token)


@tickets_app.command("list")
def tickets_list(
    workspace: Workspace = None,
    stage: str | None = None,
    owner: str | None = None,
    limit: int = 20,
) -> None:
    """The most recently updated tickets."""
    settings = _settings(workspace)
    with _database(settings) as db:
        with db.reader.connect() as conn:
            rows = read.list_tickets(conn, stage=stage, owner=owner, limit=limit)
        table = Table(
            Column("ticket", no_wrap=True), "subject", "stage", "priority", "tier", "owner", "updated"
        )
        for r in rows:
            owner_text = f"{r['owner']['person']} ({r['owner']['role']})" if r["owner"] else ""
            table.add_row(
                r["id"],
                r["subject"][:50],
                r["stage"],
                r["priority"],
                r["tier"] or "",
                owner_text,
                r["updated_at"][:16],
            )
        out.print(table)


@tickets_app.command("show")
def tickets_show(ticket_id: str, workspace: Workspace = None) -> None:
    """One ticket's state and timeline."""
    settings = _settings(workspace)
    with _database(settings) as db:
        with db.reader.connect() as conn:
            ticket = read.get_ticket(conn, ticket_id)
            items = read.timeline(conn, ticket_id)
        if ticket is None:
            err.print(f"no ticket {ticket_id!r}")
            raise typer.Exit(1)
        out.print_json(json.dumps(dump(ticket)))
        for item in items:
            out.print(f"#{item['seq']} {item['at'][:19]} {item['kind']}")


@approvals_app.command("list")
def approvals_list(workspace: Workspace = None) -> None:
    """Actions waiting for a person's approval."""
    settings = _settings(workspace)
    table = Table("id", "ticket", "rule", "author", "kind", "to")
    with _database(settings) as db, db.reader.connect() as conn:
        for item in pending_approvals(conn):
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


@app.command()
def demo(
    workspace: Workspace = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    tickets: Annotated[int, typer.Option(min=10, max=20_000)] = 400,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Create a demo workspace, play a realistic ticket stream through the engine, then serve it."""
    from baton.demo import run_demo

    settings = _settings(workspace)
    _setup_logging(settings.model_copy(update={"log_level": "WARNING"}))
    token = run_demo(settings, tickets=tickets, console=out)
    if not serve_after:
        return
    out.print(f"\n[bold]Dashboard:[/bold] http://{host}:{port}/login?token={token}")
    out.print(f"[bold]API docs:[/bold]  http://{host}:{port}/docs   (Authorization: Bearer {token})\n")
    serve(workspace=settings.workspace, host=host, port=port, worker=True)


def main() -> None:
    try:
        app()
    except BatonError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(2)
