"""Builders for test data."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from baton.clock import Clock, to_ms
from baton.model import Event
from baton.store import repo
from baton.store.db import Database
from baton.store.repo import ClaimedAction
from tests.conftest import START, TEST_POLICY


def event(
    n: int | str,
    kind: str = "ticket.created",
    *,
    ticket: int | str | None = None,
    at: datetime | None = None,
    source: str = "zendesk",
    **fields: Any,
) -> Event:
    """A canonical event about external ticket ``ticket`` (default ``n``)."""
    data = fields.pop("data", {})
    return Event.model_validate(
        {
            "source": source,
            "event_id": str(n),
            "type": kind,
            "occurred_at": (at or START).isoformat(),
            "external": {"system": source, "id": str(ticket if ticket is not None else n)},
            "fields": fields,
            "data": data,
        }
    )


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def outbox_row(
    *, key: str, ticket: str, connector: str, kind: str, params: dict[str, Any], now_ms: int, name: str = ""
) -> dict[str, Any]:
    """A pending, due outbox action, as the engine would queue it (for tests that start at delivery)."""
    return {
        "idempotency_key": key,
        "ticket_id": ticket,
        "decision_id": "D-1",
        "action_name": name or f"a-{key}",
        "connector": connector,
        "kind": kind,
        "params": params,
        "status": "pending",
        "attempts": 0,
        "available_ms": now_ms,
        "created_ms": now_ms,
    }


def claim_as(
    db: Database, clock: Clock, worker: str, *, lease_ms: int, limit: int = 10
) -> list[ClaimedAction]:
    """Due outbox rows claimed by ``worker`` in a transaction of its own (a worker that then
    dies, stalls or loses its lease, in the tests that need one)."""
    with db.write() as conn:
        return repo.claim_outbox(
            conn,
            worker=worker,
            now_ms=to_ms(clock.now()),
            lease_ms=lease_ms,
            limit=limit,
            is_postgres=db.is_postgres,
        )


def policy_with(folder: Path, *, baton: str = "", routes: str = "") -> Path:
    """A copy of the test policy in ``folder``, with ``baton`` appended to baton.yaml and
    ``routes`` (YAML list items) put first in the routing list."""
    shutil.copytree(TEST_POLICY, folder)
    with (folder / "baton.yaml").open("a") as f:
        f.write(baton)
    routing = (folder / "routing.yaml").read_text().replace("routing:\n", "routing:\n" + routes, 1)
    (folder / "routing.yaml").write_text(routing)
    return folder
