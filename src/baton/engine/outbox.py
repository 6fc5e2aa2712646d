"""Delivering the outbox: claim under a lease, check the sent-log, send, record the outcome.

The order of steps is what makes delivery safe to crash anywhere:

1. claim (commit): rows become ``claimed`` by this worker until the lease runs out;
2. for each claimed action, skip it if the sent-log already has its key (sent, then crashed);
3. commit ``action.attempt`` on the audit chain (connector, kind, attempt number), renewing the
   claim if the send could outlast it, with what the connector foresees the send writing (an item
   whose id it chooses, such as a Linear comment), so its echo is known even before the answer;
4. ``connector.send`` with the idempotency key;
5. in one transaction: sent-log row, outbox row ``done`` (only while the claim is still ours),
   and the outcome on the audit chain: ``action.delivered``, ``action.failed`` (to be retried),
   ``action.deferred`` or ``action.dead``, each naming the connector, the kind of action, the
   attempt and, for the last three, the error and its class.

A worker killed between 3 and 5 leaves the claim to expire and an attempt without an outcome on
the chain; the next worker sends again with the same key, which a target that honours idempotency
keys applies once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, and_, insert, select, update

from baton import audit
from baton.audit import AuditRecord
from baton.clock import Clock, to_ms
from baton.connectors.base import Connector, Delivery, Foreseen, OutboundAction, foreseen
from baton.connectors.log import LogConnector
from baton.engine.breaker import FALLBACK, NOTICE_ACTION, Breakers
from baton.errors import DeferredDelivery, PermanentConnectorError, TransientConnectorError
from baton.model import Event, EventType, ExternalLink
from baton.store import echoes, repo
from baton.store.db import Database
from baton.store.repo import ClaimedAction
from baton.store.schema import outbox, sent_log

__all__ = ["LINK_SOURCE", "DeliveryStats", "Outbox", "backoff_seconds"]

LINK_SOURCE = "baton.link"
CLAIMS_PER_ATTEMPT = 4
"""An action claimed this many times per allowed attempt without any outcome is dead-lettered."""

_log = logging.getLogger("baton.outbox")
RETRY_AFTER_SPREAD = 0.1  # the jitter on top of a vendor's Retry-After, as a share of it
RETRY_AFTER_SPREAD_MAX = 30.0  # seconds


def backoff_seconds(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 300.0,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retrying after failed attempt number ``attempt`` (counted from 1).

    Exponential backoff with full jitter: uniform in ``[0, min(cap, base * 2**(attempt - 1))]``,
    so the first retry waits up to ``base``, each later one up to twice as long, never more than
    ``cap`` (an ``attempt`` below 1 counts as 1). ``rng`` makes the jitter reproducible.

    A vendor's ``retry_after`` (its ``Retry-After``) is a floor, even above ``cap``: never sooner.
    On top of it comes a jitter of up to a tenth of it (at most :data:`RETRY_AFTER_SPREAD_MAX`
    seconds): every action one 429 held back would otherwise come back in the same instant and
    meet the same limit. ``0`` means now.
    """
    if base < 0 or cap < 0 or (retry_after is not None and retry_after < 0):
        raise ValueError("base, cap and retry_after must not be negative")
    if retry_after is not None:
        spread = min(retry_after * RETRY_AFTER_SPREAD, RETRY_AFTER_SPREAD_MAX)
        return retry_after + (rng or random).uniform(0, spread) if spread > 0 else retry_after
    doublings = min(max(attempt, 1) - 1, 64)  # past 2**64 every cap is reached; no overflow
    return (rng or random).uniform(0, min(cap, base * 2**doublings))


@dataclass
class DeliveryStats:
    claimed: int = 0
    delivered: int = 0
    skipped: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0


class Outbox:
    """Delivers claimed actions through the configured connectors."""

    def __init__(
        self,
        *,
        db: Database,
        connectors: Mapping[str, Connector],
        clock: Clock,
        worker: str,
        lease: timedelta = timedelta(seconds=30),
        max_attempts: int = 8,
        rate_limits: Callable[[], Mapping[str, tuple[int, int]]] | None = None,
        breakers: Breakers | None = None,
        linker: Callable[[Connection, Sequence[Event]], object] | None = None,
        send_timeout: timedelta | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.connectors = connectors
        self.clock = clock
        self.worker = worker
        self.lease = lease
        self.max_attempts = max_attempts
        # Read at each use, so a newly activated policy's limits apply without a restart.
        self.rate_limits = rate_limits or dict
        self.breakers = breakers or Breakers(db=db, clock=clock, connectors=connectors)
        # The breakers' fallback of last resort carries their "connector down" notices whether or
        # not it is configured, so a notice is never dead-lettered for want of a channel. (A policy
        # action for an unconfigured ``log`` still dead-letters, like any unconfigured connector.)
        self._log = LogConnector()
        # Ingests the event that puts a newly created linked item on its ticket, inside the
        # transaction that records the delivery (the engine's ``ingest_in``).
        self.linker = linker
        # The longest one send may take (connectors' total HTTP timeout); a claim with more than
        # this left needs no renewal before the send, which saves a commit per action.
        self.send_timeout = send_timeout if send_timeout is not None else lease / 2
        self._held_until: dict[int, int] = {}
        self.rng = rng  # the backoff's jitter; a seeded one makes retry times reproducible

    def deliver(self, *, limit: int = 100, budget_seconds: float | None = None) -> DeliveryStats:
        """Claim up to ``limit`` actions and send them. With a ``budget_seconds``, stop sending once
        it is spent and hand the rest back, so a worker gets back to firing due timers."""
        stats = DeliveryStats()
        started = time.monotonic()
        now = self.clock.now()
        with self.db.write() as conn:
            open_circuits, on_trial = self.breakers.blocked(conn)
            claimed = repo.claim_outbox(
                conn,
                worker=self.worker,
                now_ms=to_ms(now),
                lease_ms=int(self.lease.total_seconds() * 1000),
                limit=limit,
                is_postgres=self.db.is_postgres,
                skip_connectors=open_circuits,
            )
            # A connector on trial after its cooldown gets one action; the rest go back untouched.
            extra = [a.id for a in claimed if a.connector in on_trial]
            keep_first = {a.connector: a.id for a in reversed(claimed) if a.connector in on_trial}
            self.breakers.release_trials(conn, on_trial - keep_first.keys())
            extra = [i for i in extra if i not in keep_first.values()]
            if extra:
                repo.release_claims(conn, extra, worker=self.worker)
                claimed = [a for a in claimed if a.id not in set(extra)]
            sent = repo.already_sent(conn, [a.idempotency_key for a in claimed])
        held = to_ms(now) + int(self.lease.total_seconds() * 1000)
        self._held_until = {a.id: held for a in claimed}
        stats.claimed = len(claimed)
        tripped: set[str] = set()
        for position, action in enumerate(claimed):
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                with self.db.write() as conn:
                    repo.release_claims(conn, [a.id for a in claimed[position:]], worker=self.worker)
                stats.deferred += len(claimed) - position
                break
            if action.connector in tripped:
                # Its circuit opened during this round: hand the rest back rather than keep hitting it.
                with self.db.write() as conn:
                    repo.release_claims(conn, [action.id], worker=self.worker)
                stats.deferred += 1
                continue
            if action.idempotency_key in sent:
                self._finish(action, status="done", kind="action.delivered", detail={"recovered": True})
                stats.skipped += 1
                continue
            limited = self._rate_limited(action)
            if limited is not None:
                scope, wait = limited
                self._retry(action, error={"error": f"rate limit {scope}"}, delay=wait, outcome="returned")
                stats.deferred += 1
                continue
            if not self._send_one(action, stats):
                tripped.add(action.connector)
        return stats

    def _rate_limited(self, action: ClaimedAction) -> tuple[str, float] | None:
        """(the limit, seconds to wait) if sending ``action`` now would exceed a rate limit.

        Limits are keyed ``connector.kind`` (that connector's actions of that kind), ``connector``
        (all of its actions) or ``kind`` (actions of that kind through any connector); every one
        that applies must have room, and the longest wait wins."""
        limits = self.rate_limits()
        if not limits:
            return None
        c, k = sent_log.c.connector == action.connector, sent_log.c.kind == action.kind
        scopes = ((f"{action.connector}.{action.kind}", and_(c, k)), (action.connector, c), (action.kind, k))
        waits = [
            (key, wait)
            for key, where in scopes
            if key in limits and (wait := self._window_wait(where, *limits[key])) is not None
        ]
        return max(waits, key=lambda w: w[1]) if waits else None

    def _window_wait(self, where: ColumnElement[bool], count: int, window: int) -> float | None:
        """Seconds until the sliding window of the sent-log rows matching ``where`` has room."""
        now_ms = to_ms(self.clock.now())
        with self.db.reader.connect() as conn:
            recent = (
                conn.execute(
                    select(sent_log.c.sent_ms)
                    .where(where, sent_log.c.sent_ms > now_ms - window * 1000)
                    .order_by(sent_log.c.sent_ms)
                    .limit(count)
                )
                .scalars()
                .all()
            )
        if len(recent) < count:
            return None
        oldest: int = recent[0]
        return max((oldest + window * 1000 - now_ms) / 1000, 0.001)

    def _send_one(self, action: ClaimedAction, stats: DeliveryStats) -> bool:
        """Send one action; False when its connector's circuit opened on this failure."""
        connector = self.connectors.get(action.connector)
        if connector is None and action.connector == FALLBACK and action.action_name == NOTICE_ACTION:
            connector = self._log
        outbound = OutboundAction(
            key=action.idempotency_key,
            ticket_id=action.ticket_id,
            connector=action.connector,
            kind=action.kind,
            params=action.params,
            attempt=action.attempts,
        )
        if action.attempts > CLAIMS_PER_ATTEMPT * self.max_attempts:
            # Claimed again and again without an outcome: the worker dies while sending it.
            error = f"claimed {action.attempts} times without an outcome; the worker died each time"
            self._finish(action, status="dead", kind="action.dead", detail=_error(error, "WorkerDied"))
            stats.dead += 1
            return True
        if not self._start_attempt(action, foreseen(connector, outbound)):
            stats.skipped += 1  # our lease ran out while earlier actions were sent; another worker has it
            return True
        failures = action.failures + 1  # if this send fails
        try:
            if connector is None:
                raise PermanentConnectorError(f"no connector named {action.connector!r} is configured")
            delivery = connector.send(outbound)
        except PermanentConnectorError as exc:
            self._finish(action, status="dead", kind="action.dead", detail=_error(str(exc), exc), failed=True)
            stats.dead += 1
            if connector is not None:  # the vendor answered (this action is wrong, the vendor is up)
                self.breakers.succeeded(action.connector)
            return True
        except DeferredDelivery as exc:  # the vendor is fine; the connector wants to wait
            self._retry(action, error=_error(str(exc), exc), delay=exc.retry_after, outcome="deferred")
            stats.retried += 1
            self.breakers.succeeded(action.connector)
            return True
        except Exception as exc:  # transient, or a connector bug that must not stop the worker
            if isinstance(exc, TransientConnectorError):
                error, hint = str(exc), exc.retry_after
            else:
                _log.exception("connector %s raised unexpectedly", action.connector)
                error, hint = f"{exc.__class__.__name__}: {exc}", None
            opened = self.breakers.failed(action.connector, error=error)
            if failures >= self.max_attempts:
                self._finish(
                    action, status="dead", kind="action.dead", detail=_error(error, exc), failed=True
                )
                stats.dead += 1
            else:
                delay = backoff_seconds(failures, retry_after=hint, rng=self.rng)
                self._retry(action, error=_error(error, exc), delay=delay)
                stats.retried += 1
            return not opened
        self._finish(action, status="done", kind="action.delivered", delivery=delivery)
        self.breakers.succeeded(action.connector)
        stats.delivered += 1
        return True

    def _finish(
        self,
        action: ClaimedAction,
        *,
        status: str,
        kind: str,
        delivery: Delivery | None = None,
        detail: dict[str, Any] | None = None,
        failed: bool = False,
    ) -> None:
        """``failed``: this send failed (it counts among the action's failures)."""
        now = self.clock.now()
        body: dict[str, Any] = {**_about(action), **(detail or {})}
        if delivery is not None:
            body["external_id"] = delivery.external_id
            if delivery.detail:
                body["detail"] = dict(delivery.detail)
            if delivery.link is not None:
                body["link"] = delivery.link.model_dump(mode="json", exclude_none=True)
        with self.db.write() as conn:
            error = (detail or {}).get("error") if status == "dead" else None
            if not self._still_ours(conn, action, status=status, error=error, failed=failed):
                return  # our lease ran out and another worker owns the row now
            if status == "done" and not (detail or {}).get("recovered"):
                conn.execute(
                    insert(sent_log).values(
                        idempotency_key=action.idempotency_key,
                        connector=action.connector,
                        kind=action.kind,
                        sent_ms=to_ms(now),
                        result={"external_id": delivery.external_id if delivery else None},
                    )
                )
            audit.append(
                conn, [AuditRecord(kind, action.ticket_id, now, body)], is_postgres=self.db.is_postgres
            )
            if delivery is not None and delivery.link is not None:
                self._linked(conn, action, delivery.link, delivery.wrote, now=now)

    def _linked(
        self,
        conn: Connection,
        action: ClaimedAction,
        link: ExternalLink,
        wrote: Mapping[str, str],
        *,
        now: datetime,
    ) -> None:
        """Record the item the action created or changed: what it wrote (to recognise the echo),
        and, when the item is new to Baton, a ``baton.link`` event that puts it on the ticket, so
        the item's own webhooks join this ticket and later changes are synced to it."""
        if wrote:
            echoes.record(
                conn,
                system=link.system,
                external_id=link.id,
                ticket_id=action.ticket_id,
                wrote=wrote,
                now_ms=to_ms(now),
            )
        if repo.find_links(conn, [(link.system, link.id)]):
            return  # already linked (an item is never moved from one ticket to another here)
        if self.linker is None:
            repo.insert_links(
                conn,
                [
                    {
                        "system": link.system,
                        "external_id": link.id,
                        "ticket_id": action.ticket_id,
                        "url": link.url,
                    }
                ],
            )
            return
        event = Event(
            source=LINK_SOURCE,
            event_id=action.idempotency_key,
            type=EventType.TICKET_UPDATED,
            occurred_at=now,
            ticket_id=action.ticket_id,
            external=link,
            data={"linked_by": action.action_name, "connector": action.connector},
        )
        try:
            with conn.begin_nested():
                self.linker(conn, [event])
        except Exception:  # the delivery stands; the link alone is kept, and the failure logged
            _log.exception("linking %s %s to %s failed", link.system, link.id, action.ticket_id)
            repo.insert_links(
                conn,
                [
                    {
                        "system": link.system,
                        "external_id": link.id,
                        "ticket_id": action.ticket_id,
                        "url": link.url,
                    }
                ],
            )

    def _retry(
        self,
        action: ClaimedAction,
        *,
        error: dict[str, str],
        delay: float,
        outcome: Literal["failed", "deferred", "returned"] = "failed",
    ) -> None:
        """Put the action back for ``delay`` seconds. ``failed``: a counted failure (toward the
        dead-letter limit). ``deferred``: the connector chose not to send yet; the claim counts,
        the failure does not. ``returned``: not tried at all (a rate limit); the claim is given
        back. Failures and deferrals go on the audit chain, naming the connector, the kind of
        action, the attempt and the error (message and class, see :func:`_error`)."""
        now = self.clock.now()
        message = error["error"]
        failed = outcome == "failed"
        with self.db.write() as conn:
            result = conn.execute(
                update(outbox)
                .where(
                    outbox.c.id == action.id, outbox.c.claimed_by == self.worker, outbox.c.status == "claimed"
                )
                .values(
                    status="pending",
                    claimed_by=None,
                    claimed_until_ms=None,
                    available_ms=to_ms(now) + int(delay * 1000),
                    last_error=message[:2_000],
                    failures=outbox.c.failures + 1 if failed else outbox.c.failures,
                    attempts=outbox.c.attempts - 1 if outcome == "returned" else outbox.c.attempts,
                )
            )
            if result.rowcount and outcome != "returned":
                audit.append(
                    conn,
                    [
                        AuditRecord(
                            f"action.{outcome}",
                            action.ticket_id,
                            now,
                            {
                                **_about(action),
                                **error,
                                "error": message[:500],
                                "retry_in_s": round(delay, 3),
                            },
                        )
                    ],
                    is_postgres=self.db.is_postgres,
                )

    def _start_attempt(self, action: ClaimedAction, ahead: Sequence[Foreseen] = ()) -> bool:
        """Record the attempt (``action.attempt``) before the send, so every attempt is on the
        audit chain even when the worker dies during it, and make sure the claim outlasts the
        send: extended unless what is left of it covers the longest send plus a second. False,
        with nothing recorded, when the lease already ran out and the row may be in another
        worker's hands: a batch slower than the lease then never sends twice. What the connector
        foresees the send writing (``ahead``) is awaited from here on: its echo may come back
        before the answer does, or instead of it."""
        now = self.clock.now()
        now_ms = to_ms(now)
        needed = int((self.send_timeout.total_seconds() + 1) * 1000)
        held = self._held_until.get(action.id, 0)
        until = held if held - now_ms > needed else now_ms + int(self.lease.total_seconds() * 1000)
        with self.db.write() as conn:
            result = conn.execute(
                update(outbox)
                .where(
                    outbox.c.id == action.id, outbox.c.claimed_by == self.worker, outbox.c.status == "claimed"
                )
                .values(claimed_until_ms=until)
            )
            if not result.rowcount:
                return False
            body = {**_about(action), "failures_so_far": action.failures, "worker": self.worker}
            audit.append(
                conn,
                [AuditRecord("action.attempt", action.ticket_id, now, body)],
                is_postgres=self.db.is_postgres,
            )
            for item in ahead:
                echoes.record(
                    conn,
                    system=item.system,
                    external_id=item.external_id,
                    ticket_id=action.ticket_id,
                    wrote=item.wrote,
                    now_ms=now_ms,
                    ttl_ms=echoes.FORESEEN_TTL_MS,
                    renew=True,
                )
        self._held_until[action.id] = until
        return True

    def _still_ours(
        self, conn: Connection, action: ClaimedAction, *, status: str, error: str | None, failed: bool
    ) -> bool:
        """Record the outcome while the claim is ours; a dead action keeps the error that ended it."""
        result = conn.execute(
            update(outbox)
            .where(outbox.c.id == action.id, outbox.c.claimed_by == self.worker, outbox.c.status == "claimed")
            .values(
                status=status,
                claimed_until_ms=None,
                last_error=None if status == "done" else error[:2_000] if error else outbox.c.last_error,
                failures=outbox.c.failures + 1 if failed else outbox.c.failures,
            )
        )
        return bool(result.rowcount)


def _about(action: ClaimedAction) -> dict[str, Any]:
    """What every audit entry of an action's delivery names: the action, its connector and kind,
    and the attempt (claims of the action so far)."""
    return {
        "key": action.idempotency_key,
        "decision": action.decision_id,
        "action": action.action_name,
        "connector": action.connector,
        "kind": action.kind,
        "attempt": action.attempts,
    }


def _error(message: str, cause: BaseException | str) -> dict[str, str]:
    """An outcome's error for the audit chain: the message and the class of the exception (or a
    name for a failure that raised none), so entries can be counted by kind of failure."""
    name = cause if isinstance(cause, str) else cause.__class__.__name__
    return {"error": message, "error_class": name}
