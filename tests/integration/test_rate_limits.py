"""Rate limits in the outbox, keyed by kind, connector or connector.kind, on SQLite and PostgreSQL.

Each case queues actions (one ticket each, in this order), delivers, then moves the clock past the
window and delivers again: what goes out in each round, by ``connector.kind``.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from baton.clock import FakeClock, to_ms
from baton.connectors.base import Delivery, OutboundAction
from baton.engine.outbox import Outbox
from baton.policy.loader import load_policy
from baton.store.db import Database
from baton.store.schema import outbox
from tests.conftest import TEST_POLICY

CASES = [
    (
        "a kind is counted across connectors",
        {"notify": (2, 60)},
        ["slack.notify", "slack.notify", "email.notify", "email.notify", "slack.message"],
        [{"slack.notify": 2, "slack.message": 1}, {"email.notify": 2}],
    ),
    (
        "a connector's limit counts all its kinds and does not hold another connector",
        {"slack": (2, 60)},
        ["slack.notify", "slack.notify", "slack.message", "email.notify", "email.notify", "email.notify"],
        [{"slack.notify": 2, "email.notify": 3}, {"slack.message": 1}],
    ),
    (
        "connector.kind limits only that connector's actions of that kind",
        {"slack.notify": (1, 60)},
        ["slack.notify", "slack.notify", "slack.message", "email.notify", "email.notify"],
        [{"slack.notify": 1, "slack.message": 1, "email.notify": 2}, {"slack.notify": 1}],
    ),
    (
        "every limit that applies must have room",
        {"slack": (3, 60), "slack.notify": (1, 60), "message": (5, 60)},
        ["slack.notify", "slack.notify", "slack.message", "slack.message", "slack.message"],
        [{"slack.notify": 1, "slack.message": 2}, {"slack.notify": 1, "slack.message": 1}],
    ),
    (
        "a name that is both a connector and a kind limits both ways",
        {"email": (1, 60)},
        ["email.email", "email.notify", "log.email"],
        [{"email.email": 1}, {"email.notify": 1, "log.email": 1}],
    ),
    (
        "no limit for it: never held",
        {"page": (1, 60)},
        ["slack.notify", "slack.notify", "email.notify"],
        [{"slack.notify": 2, "email.notify": 1}],
    ),
]


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []

    def send(self, action: OutboundAction) -> Delivery:
        self.sent.append(f"{action.connector}.{action.kind}")
        return Delivery(external_id=action.key[:8])


def queue(db: Database, clock: FakeClock, actions: list[str]) -> None:
    now = to_ms(clock.now())
    with db.write() as conn:
        conn.execute(
            insert(outbox),
            [
                {
                    "idempotency_key": f"{i:064x}",
                    "ticket_id": f"T-{i}",
                    "decision_id": "D-1",
                    "action_name": f"a{i}",
                    "connector": action.split(".")[0],
                    "kind": action.split(".")[1],
                    "params": {},
                    "status": "pending",
                    "attempts": 0,
                    "available_ms": now,
                    "created_ms": now,
                }
                for i, action in enumerate(actions)
            ],
        )


@pytest.mark.parametrize(("label", "limits", "actions", "rounds"), CASES, ids=[c[0] for c in CASES])
def test_actions_over_a_limit_wait_and_then_go_out(
    db: Database,
    clock: FakeClock,
    label: str,
    limits: dict[str, tuple[int, int]],
    actions: list[str],
    rounds: list[dict[str, int]],
) -> None:
    queue(db, clock, actions)
    connectors = {name: Recorder(name) for name in ("slack", "email", "log")}
    box = Outbox(
        db=db, connectors=connectors, clock=clock, worker="w", max_attempts=1, rate_limits=lambda: limits
    )
    seen: list[dict[str, int]] = []
    for _ in range(len(rounds) + 1):
        before = Counter(s for c in connectors.values() for s in c.sent)
        box.deliver()
        after = Counter(s for c in connectors.values() for s in c.sent)
        seen.append(dict(after - before))
        clock.advance(timedelta(seconds=61))
    assert seen == [*rounds, {}]
    with db.reader.connect() as conn:
        rows = conn.execute(select(outbox.c.status, outbox.c.failures)).all()
    # waiting is neither a failure nor an attempt: with max_attempts=1, nothing was dead-lettered
    assert {(status, failures) for status, failures in rows} == {("done", 0)}


def test_a_waiting_action_says_which_limit_holds_it(db: Database, clock: FakeClock) -> None:
    queue(db, clock, ["slack.notify", "slack.notify"])
    box = Outbox(
        db=db,
        connectors={"slack": Recorder("slack")},
        clock=clock,
        worker="w",
        rate_limits=lambda: {"slack.notify": (1, 3_600), "notify": (10, 60)},
    )
    box.deliver()
    with db.reader.connect() as conn:
        waiting = conn.execute(
            select(outbox.c.last_error, outbox.c.available_ms).where(outbox.c.status == "pending")
        ).one()
    assert waiting.last_error == "rate limit slack.notify"
    assert waiting.available_ms == to_ms(clock.now()) + 3_600_000  # when the hour's window has room


def test_the_policy_accepts_all_three_keys(tmp_path: Path) -> None:
    shutil.copytree(TEST_POLICY, tmp_path / "policy")
    with (tmp_path / "policy" / "baton.yaml").open("a") as f:
        f.write("safety:\n  rate_limits: {slack: 50/m, slack.notify: 20/m, notify: 100/h}\n")
    policy = load_policy(tmp_path / "policy")
    assert policy.rate_limits == {"slack": (50, 60), "slack.notify": (20, 60), "notify": (100, 3_600)}
