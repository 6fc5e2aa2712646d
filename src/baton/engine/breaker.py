"""Circuit breakers, one per connector: a stage of the outbox pipeline (capability X1).

closed ──(N transient failures in a row)──▶ open ──(cooldown passes)──▶ half-open
   ▲                                                                      │
   └──────────────(the trial send succeeds)──────────────────────────────┘
                   (the trial send fails: open again, for another cooldown)

While a connector's circuit is open nothing is claimed for it: its actions wait in the outbox
(read-only fallback: nothing is dropped, other connectors keep flowing), and when it opens a
notice goes out through the fallback connector so people know the channel is down. Only failures
that say the target is unwell count (timeouts, 5xx, 429); a 4xx is the request's fault. State is
a row per connector, so every worker and the API see the same circuit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from baton import audit
from baton.audit import AuditRecord
from baton.clock import Clock, from_ms, to_ms
from baton.store.db import Database
from baton.store.schema import connector_state, outbox

__all__ = ["BreakerSettings", "Breakers", "circuit_states"]


@dataclass(frozen=True)
class BreakerSettings:
    failures_to_open: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    fallback_connector: str | None = "log"


class Breakers:
    """Reads and moves the circuits; every transition is on the audit chain."""

    def __init__(self, *, db: Database, clock: Clock, settings: BreakerSettings | None = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings or BreakerSettings()

    def blocked(self, conn: Connection) -> tuple[set[str], set[str]]:
        """(connectors whose circuit is open, connectors on trial: their cooldown is over, so one
        action at a time may test them; "half-open")."""
        now_ms = to_ms(self.clock.now())
        blocked: set[str] = set()
        trial: set[str] = set()
        for row in conn.execute(select(connector_state).where(connector_state.c.state != "closed")):
            if row.open_until_ms is not None and row.open_until_ms > now_ms:
                blocked.add(row.connector)
            else:
                trial.add(row.connector)
        return blocked, trial

    def succeeded(self, connector: str) -> None:
        with self.db.write() as conn:
            row = self._row(conn, connector)
            if row is None or (row.state == "closed" and row.failures == 0):
                return
            conn.execute(
                update(connector_state)
                .where(connector_state.c.connector == connector)
                .values(state="closed", failures=0, open_until_ms=None, updated_ms=to_ms(self.clock.now()))
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
                failures, state = 0, "closed"
            else:
                failures, state = int(row.failures), str(row.state)
            failures += 1
            # Open when the run of failures is long enough, or when the trial after a cooldown failed.
            trial_failed = state == "open" and row is not None and (row.open_until_ms or 0) <= to_ms(now)
            opening = (state == "closed" and failures >= self.settings.failures_to_open) or trial_failed
            values: dict[str, Any] = {"failures": failures, "updated_ms": to_ms(now)}
            if opening:
                values |= {"state": "open", "open_until_ms": to_ms(now + self.settings.cooldown)}
            conn.execute(
                update(connector_state).where(connector_state.c.connector == connector).values(**values)
            )
            if opening:
                self._audit(conn, "connector.opened", connector, {"failures": failures, "error": error[:300]})
                self._notify_fallback(conn, connector, failures=failures, error=error, now=now)
            return opening

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

    def _notify_fallback(
        self, conn: Connection, connector: str, *, failures: int, error: str, now: datetime
    ) -> None:
        fallback = self.settings.fallback_connector
        if fallback is None or fallback == connector:
            return
        waiting = (
            conn.execute(
                select(outbox.c.ticket_id).where(
                    outbox.c.connector == connector, outbox.c.status.in_(("pending", "claimed"))
                )
            )
            .scalars()
            .all()
        )
        key = f"circuit:{connector}:{to_ms(now)}:{failures}"
        conn.execute(
            insert(outbox).values(
                idempotency_key=hashlib.sha256(key.encode()).hexdigest(),
                ticket_id=f"connector:{connector}",
                decision_id=key,
                action_name="notify.connector-down",
                connector=fallback,
                kind="notify",
                params={
                    "to": "operations",
                    "text": (
                        f"Connector {connector} is failing ({failures} failures in a row, "
                        f"last: {error[:200]}). {len(waiting)} action(s) on {len(set(waiting))} "
                        "ticket(s) are waiting and will be sent when it recovers; nothing is dropped."
                    ),
                    "tickets": sorted(set(waiting))[:50],
                },
                status="pending",
                attempts=0,
                available_ms=to_ms(now),
                created_ms=to_ms(now),
            )
        )


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
