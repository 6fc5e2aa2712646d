"""The KPIs of the live store: every ticket's stored state and its decisions, read page by page.

For each page of tickets (in id order) this reads their decisions (with the type and time of the
event each one decided, from ``events``) and their accounts, follows each ticket's decisions with
a :class:`~baton.analytics.track.TicketTrack` and adds its facts to one
:class:`~baton.analytics.kpis.KpiAccumulator` — the same steps replay takes with the simulator's
tickets and decisions, so the two measure the same way. Memory is one page at a time.

The tier order and the business calendars (for "at risk" on SLA windows) come from the active
policy version recorded in the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from baton.analytics.facts import ticket_facts
from baton.analytics.kpis import KpiAccumulator, KpiReport
from baton.analytics.track import TicketTrack, changes_of_record, reasons_of_record
from baton.clock import from_ms
from baton.errors import NotFoundError
from baton.model import Account, Ticket, load
from baton.policy.calendar import BusinessCalendar
from baton.policy.versions import active_version, load_version
from baton.store.schema import accounts, decisions, events, tickets

__all__ = ["LiveKpis", "live_kpis"]

PAGE = 500


@dataclass(frozen=True)
class LiveKpis:
    """The live KPIs with what they were computed from."""

    report: KpiReport
    as_of: datetime
    events: int
    policy_version: str | None

    def document(self) -> dict[str, Any]:
        """The JSON body of ``GET /v1/kpis`` and ``baton kpis``: counts beside the KPIs."""
        return {
            "as_of": self.as_of.isoformat(),
            "events": self.events,
            "kpis": self.report.kpis,
            "policy_version": self.policy_version,
            "tickets": self.report.kpis["tickets"],
        }


_Shape = tuple[tuple[str, ...], tuple[str, ...], dict[str, BusinessCalendar]]
_SHAPES: dict[str, _Shape] = {}


def _active_shape(conn: Connection) -> tuple[str | None, _Shape]:
    """The active version's tiers, SLA policy names and calendars; compiled once per version
    (a version is a content hash, so it never changes under its name)."""
    version = active_version(conn)
    if version is None:
        return None, ((), (), {})
    if version not in _SHAPES:
        try:
            policy = load_version(conn, version)
        except NotFoundError:
            return version, ((), (), {})
        if len(_SHAPES) >= 8:
            _SHAPES.pop(next(iter(_SHAPES)))
        _SHAPES[version] = (policy.tiers, tuple(p.name for p in policy.sla), dict(policy.calendars))
    return version, _SHAPES[version]


def live_kpis(conn: Connection, *, now: datetime) -> LiveKpis:
    """Compute every KPI over the whole store, as of ``now``."""
    version, (tiers, sla_policies, calendars) = _active_shape(conn)
    acc = KpiAccumulator(tiers=tiers, sla_policies=sla_policies)
    after = ""
    while True:
        rows = conn.execute(
            select(tickets.c.id, tickets.c.state)
            .where(tickets.c.id > after)
            .order_by(tickets.c.id)
            .limit(PAGE)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        page = {row.id: load(Ticket, row.state) for row in rows}
        tracks = _tracks(conn, list(page))
        known = _accounts(conn, sorted({t.account_id for t in page.values() if t.account_id}))
        for ticket_id, ticket in page.items():
            acc.add(
                ticket_facts(
                    ticket,
                    tracks.get(ticket_id),
                    as_of=now,
                    tiers=tiers,
                    account=known.get(ticket.account_id) if ticket.account_id else None,
                    calendars=calendars,
                )
            )
    count = int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    return LiveKpis(report=acc.report(), as_of=now, events=count, policy_version=version)


def _tracks(conn: Connection, ids: list[str]) -> dict[str, TicketTrack]:
    """Each ticket's decisions in the order they were made (the order of their events)."""
    query = (
        select(
            decisions.c.ticket_id,
            decisions.c.body["changes"].label("changes"),
            decisions.c.body["reasons"].label("reasons"),
            events.c.type,
            events.c.occurred_ms,
        )
        .join(events, events.c.seq == decisions.c.event_seq)
        .where(decisions.c.ticket_id.in_(ids))
        .order_by(decisions.c.ticket_id, decisions.c.event_seq)
    )
    tracks: dict[str, TicketTrack] = {}
    for row in conn.execute(query):
        track = tracks.get(row.ticket_id)
        if track is None:
            track = tracks[row.ticket_id] = TicketTrack()
        track.observe(
            at=from_ms(int(row.occurred_ms)),
            event_type=row.type,
            changes=changes_of_record({"changes": row.changes}),
            reasons=reasons_of_record({"reasons": row.reasons}),
        )
    return tracks


def _accounts(conn: Connection, ids: list[str]) -> dict[str, Account]:
    if not ids:
        return {}
    rows = conn.execute(select(accounts.c.id, accounts.c.body).where(accounts.c.id.in_(ids)))
    return {row.id: load(Account, row.body) for row in rows}
