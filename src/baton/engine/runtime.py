"""The runtime: one transaction per batch of events.

For each event: recognise a redelivery by ``(source, event_id)``, find the canonical ticket,
gather context, ``decide``, then write the event, the new ticket state, the decision, outbox
actions, timers and audit entries. All of a batch commits together or not at all, and a caller is
told "accepted" only after the commit. A batch that fails is retried event by event, so one bad
event costs only itself.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from sqlalchemy import Connection, insert
from sqlalchemy.exc import DBAPIError, IntegrityError

from baton import audit
from baton.audit import AuditRecord
from baton.clock import Clock, from_ms, to_ms
from baton.connectors.base import CREATED
from baton.engine.decide import decide, new_ticket_id, timer_version
from baton.engine.decide_sync import ECHO_TYPES, reported
from baton.enrich.signals import build_context
from baton.model import Account, Action, Decision, Event, EventType, ExternalLink, JsonText, Stage, Ticket
from baton.policy import versions
from baton.policy.model import Policy
from baton.policy.versions import PolicySet
from baton.signals.adapters.base import CLAIMS_TICKET
from baton.store import echoes, repo
from baton.store.db import Database, after_commit
from baton.store.schema import decisions, events, outbox, timers

__all__ = ["Engine", "IngestResult", "idempotency_key"]

_log = logging.getLogger("baton.engine")

TIMER_SOURCE = "baton.timer"
LOAD_REFRESH_SECONDS = 10.0
POLICY_CHECK_SECONDS = 5.0
TICKET_CACHE = 10_000  # tickets an engine keeps as it last committed them (a few KB each)


def idempotency_key(ticket_id: str, decision_id: str, action_name: str) -> str:
    """Stable identity of one outbound effect: (ticket, decision, action)."""
    return hashlib.sha256(f"{ticket_id}\0{decision_id}\0{action_name}".encode()).hexdigest()


@dataclass(frozen=True)
class IngestResult:
    status: Literal["accepted", "duplicate", "failed"]
    source: str
    event_id: str
    ticket_id: str | None
    decision_id: str | None = None
    error: str | None = None


@dataclass
class _Batch:
    """What one transaction will write, gathered before any write is made."""

    tickets: dict[str, Ticket] = field(default_factory=dict)
    event_rows: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[tuple[Decision, JsonText]] = field(default_factory=list)  # with its record
    links: list[dict[str, Any]] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)
    # Tickets this batch opens: they have no stored row, so no stored timer to cancel either.
    opened: set[str] = field(default_factory=set)


class Engine:
    """Applies events to tickets under one policy, durably."""

    def __init__(self, *, db: Database, policy: Policy, clock: Clock) -> None:
        self.db = db
        self.policies = PolicySet(current=policy)
        self.clock = clock
        self._load_cache: tuple[float, dict[str, int]] | None = None
        self._policy_checked = time.monotonic()
        # Tickets as this process last committed them, most recent last: a batch's tickets whose
        # stored version is still the one here are not read and validated again.
        self._tickets: dict[str, Ticket] = {}
        self._tickets_lock = threading.Lock()

    def _remember(self, written: Sequence[Ticket]) -> None:
        """Keep the tickets of a committed transaction (called after its commit, never before)."""
        cache = self._tickets
        with self._tickets_lock:
            for ticket in written:
                kept = cache.pop(ticket.id, None)
                cache[ticket.id] = ticket if kept is None or kept.version <= ticket.version else kept
            while len(cache) > TICKET_CACHE:
                del cache[next(iter(cache))]

    def _follow_active_policy(self, conn: Connection) -> None:
        """Pick up an activation or rollback made by another process, checked every few seconds."""
        now = time.monotonic()
        if now - self._policy_checked < POLICY_CHECK_SECONDS:
            return
        self._policy_checked = now
        active = versions.active_version(conn)
        if active is not None and active != self.policies.current.version:
            policy = self.policies.version(conn, active)
            if policy.version == active:
                _log.info("policy %s is now active (was %s)", active, self.policies.current.version)
                self.policies = PolicySet(
                    current=policy,
                    older={**self.policies.older, self.policies.current.version: self.policies.current},
                )

    def _loads(self, conn: Connection) -> dict[str, int]:
        """Open tickets per person, re-counted at most every few seconds (kept current in between
        by the decisions themselves): assignment balances load, it need not be exact to the ticket."""
        if self._load_cache is None or time.monotonic() - self._load_cache[0] > LOAD_REFRESH_SECONDS:
            self._load_cache = (time.monotonic(), repo.open_tickets_per_person(conn))
        return self._load_cache[1]

    @property
    def policy(self) -> Policy:
        return self.policies.current

    def policy_for(self, conn: Connection, ticket: Ticket | None, event: Event) -> Policy:
        """The version that decides: a timer keeps the version that set it (:func:`timer_version`)."""
        if ticket is None or event.type != EventType.TIMER_FIRED:
            return self.policies.current
        return self.policies.version(conn, timer_version(ticket, event))

    # -- ingest ----------------------------------------------------------------------------

    def ingest(self, batch: Sequence[Event]) -> list[IngestResult]:
        """Store and decide ``batch`` in one transaction; on failure, retry one event at a time."""
        if not batch:
            return []
        try:
            with self.db.write() as conn:
                return self.ingest_in(conn, batch)
        except (IntegrityError, DBAPIError, ValueError) as exc:
            # ValueError: a decision the model refused (a policy or engine bug), isolated like a DB error.
            if len(batch) == 1:
                _log.error("event %s/%s not stored: %r", batch[0].source, batch[0].event_id, exc)
                error = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                return [IngestResult("failed", batch[0].source, batch[0].event_id, None, error=error)]
            _log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc.__class__.__name__)
            return [self.ingest([event])[0] for event in batch]

    def ingest_in(self, conn: Connection, batch: Sequence[Event]) -> list[IngestResult]:
        """The transaction body, for callers that already hold a transaction (timers, replay)."""
        is_pg = self.db.is_postgres
        if is_pg:
            # Take the audit head lock first: every writer then runs one behind the other, so two
            # processes never decide on the same ticket at once.
            audit.lock_head(conn)
        self._follow_active_policy(conn)
        now = self.clock.now()
        known = repo.existing_events(conn, [(e.source, e.event_id) for e in batch])
        named = [(link.system, link.id) for e in batch for link in _links_of(e)]
        links = repo.find_links(conn, named)
        unlinked = [key for key in named if key not in links]
        # What Baton awaits, in one lookup: the writes its events may echo, and the items it is
        # creating (their ids its own choice), whose webhooks may beat the create's answer.
        echo_keys = [key for e in batch if (key := _echo_key(e)) is not None]
        awaited = echoes.take(conn, [*echo_keys, *unlinked], now_ms=to_ms(now))
        creating = echoes.creators(awaited, unlinked, field=CREATED)
        # Tickets an unlinked item claims by a label, with a create in flight (see _ticket_id).
        claims = {c for e in batch if isinstance(c := e.data.get(CLAIMS_TICKET), str)}
        in_flight = repo.creating_issues(conn, claims) if claims else set()
        # Every ticket id an event of the batch can name: a ticket not found under any of them
        # has no stored row, which lets the write skip cancelling timers it cannot have.
        wanted = [self._ticket_id(e, links, creating, in_flight) for e in batch] + list(links.values())
        work = _Batch(tickets=repo.load_tickets(conn, wanted, cached=self._tickets))
        account_ids = {e.fields.account_id for e in batch if e.fields.account_id}
        account_ids |= {t.account_id for t in work.tickets.values() if t.account_id}
        accounts: dict[str, Account | None] = dict.fromkeys(account_ids)
        accounts.update(repo.load_accounts(conn, sorted(account_ids)))
        loads = self._loads(conn)

        results: list[IngestResult] = []
        for event in batch:
            key = (event.source, event.event_id)
            if key in known:
                results.append(IngestResult("duplicate", event.source, event.event_id, known[key]))
                continue
            ticket_id = self._ticket_id(event, links, creating, in_flight)
            ticket = work.tickets.get(ticket_id)
            event = _mark_echo(conn, event, awaited, ticket, self.policies.current)
            if ticket is None:
                if event.type == EventType.TIMER_FIRED:
                    continue  # defensive: a timer for a ticket that does not exist
                work.opened.add(ticket_id)
            account_id = event.fields.account_id or (ticket.account_id if ticket else None)
            if account_id is None and event.fields.requester and "@" in event.fields.requester:
                # E-mail and chat senders map to an account by their address's domain.
                domain = event.fields.requester.rsplit("@", 1)[1].strip().lower().rstrip(">")
                account_id = repo.account_for_domain(conn, domain)
                if account_id is not None:
                    event = event.model_copy(
                        update={"fields": event.fields.model_copy(update={"account_id": account_id})}
                    )
            if account_id and account_id not in accounts:
                accounts[account_id] = None  # remember a miss too: one query per account per batch
                accounts.update(repo.load_accounts(conn, [account_id]))
            context = build_context(
                account=accounts.get(account_id) if account_id else None,
                account_id=account_id,
                loads=loads,
                ticket=ticket,
                event=event,
            )
            policy = self.policy_for(conn, ticket, event)
            decision = decide(ticket, event.model_copy(update={"ticket_id": ticket_id}), context, policy, now)
            _count_load(loads, ticket, decision.ticket)
            known[key] = ticket_id
            work.tickets[ticket_id] = decision.ticket
            for link in _links_of(event):
                if (link.system, link.id) not in links:
                    links[(link.system, link.id)] = ticket_id
                    work.links.append(
                        {
                            "system": link.system,
                            "external_id": link.id,
                            "ticket_id": ticket_id,
                            "url": link.url,
                        }
                    )
            self._collect(work, event, decision, now_ms=to_ms(now))
            results.append(IngestResult("accepted", event.source, event.event_id, ticket_id, decision.id))
        self._write(conn, work, now_ms=to_ms(now))
        written = list(work.tickets.values())
        after_commit(conn, lambda: self._remember(written))
        return results

    @staticmethod
    def _ticket_id(
        event: Event,
        links: dict[tuple[str, str], str],
        creating: dict[tuple[str, str], str],
        in_flight: set[str],
    ) -> str:
        """The event's ticket: the one it names, else the one an item it names is linked to, else
        the one such an item is being created for (its id Baton's choice), else the one its item
        claims by a label while that ticket's create is in flight (its webhook may beat the
        answer; any other time the claim is anyone's label), else a new one."""
        if event.ticket_id:
            return event.ticket_id
        for known in (links, creating):
            for link in _links_of(event):
                found = known.get((link.system, link.id))
                if found:
                    return found
        claim = event.data.get(CLAIMS_TICKET)
        if isinstance(claim, str) and claim in in_flight:
            return claim
        return new_ticket_id(event)

    def _collect(self, work: _Batch, event: Event, decision: Decision, *, now_ms: int) -> None:
        # Each body is serialised once, canonically: the audit chain hashes that text and the JSON
        # columns store it as it is.
        body = JsonText(audit.canonical_json(event.model_dump(mode="json", exclude_none=True)))
        work.event_rows.append(
            {
                "source": event.source,
                "event_id": event.event_id,
                "ticket_id": decision.ticket_id,
                "type": event.type.value,
                "occurred_ms": to_ms(event.occurred_at),
                "received_ms": now_ms,
                "body": body,
            }
        )
        record = decision_record(decision)
        text = JsonText(audit.canonical_json(record))
        work.decisions.append((decision, text))
        at = decision.decided_at
        work.audit.append(
            AuditRecord(
                "event.received",
                decision.ticket_id,
                at,
                {
                    "source": event.source,
                    "event_id": event.event_id,
                    "type": event.type.value,
                    "occurred_at": event.occurred_at.isoformat(),
                    "sha256": hashlib.sha256(body.encode()).hexdigest(),
                },
            )
        )
        work.audit.append(AuditRecord("decision", decision.ticket_id, at, record, text))
        for action in decision.actions:
            work.audit.append(
                AuditRecord(
                    "action.queued",
                    decision.ticket_id,
                    at,
                    {
                        "decision": decision.id,
                        "action": action.name,
                        "key": idempotency_key(decision.ticket_id, decision.id, action.name),
                        "connector": action.connector,
                        "kind": action.kind,
                        "params": action.params,
                    },
                )
            )

    def _write(self, conn: Connection, work: _Batch, *, now_ms: int) -> None:
        if not work.event_rows:
            return
        seqs = conn.execute(
            insert(events).returning(events.c.seq, sort_by_parameter_order=True), work.event_rows
        ).scalars()
        repo.insert_links(conn, work.links)
        repo.upsert_tickets(conn, work.tickets.values())
        decision_rows: list[dict[str, Any]] = []
        outbox_rows: list[dict[str, Any]] = []
        # Net timer effect per (ticket, name), in decision order: a later decision in the same
        # batch may cancel what an earlier one set, or set it again.
        timer_ops: dict[tuple[str, str], dict[str, Any] | None] = {}
        for (decision, record), seq in zip(work.decisions, seqs, strict=True):
            decision_rows.append(
                {
                    "id": decision.id,
                    "ticket_id": decision.ticket_id,
                    "event_seq": seq,
                    "policy_version": decision.policy_version,
                    "decided_ms": to_ms(decision.decided_at),
                    "body": record,
                }
            )
            for action in decision.actions:
                outbox_rows.append(
                    {
                        "idempotency_key": idempotency_key(decision.ticket_id, decision.id, action.name),
                        "ticket_id": decision.ticket_id,
                        "decision_id": decision.id,
                        "action_name": action.name,
                        "connector": action.connector,
                        "kind": action.kind,
                        "params": action.params,
                        "status": _initial_status(action),
                        "rule": action.rule,
                        "author": action.author,
                        "attempts": 0,
                        "available_ms": now_ms,
                        "created_ms": now_ms,
                    }
                )
            for name in decision.timers_cancel:
                timer_ops[(decision.ticket_id, name)] = None
            for timer in decision.timers_set:
                timer_ops[(decision.ticket_id, timer.name)] = {
                    "ticket_id": decision.ticket_id,
                    "name": timer.name,
                    "due_ms": to_ms(timer.due_at),
                    "status": "pending",
                    "data": timer.data,
                }
        conn.execute(insert(decisions), decision_rows)
        if outbox_rows:
            conn.execute(insert(outbox), outbox_rows)
        repo.cancel_timers(conn, [key for key in timer_ops if key[0] not in work.opened])
        new_timers = [row for row in timer_ops.values() if row is not None]
        if new_timers:
            conn.execute(insert(timers), new_timers)
        audit.append(conn, work.audit, is_postgres=self.db.is_postgres)

    # -- timers ----------------------------------------------------------------------------

    def fire_due_timers(self, *, limit: int = 500) -> int:
        """Fire due timers through ``decide``, in the same transaction that marks them fired:
        a timer fires once, and a crash before the commit leaves it pending for the next try."""
        now = self.clock.now()
        if self.db.is_postgres:
            # Look before locking: an idle poll must not queue behind ingest for the chain head.
            with self.db.reader.connect() as conn:
                if not repo.any_due_timer(conn, now_ms=to_ms(now)):
                    return 0
        with self.db.write() as conn:
            if self.db.is_postgres:
                audit.lock_head(conn)
            due = repo.claim_due_timers(conn, now_ms=to_ms(now), limit=limit, is_postgres=self.db.is_postgres)
            if not due:
                return 0
            fired = [
                Event(
                    source=TIMER_SOURCE,
                    event_id=f"timer-{t.id}",
                    type=EventType.TIMER_FIRED,
                    occurred_at=from_ms(t.due_ms),
                    ticket_id=t.ticket_id,
                    data={"name": t.name, **dict(t.data)},
                )
                for t in due
            ]
            self.ingest_in(conn, fired)
            repo.mark_timers_fired(conn, [t.id for t in due], now_ms=to_ms(now))
            return len(due)


def _echo_key(event: Event) -> tuple[str, str] | None:
    """Where what ``event`` may echo is awaited: a field change under its item, a note under the
    comment it reports (``data.comment_id``), which is all a note can echo."""
    if event.external is None:
        return None
    if event.type == EventType.NOTE_ADDED:
        comment = event.data.get("comment_id")
        return (event.external.system, comment) if isinstance(comment, str) and comment else None
    return (event.external.system, event.external.id) if event.type.value in ECHO_TYPES else None


def _mark_echo(
    conn: Connection, event: Event, awaited: echoes.Expected, ticket: Ticket | None, policy: Policy
) -> Event:
    """Set ``data.echo`` when the event is Baton's own write coming back: it reports a value a
    connector wrote to that item (still awaited), and every value it reports that differs from
    the ticket is such a value.

    Webhooks often report the whole item (Zendesk sends every field on each update), so values
    the ticket already holds are not evidence either way; what matters is whether the event would
    change anything that Baton did not itself just write. Matching expectations are consumed.
    Only the engine sets ``echo``: a sender's own key is dropped, so nobody can make Baton ignore
    their events."""
    data = event.data
    if "echo" in data:
        data = {k: v for k, v in data.items() if k != "echo"}
        event = event.model_copy(update={"data": data})
    key = _echo_key(event)
    if key is None or ticket is None:
        return event
    pending = awaited.get(key)
    if event.type == EventType.NOTE_ADDED:
        # Baton's own comment coming back: the very comment id its connector chose and recorded.
        hit = next((row for row, f, v in pending or () if f == "comment" and v == key[1]), None)
        if hit is None or pending is None:
            return event
        echoes.consume(conn, [hit])
        pending[:] = [p for p in pending if p[0] != hit]
        return event.model_copy(update={"data": {**data, "echo": True}})
    values = reported(event)
    if not pending or not values:
        return event
    matched: dict[str, int] = {}
    for name, value in values.items():
        hit = next((row for row, f, v in pending if f == name and v == value), None)
        if hit is not None:
            matched[name] = hit
    if not matched:
        return event
    echoes.consume(conn, list(matched.values()))
    pending[:] = [p for p in pending if p[0] not in matched.values()]
    news = [name for name, value in values.items() if not _holds(ticket, policy, name, value)]
    if any(name not in matched for name in news):
        return event  # news besides Baton's own write
    return event.model_copy(update={"data": {**data, "echo": True}})


def _holds(ticket: Ticket, policy: Policy, name: str, value: str) -> bool:
    """Whether the ticket already has ``value`` for a synced field (an assignee by any of the
    owner's identities)."""
    if name == "assignee":
        person = ticket.owner.person if ticket.owner else None
        member = policy.members.get(person) if person else None
        return value == person or (member is not None and value in member.identities.values())
    current = {
        "team": ticket.team,
        "tier": ticket.tier,
        "priority": ticket.priority.value,
        "status": ticket.stage.value,
    }
    return current.get(name) == value


def _links_of(event: Event) -> tuple[ExternalLink, ...]:
    """Every external id the event names for its ticket: its own, then the ones it refers to."""
    return ((event.external,) if event.external else ()) + event.references


def _initial_status(action: Action) -> str:
    """Shadow actions are recorded, never sent; blocking approvals wait for a person."""
    if action.shadow:
        return "shadow"
    if action.approval == "required":
        return "awaiting_approval"
    return "pending"


def decision_record(decision: Decision) -> dict[str, Any]:
    """The decision as the record keeps it: what was concluded and why, not the whole ticket.
    Values stay dataclasses; the JSON column and the audit chain serialise them."""
    record: dict[str, Any] = {name: getattr(decision, name) for name in _RECORDED}
    record["ticket_version"] = decision.ticket.version
    return record


_RECORDED = tuple(f.name for f in fields(Decision) if f.name != "ticket")


def _count_load(loads: dict[str, int], before: Ticket | None, after: Ticket) -> None:
    """Keep the batch's view of open tickets per person current as decisions move owners."""
    for ticket, step in ((before, -1), (after, 1)):
        if (
            ticket is not None
            and ticket.owner
            and ticket.owner.person
            and ticket.stage not in (Stage.SOLVED, Stage.CLOSED)
        ):
            loads[ticket.owner.person] = max(loads.get(ticket.owner.person, 0) + step, 0)
