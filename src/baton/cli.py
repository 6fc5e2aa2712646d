"""The ``baton`` command line."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Column, Table

from baton import audit
from baton.bootstrap import build_runtime, tune_gc
from baton.cli_common import Workspace, err, out
from baton.cli_common import database as _database
from baton.cli_common import settings_for as _settings
from baton.clock import SystemClock, to_ms
from baton.connectors.log import LogEverything
from baton.engine.approvals import approvers_of
from baton.engine.runtime import Engine
from baton.enrich.accounts import read_accounts_csv
from baton.errors import BatonError, ConfigError, InputError, PolicyError
from baton.model import Event, dump
from baton.ops_cli import outbox_app, override_app
from baton.policy.loader import load_policy
from baton.policy_cli import approvals_app, policy_app
from baton.settings import Settings, load_settings
from baton.signals.canonical import read_jsonl
from baton.signals.email import MailIntake, sniff
from baton.signals.history import HistoryReader
from baton.signals.history_import import import_history, shadow_engine
from baton.signals.history_mapping import load_mapping
from baton.signals.history_stats import count_facts
from baton.store import read, repo
from baton.web.auth import ROLES, create_token

__all__ = ["app", "main"]

app = typer.Typer(help="Baton: the execution layer for support escalations.", no_args_is_help=True)
audit_app = typer.Typer(help="Verify, checkpoint and export the audit log.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
schema_app = typer.Typer(help="JSON Schemas of Baton's formats.", no_args_is_help=True)
tickets_app = typer.Typer(help="Look at tickets.", no_args_is_help=True)
accounts_app = typer.Typer(help="Account context.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(token_app, name="token")
app.add_typer(schema_app, name="schema")
app.add_typer(policy_app, name="policy")
app.add_typer(outbox_app, name="outbox")
app.add_typer(override_app, name="override")
app.add_typer(approvals_app, name="approvals")
app.add_typer(tickets_app, name="tickets")
app.add_typer(accounts_app, name="accounts")

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy"


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
    log_all: Annotated[
        bool,
        typer.Option(
            "--log-all-connectors", help="Deliver every action to the log (a dry run, as the demo does)."
        ),
    ] = False,
) -> None:
    """Serve the API and dashboard (and, by default, a worker)."""
    import uvicorn

    from baton.web.app import create_app

    settings = _settings(workspace)
    _setup_logging(settings)
    runtime = build_runtime(settings)
    thread_worker = (runtime.worker(LogEverything()) if log_all else runtime.worker()) if worker else None
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
    file: Annotated[
        Path, typer.Argument(help="A JSONL file of canonical events, an .eml message or an mbox archive.")
    ],
    workspace: Workspace = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
) -> None:
    """Ingest canonical events (JSONL) or e-mail (.eml, mbox; by extension, else by content), with a
    progress bar and a per-line (per-message) error report."""
    settings = _settings(workspace)
    runtime = build_runtime(settings)
    kind = sniff(file)
    if kind != "jsonl":
        _ingest_mail(file, mbox=kind == "mbox", settings=settings, engine=runtime.engine, batch=batch)
        return
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


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A CSV or JSONL export (plain or gzip) of ticket history.")],
    mapping: Annotated[
        str, typer.Option("--mapping", "-m", help="servicenow, bpic2013, or a mapping YAML file.")
    ],
    workspace: Workspace = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Events per transaction.")] = 500,
    limit: Annotated[int | None, typer.Option(min=1, help="Import only the first N tickets.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Map and count; store nothing.")] = False,
    act: Annotated[
        bool, typer.Option("--act", help="Let the policy's actions go out (default: record them as shadow).")
    ] = False,
) -> None:
    """Import ticket history through the engine: progress bar, `row N: reason` per bad row, idempotent."""
    try:
        reader = HistoryReader(file, load_mapping(mapping), limit=limit)
    except (ConfigError, InputError) as exc:
        problems = str(exc).splitlines()
        for problem in problems:
            err.print(problem, markup=False, highlight=False)
        out.print(f"tickets: 0, events: 0, errors: {len(problems)}")
        raise typer.Exit(2) from None
    with reader:
        if dry_run:
            facts = count_facts(reader)
            for label, value in facts.table():
                out.print(f"{label}: {value}", highlight=False)
            out.print(f"tickets: {facts.tickets}, events: {facts.events}, errors: {facts.errors}")
            raise typer.Exit(1 if facts.errors else 0)
        runtime = build_runtime(_settings(workspace))
        engine = runtime.engine if act else shadow_engine(runtime.engine)
        progress = Progress(
            TextColumn(f"[bold]import {reader.mapping.name}"),
            BarColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        with progress:
            task = progress.add_task("import", total=reader.size)
            summary = import_history(
                engine=engine,
                reader=reader,
                batch=batch,
                on_error=_row_problem,
                on_progress=lambda position: progress.update(task, completed=position),
            )
    out.print(
        f"{summary.rows} rows read, {summary.duplicates} events already imported, "
        f"{summary.reordered} tickets put in time order"
    )
    out.print(summary.line())
    if summary.errors:
        raise typer.Exit(1)


@app.command("replay")
def replay_(
    policy: Annotated[Path, typer.Option("--policy", help="The policy folder to replay.")],
    history: Annotated[Path, typer.Option("--history", help="A CSV or JSONL export of ticket history.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where decisions.jsonl, kpis.json, report.html go.")],
    mapping: Annotated[
        str | None,
        typer.Option("--mapping", "-m", help="servicenow, bpic2013 or a YAML file (default: guess)."),
    ] = None,
    accounts: Annotated[Path | None, typer.Option("--accounts", help="Accounts CSV for context.")] = None,
    compare: Annotated[Path | None, typer.Option("--compare", help="A baseline policy folder.")] = None,
    gate: Annotated[
        Path | None, typer.Option("--gate", help="KPI thresholds (YAML); exit 1 if crossed.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N tickets of the file.")] = None,
) -> None:
    """Run history through a policy in simulated time (no connector is called); write every
    decision, the KPIs and a self-contained HTML report; compare with a baseline; gate on KPIs.
    Exit 1 when the gate is crossed, 2 when an input is unusable."""
    from baton.replay.gate import load_gate
    from baton.replay.inputs import pick_mapping, read_accounts
    from baton.replay.outputs import ReplayOutput, write_replay

    tune_gc()  # a whole log makes millions of short-lived objects, as a long-running engine does

    def run() -> ReplayOutput:
        limits = load_gate(gate) if gate is not None else None
        chosen = pick_mapping(history, mapping)
        candidate = load_policy(policy)
        baseline = load_policy(compare) if compare is not None else None
        known = (
            read_accounts(accounts, on_error=lambda n, why: _row_problem(n, f"{accounts}: {why}"))
            if accounts
            else {}
        )
        with Progress(
            TextColumn("[bold]replay"), TextColumn("{task.completed:,} events"), console=err, transient=True
        ) as bar:
            task = bar.add_task("replay", total=None)
            return write_replay(
                out_dir,
                history=history,
                mapping=chosen,
                policy=candidate,
                baseline=baseline,
                accounts=known,
                limit=limit,
                gate=limits,
                on_error=_row_problem,
                on_event=lambda n: bar.update(task, completed=n),
            )

    try:
        result = run()
    except (PolicyError, ConfigError, InputError) as exc:
        problems = exc.problems if isinstance(exc, PolicyError) else str(exc).splitlines()
        for line in problems:
            err.print(line, markup=False, highlight=False)
        raise typer.Exit(2) from exc
    doc = result.document
    out.print(
        f"tickets: {doc['tickets']}, events: {doc['events']}, decisions: {doc['decisions']}, "
        f"errors: {doc['errors']} -> {out_dir}",
        highlight=False,
    )
    if "compare" in doc:
        out.print(f"tickets that change against the baseline: {doc['compare']['tickets']['changed']}")
    if "gate" in doc:
        for r in doc["gate"]["results"]:
            if r["status"] == "fail":
                err.print(f"gate: {r['kpi']} {r['rule']} {r['limit']}: {r['observed']}", markup=False)
        out.print(f"gate: {'passed' if result.passed else 'FAILED'}")
    if not result.passed:
        raise typer.Exit(1)


@app.command("kpis")
def kpis_(
    workspace: Workspace = None,
    history: Annotated[
        Path | None, typer.Option("--history", help="Instead of the store: a history file as it happened.")
    ] = None,
    mapping: Annotated[
        str | None, typer.Option("--mapping", "-m", help="The history file's mapping.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N tickets of the file.")] = None,
    accounts: Annotated[
        Path | None,
        typer.Option("--accounts", help="With --history: account context (MRR bands, revenue at risk)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole document as JSON.")] = False,
) -> None:
    """KPIs of the live store (or, with --history, of what a history file records), see docs/kpis.md."""
    from baton.analytics.live import live_kpis
    from baton.replay.history import as_it_happened
    from baton.replay.inputs import pick_mapping, read_accounts
    from baton.replay.report import HEADLINE, format_value

    doc: dict[str, Any]
    if history is not None:
        tune_gc()  # as for replay: a whole log through the simulator
        try:
            chosen = pick_mapping(history, mapping)
            known = (
                read_accounts(accounts, on_error=lambda n, why: _row_problem(n, f"{accounts}: {why}"))
                if accounts
                else None
            )
            done = as_it_happened(history, chosen, accounts=known, limit=limit, on_error=_row_problem)
        except (ConfigError, InputError) as exc:
            for line in str(exc).splitlines():
                err.print(line, markup=False, highlight=False)
            raise typer.Exit(2) from exc
        doc = {
            "as_of": done.result.as_of.isoformat() if done.result.as_of else None,
            "events": done.events,
            "history": history.name,
            "kpis": done.result.report.kpis,
            "tickets": done.tickets,
        }
    else:
        with _database(_settings(workspace)) as db, db.reader.connect() as conn:
            doc = live_kpis(conn, now=SystemClock().now()).document()
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return
    table = Table("KPI", "name", Column("value", justify="right"))
    for name, label, kind in HEADLINE:
        table.add_row(label, name, format_value(doc["kpis"].get(name), kind))
    out.print(table)
    out.print(f"tickets: {doc['tickets']}, events: {doc['events']}")


def _row_problem(row: int, reason: str) -> None:
    """An unusable row of an input file, reported on stderr as ``row N: reason``."""
    err.print(f"row {row}: {reason}", markup=False, highlight=False)


def _ingest_mail(file: Path, *, mbox: bool, settings: Settings, engine: Engine, batch: int) -> None:
    intake = MailIntake.from_settings(settings, engine=engine)
    try:
        handle = file.open("rb")
    except OSError as exc:
        raise typer.BadParameter(f"{file}: {exc.strerror}") from None
    progress = Progress(TextColumn("[bold]ingest"), BarColumn(), console=err, transient=True)
    with handle, progress:
        task = progress.add_task("ingest", total=file.stat().st_size)
        counts = intake.ingest_file(
            handle,
            mbox=mbox,
            batch=batch,
            received_at=SystemClock().now(),
            on_error=lambda n, reason: err.print(f"message {n}: {reason}", markup=False, highlight=False),
            on_progress=lambda position: progress.update(task, completed=position),
        )
    ignored = ", ".join(
        f"{key.removeprefix('ignored.')} {n}"
        for key, n in sorted(counts.items())
        if key.startswith("ignored.")
    )
    errors = counts["rejected"] + counts["failed"]
    out.print(
        f"e-mail: {counts['accepted']} accepted, {counts['duplicate']} duplicates, "
        f"{counts['ignored']} ignored{f' ({ignored})' if ignored else ''}, {errors} errors",
        highlight=False,
    )
    if errors:
        raise typer.Exit(1)


@app.command("smtp")
def smtp(
    workspace: Workspace = None,
    host: Annotated[str | None, typer.Option(help="Listen address (BATON_SMTP_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (BATON_SMTP_PORT, 2525).")] = None,
) -> None:
    """Receive e-mail over SMTP into tickets; a message is answered 250 only once it is stored.

    Actions and timers are carried out by `baton worker` (or `baton serve`) running alongside."""
    from baton.signals.smtp import build_smtp_server

    settings = load_settings(workspace=workspace, smtp_host=host, smtp_port=port)
    _setup_logging(settings)
    runtime = build_runtime(settings)
    intake = MailIntake.from_settings(settings, engine=runtime.engine)
    server = build_smtp_server(settings, intake, clock=runtime.clock)
    bound_host, bound_port = server.start()
    out.print(f"receiving e-mail on {bound_host}:{bound_port}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        out.print(f"stopped; {intake.counts}")


@schema_app.command("event")
def schema_event() -> None:
    """Print the JSON Schema of the canonical event."""
    out.print_json(json.dumps(Event.model_json_schema()))


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
    # Never wrapped (a log or a narrow terminal would cut the token in two): copied as printed.
    out.print(f"\n[bold]Dashboard:[/bold] http://{host}:{port}/login?token={token}", soft_wrap=True)
    out.print(
        f"[bold]API docs:[/bold]  http://{host}:{port}/docs   (Authorization: Bearer {token})\n",
        soft_wrap=True,
    )
    serve(workspace=settings.workspace, host=host, port=port, worker=True, log_all=True)


def main() -> None:
    try:
        app()
    except BatonError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(2)
