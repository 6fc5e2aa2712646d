"""The queries the engine runs, all inside a transaction the caller owns.

Ticket state is stored as JSON next to a few indexed columns (stage, owner, tier...) that
dashboards filter on. Claims of outbox rows are leases (``claimed_until_ms``); a claim that
outlives its lease is taken back by the next worker that looks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from baton.clock import to_ms
from baton.model import Account, Ticket, dump, load
from baton.store.schema import (
    account_domains,
    accounts,
    events,
    external_links,
    outbox,
    sent_log,
    tickets,
    timers,
)

__all__ = [
    "ClaimedAction",
    "ClaimedTimer",
    "claim_due_timers",
    "claim_outbox",
    "creating_issues",
    "existing_events",
    "find_links",
    "group_pairs",
    "load_accounts",
    "load_tickets",
    "upsert_accounts",
    "upsert_tickets",
]

_CHUNK = 500  # bound on IN-lists, well under SQLite's variable limit


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def group_pairs(keys: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for first, second in dict.fromkeys(keys):
        grouped.setdefault(first, []).append(second)
    return grouped


# Lookups by (source, id) pairs are made as ``source = :s AND id IN (...)``, one query per source:
# a row-value ``(a, b) IN (...)`` makes SQLite scan the whole table instead of using the unique
# index, which grew with history (41 ms per 256 keys at 20,000 events, against 1.2 ms this way).


def existing_events(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Which ``(source, event_id)`` pairs are already stored, with the ticket each belongs to."""
    found: dict[tuple[str, str], str] = {}
    for source, ids in group_pairs(keys).items():
        for chunk in _chunks(ids):
            rows = conn.execute(
                select(events.c.event_id, events.c.ticket_id).where(
                    events.c.source == source, events.c.event_id.in_(chunk)
                )
            )
            found.update({(source, r.event_id): r.ticket_id for r in rows})
    return found


def creating_issues(conn: Connection, ticket_ids: Collection[str]) -> set[str]:
    """Those of ``ticket_ids`` with a ``create_issue`` action in flight: being sent now, or sent
    without an answer and waiting to be tried again. Only then can an item's webhook that names
    its ticket by a label (which anyone can add) be Baton's own item arriving before its answer."""
    found: set[str] = set()
    for chunk in _chunks(sorted(ticket_ids)):
        rows = conn.execute(
            select(outbox.c.ticket_id).where(
                outbox.c.ticket_id.in_(chunk),
                outbox.c.kind == "create_issue",
                or_(outbox.c.status == "claimed", and_(outbox.c.status == "pending", outbox.c.attempts > 0)),
            )
        )
        found.update(r.ticket_id for r in rows)
    return found


def find_links(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Canonical ticket ids for ``(system, external_id)`` pairs that are known."""
    found: dict[tuple[str, str], str] = {}
    for system, ids in group_pairs(keys).items():
        for chunk in _chunks(ids):
            rows = conn.execute(
                select(external_links.c.external_id, external_links.c.ticket_id).where(
                    external_links.c.system == system, external_links.c.external_id.in_(chunk)
                )
            )
            found.update({(system, r.external_id): r.ticket_id for r in rows})
    return found


def explain_lookup(conn: Connection, source: str, event_id: str) -> str:
    """SQLite's plan for the dedup lookup (tests check it uses the index)."""
    query = select(events.c.ticket_id).where(events.c.source == source, events.c.event_id.in_([event_id]))
    compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
    return " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))


def load_tickets(
    conn: Connection, ids: Sequence[str], *, cached: Mapping[str, Ticket] | None = None
) -> dict[str, Ticket]:
    """The stored tickets among ``ids``. With ``cached`` (tickets this process wrote and saw
    committed), a ticket whose stored version is the cached one's is taken from there instead of
    being read and validated again: every write of a ticket raises its version, so an equal version
    is the same state."""
    found: dict[str, Ticket] = {}
    unique = list(dict.fromkeys(ids))
    if cached:
        stale = []
        for chunk in _chunks(unique):
            for row in conn.execute(select(tickets.c.id, tickets.c.version).where(tickets.c.id.in_(chunk))):
                ticket = cached.get(row.id)
                if ticket is not None and ticket.version == row.version:
                    found[row.id] = ticket
                else:
                    stale.append(row.id)
        unique = stale
    for chunk in _chunks(unique):
        for row in conn.execute(select(tickets.c.id, tickets.c.state).where(tickets.c.id.in_(chunk))):
            found[row.id] = load(Ticket, row.state)
    return found


def _ticket_row(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "version": ticket.version,
        "stage": ticket.stage.value,
        "priority": ticket.priority.value,
        "tier": ticket.tier,
        "queue": ticket.queue,
        "owner_role": ticket.owner.role if ticket.owner else None,
        "owner_person": ticket.owner.person if ticket.owner else None,
        "account_id": ticket.account_id,
        "subject": ticket.subject[:1_000],
        "created_ms": to_ms(ticket.created_at),
        "updated_ms": to_ms(ticket.updated_at),
        "state": ticket,  # the JSON column serialises the dataclass (orjson)
    }


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], keys: Sequence[str]) -> None:
    if not rows:
        return
    dialect = conn.dialect.name
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in rows[0] if c not in keys}
    )
    conn.execute(stmt, rows)


def upsert_tickets(conn: Connection, new: Iterable[Ticket]) -> None:
    _upsert(conn, tickets, [_ticket_row(t) for t in new], ["id"])


def insert_links(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        dialect = conn.dialect.name
        stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(
            external_links
        ).on_conflict_do_nothing()
        conn.execute(stmt, rows)


def open_tickets_per_person(conn: Connection) -> dict[str, int]:
    """Open tickets per owner: the load that assignment balances."""
    rows = conn.execute(
        select(tickets.c.owner_person, func.count().label("n"))
        .where(tickets.c.stage.not_in(("solved", "closed")), tickets.c.owner_person.is_not(None))
        .group_by(tickets.c.owner_person)
    )
    return {r.owner_person: int(r.n) for r in rows}


def load_accounts(conn: Connection, ids: Sequence[str]) -> dict[str, Account]:
    found: dict[str, Account] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        for row in conn.execute(select(accounts.c.id, accounts.c.body).where(accounts.c.id.in_(chunk))):
            found[row.id] = load(Account, row.body)
    return found


def upsert_accounts(conn: Connection, items: Iterable[Account]) -> int:
    listed = list(items)
    rows = [{"id": a.id, "body": dump(a)} for a in listed]
    for chunk in _chunks(rows):
        _upsert(conn, accounts, list(chunk), ["id"])
    domains = {d.strip().lower(): a.id for a in listed for d in a.domains if d.strip()}
    domain_rows = [{"domain": d, "account_id": a} for d, a in domains.items()]
    for chunk in _chunks(domain_rows):
        _upsert(conn, account_domains, list(chunk), ["domain"])
    return len(rows)


def account_for_domain(conn: Connection, domain: str) -> str | None:
    row = conn.execute(select(account_domains.c.account_id).where(account_domains.c.domain == domain)).first()
    return None if row is None else str(row.account_id)


def retire_timers(conn: Connection, ticket_ids: Sequence[str], *, before_ms: int) -> None:
    """Cancel the pending timers of these tickets that fell due before ``before_ms``."""
    for chunk in _chunks(list(ticket_ids)):
        conn.execute(
            update(timers)
            .where(timers.c.ticket_id.in_(chunk), timers.c.status == "pending", timers.c.due_ms < before_ms)
            .values(status="cancelled")
        )


_CANCEL = (
    update(timers)
    .where(
        timers.c.ticket_id == bindparam("t_id"),
        timers.c.name == bindparam("t_name"),
        timers.c.status == "pending",
    )
    .values(status="cancelled")
)


def cancel_timers(conn: Connection, pairs: Sequence[tuple[str, str]]) -> None:
    """Cancel pending timers by (ticket, name); one prepared statement, many parameter sets."""
    unique = list(dict.fromkeys(pairs))
    if unique:
        conn.execute(_CANCEL, [{"t_id": t, "t_name": n} for t, n in unique])


@dataclass(frozen=True)
class ClaimedTimer:
    id: int
    ticket_id: str
    name: str
    due_ms: int
    data: Mapping[str, Any]


def any_due_timer(conn: Connection, *, now_ms: int) -> bool:
    query = select(timers.c.id).where(timers.c.status == "pending", timers.c.due_ms <= now_ms).limit(1)
    return conn.execute(query).first() is not None


def claim_due_timers(conn: Connection, *, now_ms: int, limit: int, is_postgres: bool) -> list[ClaimedTimer]:
    """Due pending timers, oldest first, locked for this transaction (others skip them)."""
    query = (
        select(timers.c.id, timers.c.ticket_id, timers.c.name, timers.c.due_ms, timers.c.data)
        .where(timers.c.status == "pending", timers.c.due_ms <= now_ms)
        .order_by(timers.c.due_ms, timers.c.id)
        .limit(limit)
    )
    if is_postgres:
        query = query.with_for_update(skip_locked=True)
    return [ClaimedTimer(r.id, r.ticket_id, r.name, r.due_ms, r.data) for r in conn.execute(query)]


def mark_timers_fired(conn: Connection, ids: Sequence[int], *, now_ms: int) -> None:
    for chunk in _chunks(list(ids)):
        conn.execute(update(timers).where(timers.c.id.in_(chunk)).values(status="fired", fired_ms=now_ms))


@dataclass(frozen=True)
class ClaimedAction:
    id: int
    idempotency_key: str
    ticket_id: str
    decision_id: str
    action_name: str
    connector: str
    kind: str
    params: Mapping[str, Any]
    attempts: int  # this claim included: more than 1 means an earlier claim may have sent it
    failures: int = 0  # failed sends recorded so far


def claim_outbox(
    conn: Connection,
    *,
    worker: str,
    now_ms: int,
    lease_ms: int,
    limit: int,
    is_postgres: bool,
    skip_connectors: Collection[str] = (),
) -> list[ClaimedAction]:
    """Claim up to ``limit`` deliverable actions under a lease.

    Deliverable: pending and due, or claimed by a worker whose lease ran out. Only the oldest
    unfinished action of each ticket qualifies, which keeps one ticket's actions in order across
    any number of workers; other tickets are never held up by it.
    """
    earlier = aliased(outbox)
    claimable = or_(
        and_(outbox.c.status == "pending", outbox.c.available_ms <= now_ms),
        and_(outbox.c.status == "claimed", outbox.c.claimed_until_ms < now_ms),
    )
    blocked = exists().where(
        earlier.c.ticket_id == outbox.c.ticket_id,
        earlier.c.id < outbox.c.id,
        earlier.c.status.in_(("pending", "claimed")),
    )
    query = select(outbox.c.id).where(claimable, ~blocked)
    if skip_connectors:  # circuits that are open: their actions wait where they are
        query = query.where(outbox.c.connector.not_in(sorted(skip_connectors)))
    query = query.order_by(outbox.c.id).limit(limit)
    if is_postgres:
        query = query.with_for_update(skip_locked=True)
    ids = [r.id for r in conn.execute(query)]
    if not ids:
        return []
    rows = conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(
            status="claimed",
            claimed_by=worker,
            claimed_until_ms=now_ms + lease_ms,
            attempts=outbox.c.attempts + 1,
        )
        .returning(
            outbox.c.id,
            outbox.c.idempotency_key,
            outbox.c.ticket_id,
            outbox.c.decision_id,
            outbox.c.action_name,
            outbox.c.connector,
            outbox.c.kind,
            outbox.c.params,
            outbox.c.attempts,
            outbox.c.failures,
        )
    )
    claimed = [ClaimedAction(*r) for r in rows]
    return sorted(claimed, key=lambda a: a.id)


def release_claims(conn: Connection, ids: Sequence[int], *, worker: str) -> None:
    """Hand claimed rows back untouched (the attempt is not counted)."""
    for chunk in _chunks(list(ids)):
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(chunk), outbox.c.claimed_by == worker, outbox.c.status == "claimed")
            .values(status="pending", claimed_by=None, claimed_until_ms=None, attempts=outbox.c.attempts - 1)
        )


def already_sent(conn: Connection, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(list(keys)):
        found.update(
            conn.scalars(select(sent_log.c.idempotency_key).where(sent_log.c.idempotency_key.in_(chunk)))
        )
    return found
