"""The demo: a fresh workspace, the example policy, sample accounts, and a few days of realistic
support traffic played through the real engine on a simulated clock (timers fire as time passes).

The stream is generated from a seeded random source, so every demo run tells the same story.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from baton.bootstrap import tune_gc
from baton.clock import FakeClock, SystemClock, to_ms
from baton.engine.runtime import Engine
from baton.enrich.accounts import read_accounts_csv
from baton.model import Event
from baton.policy.loader import load_policy
from baton.settings import Settings
from baton.store import repo
from baton.store.db import open_database
from baton.web.auth import create_token

__all__ = ["generate_stream", "run_demo"]

_HERE = Path(__file__).parent
EXAMPLE_POLICY = _HERE.parents[2] / "examples" / "policy"

# (category, priority weights, subjects, first message)
_STORIES: list[tuple[str | None, tuple[str, ...], list[str], str]] = [
    (
        "technical",
        ("normal", "normal", "high"),
        ["Dashboard not loading", "API returns 500 error on /orders", "Sync job stuck since this morning"],
        "Since about an hour ago our team sees errors. We already cleared caches and retried.",
    ),
    (
        "technical",
        ("urgent", "high"),
        ["Production outage: app is down", "Login page unavailable for all users"],
        "Our whole company is blocked, this is an outage. Please escalate immediately.",
    ),
    (
        "billing",
        ("normal", "high"),
        ["Invoice charged twice", "Refund for unused seats", "Dispute on last invoice"],
        "We were billed twice this month and need a refund before our renewal.",
    ),
    (
        "account",
        ("low", "normal"),
        ["Add SSO for new team", "Change account owner", "Export all our data"],
        "Could you help us with this change? No rush.",
    ),
    (
        "legal",
        ("normal",),
        ["Question about contract clause 7.2", "Data processing terms of service"],
        "Our legal team has a question about the contract clause on liability.",
    ),
    (
        "how-to",
        ("low", "normal"),
        ["How do I configure webhooks?", "Where can I find audit reports?", "Bulk import of users"],
        "I could not find this in the docs.",
    ),
]


@dataclass(frozen=True)
class _Timed:
    at: datetime
    event: Event


class _Script:
    """The events of one demo ticket, numbered in the order they are written."""

    def __init__(self, number: int, out: list[_Timed]) -> None:
        self.number = number
        self.out = out
        self.serial = 0
        self.external = {
            "system": "zendesk",
            "id": str(number),
            "url": f"https://acme.zendesk.example/agent/tickets/{number}",
        }

    def add(self, at: datetime, kind: str, fields: dict[str, object] | None = None, **extra: object) -> None:
        self.serial += 1
        body: dict[str, object] = {
            "source": "zendesk",
            "event_id": f"zd-{self.number}-{self.serial}",
            "type": kind,
            "occurred_at": at.isoformat(),
            "external": self.external,
            "fields": fields or {},
            **extra,
        }
        self.out.append(_Timed(at, Event.model_validate(body)))


def generate_stream(
    *, tickets: int, start: datetime, hours: float, accounts: list[str], seed: int = 7
) -> list[Event]:
    """A stream of canonical events: tickets opening through the period, agents replying (some
    late), customers answering, tickets waiting on customers, solved, now and then reopened."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible story, not a secret
    timed: list[_Timed] = []
    span = timedelta(hours=hours)
    for n in range(1, tickets + 1):
        category, priorities, subjects, opening = rng.choice(_STORIES)
        opened = start + span * (n / (tickets + 1)) + timedelta(minutes=rng.uniform(-20, 20))
        account = rng.choice(accounts)
        script = _Script(40_000 + n, timed)
        script.add(
            opened,
            "ticket.created",
            {
                "subject": rng.choice(subjects),
                "body": opening,
                "account_id": account,
                "channel": rng.choice(["email", "web", "chat"]),
                "requester": f"user{n}@{account}.example",
                "category": category,
                "priority": rng.choice(priorities),
            },
            actor={"kind": "customer", "email": f"user{n}@{account}.example"},
        )
        # Most tickets get a first answer within the hour; a tail waits much longer (SLA pressure).
        reply_after = timedelta(
            minutes=rng.expovariate(1 / 45) if rng.random() < 0.8 else rng.uniform(180, 900)
        )
        at = opened + reply_after
        script.add(at, "agent.replied", {"body": "Thanks, we are looking into it."}, actor={"kind": "agent"})
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            at += timedelta(minutes=rng.uniform(10, 240))
            script.add(
                at,
                "customer.replied",
                {"body": "Any update? This is still happening."},
                actor={"kind": "customer"},
            )
            at += timedelta(minutes=rng.uniform(5, 120))
            script.add(at, "agent.replied", {"body": "We have an update for you."}, actor={"kind": "agent"})
        if rng.random() < 0.3:
            at += timedelta(minutes=rng.uniform(5, 60))
            script.add(at, "status.changed", {"status": "pending"})
            if rng.random() < 0.6:
                at += timedelta(hours=rng.uniform(1, 20))
                script.add(
                    at,
                    "customer.replied",
                    {"body": "Here are the logs you asked for."},
                    actor={"kind": "customer"},
                )
        if rng.random() < 0.7:
            at += timedelta(hours=rng.uniform(0.5, 30))
            script.add(at, "ticket.solved")
            if rng.random() < 0.08:
                at += timedelta(hours=rng.uniform(1, 24))
                script.add(at, "ticket.reopened", {"body": "The problem is back."})
    end = start + span
    return [t.event for t in sorted(timed, key=lambda t: (t.at, t.event.event_id)) if t.at <= end]


def run_demo(settings: Settings, *, tickets: int, console: Console) -> str:
    """Build the demo workspace and play the stream; return an admin token for the dashboard."""
    workspace = settings.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    for leftover in workspace.glob("baton.db*"):
        leftover.unlink()
    policy_dir = settings.resolved_policy_dir
    if policy_dir.exists():
        shutil.rmtree(policy_dir)
    shutil.copytree(EXAMPLE_POLICY, policy_dir)
    shutil.copy(_HERE / "accounts.csv", settings.resolved_accounts_file)

    db = open_database(settings.resolved_database_url)
    db.migrate()
    accounts = [row.account for row in read_accounts_csv(settings.resolved_accounts_file) if row.account]
    with db.write() as conn:
        repo.upsert_accounts(conn, accounts)
        token = create_token(conn, role="admin", name="demo", now_ms=to_ms(SystemClock().now()))

    policy = load_policy(policy_dir)
    tune_gc()
    end = SystemClock().now().replace(microsecond=0)
    hours = 72.0
    start = end - timedelta(hours=hours)
    stream = generate_stream(tickets=tickets, start=start, hours=hours, accounts=[a.id for a in accounts])
    clock = FakeClock(start)
    engine = Engine(db=db, policy=policy, clock=clock)
    fired = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"playing {len(stream)} events", total=len(stream))
        i = 0
        while i < len(stream):
            # Everything that happened in the same minute goes in one batch, like live traffic.
            batch_end = stream[i].occurred_at + timedelta(minutes=1)
            j = i
            while j < len(stream) and stream[j].occurred_at < batch_end and j - i < 200:
                j += 1
            clock.set(max(clock.now(), stream[j - 1].occurred_at))
            while (n := engine.fire_due_timers(limit=500)) > 0:
                fired += n
            engine.ingest(stream[i:j])
            progress.update(task, advance=j - i)
            i = j
        clock.set(max(clock.now(), end))
        while (n := engine.fire_due_timers(limit=500)) > 0:
            fired += n
    console.print(
        f"demo: {tickets} tickets, {len(stream)} events and {fired} SLA timers played through policy "
        f"{policy.name} ({policy.version}) from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    )
    return token
