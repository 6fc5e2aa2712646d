"""Circuit breakers, one per connector: a stage of the outbox pipeline (capability X1).

closed ──(N transient failures in a row)──▶ open ──(cooldown passes)──▶ half-open
   ▲                                                                      │
   └──────────────(the trial send succeeds)──────────────────────────────┘
                   (the trial send fails: open again, for another cooldown)

Half-open lets one trial through across every worker: the first to take it moves the row to
``half_open`` (one conditional UPDATE, so two workers never both get it), and the rest see the
circuit blocked until the trial's outcome, or for one cooldown if none ever comes (its worker
died); a worker that took it and found nothing due to try hands it back.

While a connector's circuit is open nothing is claimed for it: its actions wait in the outbox
(read-only fallback: nothing is dropped, other connectors keep flowing). When it opens, and again
each time a trial fails, the owners of the tickets whose actions wait are told through the
fallback connector: one notice per owner per outage (an outage lasts from opening to closing),
listing their waiting tickets. The fallback is the configured one, else the policy's notify
connector, else ``log``; never the connector that is down, and ``log`` (always available) when
the chosen one is not configured. Only failures that say the target is unwell count (timeouts,
5xx, 429); a 4xx is the request's fault. State is a row per connector, so every worker and the
API see the same circuit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from baton import audit
from baton.audit import AuditRecord
from baton.clock import Clock, from_ms, to_ms
from baton.policy.model import Policy
from baton.store.db import Database
from baton.store.schema import connector_state, outbox, tickets

__all__ = ["BreakerSettings", "Breakers", "circuit_states"]


FALLBACK = "log"
"""The fallback of last resort: needs no configuration, so the outbox always has it."""
NOTICE_ACTION = "notify.connector-down"


@dataclass(frozen=True)
class BreakerSettings:
    """``fallback_connector``: where owners hear that a connector is down; None for the policy's
    notify connector (or ``log``). ``notify``: False sends no notices at all."""

    failures_to_open: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    fallback_connector: str | None = None
    notify: bool = True
    # How long a trial taken is held for its worker: at least as long as its claim can last, so a
    # trial send that hangs until its timeout (shorter than the lease) never overlaps a second one.
    trial_hold: timedelta = timedelta(seconds=30)


class Breakers:
    """Reads and moves the circuits; every transition is on the audit chain.

    ``connectors``: the names configured in this process (a fallback outside them is replaced by
    ``log``; None trusts any name). ``policy``: the active policy, read at each use, for its
    notify connector and its members' identities (the address of each owner on the fallback).
    """

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        settings: BreakerSettings | None = None,
        connectors: Container[str] | None = None,
        policy: Callable[[], Policy] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings or BreakerSettings()
        self.connectors = connectors
        self.policy = policy

    def blocked(self, conn: Connection) -> tuple[set[str], set[str]]:
        """(connectors whose circuit is open or whose trial is out, connectors whose one trial
        action this caller has taken: their cooldown is over; "half-open"). Call in the
        transaction that claims the actions, and hand back unused trials (:meth:`release_trials`)."""
        now_ms = to_ms(self.clock.now())
        blocked: set[str] = set()
        trial: set[str] = set()
        rows = conn.execute(
            select(connector_state)
            .where(connector_state.c.state != "closed")
            .order_by(connector_state.c.connector)
        )  # one order for every worker: two claims never take these rows in opposite orders
        for row in rows:
            if row.open_until_ms is not None and row.open_until_ms > now_ms:
                blocked.add(row.connector)
            elif self._take_trial(conn, row.connector, now_ms=now_ms):
                trial.add(row.connector)
            else:
                blocked.add(row.connector)  # another worker took the trial a moment ago
        return blocked, trial

    def _take_trial(self, conn: Connection, connector: str, *, now_ms: int) -> bool:
        # Conditional on the cooldown (or a lost trial's hold) being over: on PostgreSQL a second
        # taker waits for the first one's row lock, then finds the condition false.
        hold = int(max(self.settings.cooldown, self.settings.trial_hold).total_seconds() * 1000)
        taken = conn.execute(
            update(connector_state)
            .where(
                connector_state.c.connector == connector,
                connector_state.c.state != "closed",
                or_(connector_state.c.open_until_ms.is_(None), connector_state.c.open_until_ms <= now_ms),
            )
            .values(state="half_open", open_until_ms=now_ms + hold)
        )
        if taken.rowcount:
            self._audit(conn, "connector.half_open", connector, {"trial_until_ms": now_ms + hold})
        return bool(taken.rowcount)

    def release_trials(self, conn: Connection, connectors: set[str]) -> None:
        """Hand back trials taken with no action to try, so the next due action may be the trial."""
        for connector in sorted(connectors):
            conn.execute(
                update(connector_state)
                .where(connector_state.c.connector == connector, connector_state.c.state == "half_open")
                .values(open_until_ms=to_ms(self.clock.now()))
            )

    def succeeded(self, connector: str) -> None:
        with self.db.write() as conn:
            row = self._row(conn, connector)
            if row is None or (row.state == "closed" and row.failures == 0):
                return
            conn.execute(
                update(connector_state)
                .where(connector_state.c.connector == connector)
                .values(
                    state="closed",
                    failures=0,
                    open_until_ms=None,
                    opened_ms=None,
                    updated_ms=to_ms(self.clock.now()),
                )
            )
            if row.state != "closed":
                self._audit(conn, "connector.closed", connector, {"after_failures": row.failures})

    def is_open(self, connector: str) -> bool:
        with self.db.reader.connect() as conn:
            row = conn.execute(
                select(connector_state.c.state).where(connector_state.c.connector == connector)
            ).first()
        return row is not None and row.state == "open"

    def failed(self, connector: str, *, error: str) -> bool:
        """Count a failure; True when this one opened the circuit."""
        now = self.clock.now()
        with self.db.write() as conn:
            row = self._row(conn, connector)
            if row is None:
                conn.execute(
                    insert(connector_state).values(
                        connector=connector,
                        state="closed",
                        failures=0,
                        open_until_ms=None,
                        updated_ms=to_ms(now),
                    )
                )
                failures, state, opened_ms = 0, "closed", None
            else:
                failures, state, opened_ms = int(row.failures), str(row.state), row.opened_ms
            failures += 1
            # Open when the run of failures is long enough, or when the trial after a cooldown failed.
            trial_failed = state == "half_open" or (
                state == "open" and row is not None and (row.open_until_ms or 0) <= to_ms(now)
            )
            opening = (state == "closed" and failures >= self.settings.failures_to_open) or trial_failed
            values: dict[str, Any] = {"failures": failures, "updated_ms": to_ms(now)}
            if opening:
                # An outage begins when a closed circuit opens; a failed trial continues it.
                opened_ms = opened_ms if trial_failed and opened_ms is not None else to_ms(now)
                values |= {
                    "state": "open",
                    "open_until_ms": to_ms(now + self.settings.cooldown),
                    "opened_ms": opened_ms,
                }
            conn.execute(
                update(connector_state).where(connector_state.c.connector == connector).values(**values)
            )
            if opening:
                assert opened_ms is not None
                fallback = self.fallback_for(connector)
                notified = (
                    self._notify_owners(
                        conn, connector, fallback, outage_ms=int(opened_ms), error=error, now=now
                    )
                    if fallback is not None
                    else 0
                )
                self._audit(
                    conn,
                    "connector.opened",
                    connector,
                    {"failures": failures, "error": error[:300], "fallback": fallback, "notified": notified},
                )
            return opening

    def fallback_for(self, connector: str) -> str | None:
        """The connector that tells people ``connector`` is down; None when there is none."""
        if not self.settings.notify:
            return None
        chosen = self.settings.fallback_connector
        if not chosen:
            chosen = self.policy().notify_connector if self.policy else FALLBACK
        if chosen == connector or (self.connectors is not None and chosen not in self.connectors):
            chosen = FALLBACK
        return None if chosen == connector else chosen

    def _row(self, conn: Connection, connector: str) -> Any:
        query = select(connector_state).where(connector_state.c.connector == connector)
        if self.db.is_postgres:
            query = query.with_for_update()
        return conn.execute(query).first()

    def _audit(self, conn: Connection, kind: str, connector: str, body: dict[str, Any]) -> None:
        audit.append(
            conn,
            [AuditRecord(kind, None, self.clock.now(), {"connector": connector, **body})],
            is_postgres=self.db.is_postgres,
        )

    def _notify_owners(
        self, conn: Connection, connector: str, fallback: str, *, outage_ms: int, error: str, now: datetime
    ) -> int:
        """Queue one notice per owner of a ticket with actions waiting on ``connector``, unless
        that owner already has one for this outage (the key names the outage and the owner).
        Each notice is on a ticket of its own, so it never waits behind the actions it is about.
        Returns how many notices were queued."""
        rows = conn.execute(
            select(outbox.c.ticket_id, tickets.c.owner_person, tickets.c.owner_role)
            .select_from(outbox.outerjoin(tickets, tickets.c.id == outbox.c.ticket_id))
            .where(outbox.c.connector == connector, outbox.c.status.in_(("pending", "claimed")))
        ).all()
        waiting: dict[str, set[str]] = {}
        for ticket_id, person, role in rows:
            if ticket_id.startswith("connector:"):
                continue  # another outage notice, not a ticket
            waiting.setdefault(person or role or "operations", set()).add(ticket_id)
        if not waiting:
            return 0
        policy = self.policy() if self.policy else None
        values = []
        for owner, ticket_ids in sorted(waiting.items()):
            member = policy.members.get(owner) if policy else None
            listed = sorted(ticket_ids)
            key = f"circuit:{connector}:{outage_ms}:{owner}"
            values.append(
                {
                    "idempotency_key": hashlib.sha256(key.encode()).hexdigest(),
                    "ticket_id": f"connector:{connector}:{owner}"[:128],
                    "decision_id": key[:128],
                    "action_name": NOTICE_ACTION,
                    "connector": fallback,
                    "kind": "notify",
                    "params": {
                        "to": owner,
                        "address": member.identities.get(fallback, owner) if member else owner,
                        "about": "connector-down",
                        "connector": connector,
                        "subject": f"{connector} is down: {len(listed)} of your tickets wait",
                        "text": (
                            f"Baton cannot reach {connector} (last error: {error[:200]}). Actions on "
                            f"{', '.join(listed[:20])}{' and more' if len(listed) > 20 else ''} are "
                            "waiting and will be sent when it recovers; nothing is dropped."
                        ),
                        "tickets": listed[:50],
                    },
                    "status": "pending",
                    "attempts": 0,
                    "available_ms": to_ms(now),
                    "created_ms": to_ms(now),
                }
            )
        told = set(
            conn.execute(
                select(outbox.c.idempotency_key).where(
                    outbox.c.idempotency_key.in_([v["idempotency_key"] for v in values])
                )
            ).scalars()
        )
        values = [v for v in values if v["idempotency_key"] not in told]
        if values:
            # The circuit's row is locked, so no other worker is here; the conflict clause is a seatbelt.
            insert_ = pg_insert if self.db.is_postgres else sqlite_insert
            conn.execute(insert_(outbox).on_conflict_do_nothing(index_elements=["idempotency_key"]), values)
        return len(values)


def circuit_states(conn: Connection, *, now: datetime) -> list[dict[str, Any]]:
    """Every connector's circuit, for the API, the dashboard and metrics."""
    now_ms = to_ms(now)
    return [
        {
            "connector": r.connector,
            "state": "half_open" if r.state == "open" and (r.open_until_ms or 0) <= now_ms else r.state,
            "failures": int(r.failures),
            "open_until": from_ms(int(r.open_until_ms)).isoformat() if r.open_until_ms else None,
            "updated_at": from_ms(int(r.updated_ms)).isoformat(),
        }
        for r in conn.execute(select(connector_state).order_by(connector_state.c.connector))
    ]
