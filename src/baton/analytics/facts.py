"""One ticket's KPI facts: its final state and its :class:`~baton.analytics.track.TicketTrack`,
read at one instant (``as_of``). Every KPI is an aggregate of these, so the live store and replay
measure exactly the same things. The definitions are in ``docs/kpis.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from baton.analytics.track import NO_HOME, TicketTrack
from baton.model import Account, EscalationRecord, SlaClock, Stage, Ticket
from baton.policy.calendar import BusinessCalendar
from baton.policy.sla import used_fraction

__all__ = [
    "AT_RISK",
    "CUSTOMER_CLOCKS",
    "MRR_BANDS",
    "Outcome",
    "SlaOutcome",
    "TicketFacts",
    "clock_outcome",
    "mrr_band",
    "ticket_facts",
]

SlaOutcome = Literal["met", "breached", "pending"]
AT_RISK = 0.8  # share of an SLA window used from which an open ticket is at risk
# The clocks the customer was promised; `internal_resolution` (a fresh target after a handoff) is
# the team's own and is reported on its own, not in a ticket's SLA outcome.
CUSTOMER_CLOCKS = frozenset({"first_response", "next_response", "resolution"})
# Lower bounds of monthly recurring revenue, highest first.
MRR_BANDS: tuple[tuple[float, str], ...] = ((20_000, "20k+"), (5_000, "5k-20k"), (1_000, "1k-5k"), (0, "<1k"))
_HOUR = timedelta(hours=1)
_CLOSED = (Stage.SOLVED, Stage.CLOSED)
_AUTOMATED = ("escalation.", "sla.")
_BY_HAND = ("override.", "external.")


def mrr_band(account: Account | None) -> str:
    if account is None or account.mrr is None:
        return "unknown"
    return next((name for floor, name in MRR_BANDS if account.mrr >= floor), "unknown")


def clock_outcome(
    clock: SlaClock, as_of: datetime, calendar: BusinessCalendar | None
) -> tuple[SlaOutcome, float]:
    """``met``/``breached`` for a stopped clock, ``breached``/``pending`` for one still running or
    paused, with the share of its window used at ``as_of``. Without its calendar, wall time."""
    if clock.stopped_at is not None:
        used = clock.consumed_ms / clock.target_ms if clock.target_ms else 1.0
        return ("breached" if clock.breached or clock.consumed_ms > clock.target_ms else "met"), used
    if calendar is not None:
        used = used_fraction(clock, calendar, as_of)
    else:
        running = clock.running_since
        extra = max((as_of - running) // timedelta(milliseconds=1), 0) if running is not None else 0
        used = (clock.consumed_ms + extra) / clock.target_ms if clock.target_ms else 1.0
    return ("breached" if clock.breached or used > 1 else "pending"), used


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a policy made of a ticket, for comparing two policies ticket by ticket."""

    route: str
    owner: str
    tier: str
    escalation: str
    sla: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketFacts:
    """Everything the KPIs read about one ticket (hours are wall-clock hours)."""

    ticket_id: str
    external_id: str | None
    open: bool
    priority: str
    first_tier: str | None
    sla_policy: str | None
    mrr_band: str
    account_id: str | None
    arr: float | None
    resolution_hours: float | None
    first_resolution_hours: float | None
    active_resolution_hours: float | None
    first_response_hours: float | None
    first_action_hours: float | None
    ever_resolved: bool
    handoffs: int
    assists: int
    escalations: int
    escalated_from: frozenset[str]
    tier_ups: int
    tiers_visited: frozenset[str]
    automated_handoffs: int
    rolled_back: int
    bounced: bool
    returned: bool
    reopens: int
    customer_replies: int
    sla: SlaOutcome | None
    clocks: tuple[tuple[str, SlaOutcome], ...]
    at_risk: bool
    recorded_sla: bool | None
    enrichment_gap: str | None
    observed: bool
    outcome: Outcome

    @property
    def fcr(self) -> bool:
        """Resolved at first contact: resolved, never reopened, never handed off, escalated or
        consulted on, and the customer never had to write again."""
        return (
            self.resolution_hours is not None
            and self.reopens == 0
            and self.handoffs == 0
            and self.escalations == 0
            and self.assists == 0
            and self.customer_replies == 0
        )


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start) / _HOUR, 0.0)


def _rank(tiers: Sequence[str]) -> Callable[[str | None], int | None]:
    ranks = {t: i for i, t in enumerate(tiers)}
    return lambda tier: ranks.get(tier) if tier is not None else None


def _rising(record: EscalationRecord, rank: Callable[[str | None], int | None]) -> bool:
    low, high = rank(record.from_tier), rank(record.to_tier)
    return low is not None and high is not None and high > low


def _rolled_back(records: tuple[EscalationRecord, ...], i: int) -> bool:
    """A later manual override or external move takes the ticket back to the home (owner role) or
    the tier it had before automated record ``i`` moved it."""
    first = records[i]
    back_role = first.from_owner.role if first.from_owner else None
    back_tier = first.from_tier if first.from_tier != first.to_tier else None
    for later in records[i + 1 :]:
        if not later.rule.startswith(_BY_HAND):
            continue
        role = later.to_owner.role if later.to_owner else None
        if (back_role is not None and back_role != NO_HOME and role == back_role) or (
            back_tier is not None and later.to_tier == back_tier
        ):
            return True
    return False


def ticket_facts(
    ticket: Ticket,
    track: TicketTrack | None,
    *,
    as_of: datetime,
    tiers: Sequence[str],
    account: Account | None,
    calendars: Mapping[str, BusinessCalendar],
) -> TicketFacts:
    """The facts of ``ticket`` at ``as_of``; ``track`` is None when its decisions are not at hand
    (then the facts that need them are unknown, not zero)."""
    track = track or TicketTrack()
    rank = _rank(tiers)
    records = ticket.escalations
    resolved = ticket.stage in _CLOSED and ticket.solved_at is not None
    handoffs = assists = escalations = tier_ups = automated = rolled_back = 0
    escalated_from: set[str] = set()
    visited = {t for t in (track.first_tier, ticket.tier) if t}
    applied: list[str] = []
    for i, record in enumerate(records):
        visited.update(t for t in (record.from_tier, record.to_tier) if t)
        rising = _rising(record, rank)
        tier_ups += rising
        if record.mode == "assist":
            assists += 1
        else:
            handoffs += 1
        if record.rule.startswith(_AUTOMATED) or rising:
            escalations += 1
            if record.from_tier:
                escalated_from.add(record.from_tier)
        if record.rule.startswith(_AUTOMATED):
            applied.append(record.rule)
            if record.mode == "handoff":
                automated += 1
                rolled_back += _rolled_back(records, i)

    clocks: list[tuple[str, SlaOutcome]] = []
    at_risk = False
    for clock in ticket.sla:
        state, used = clock_outcome(clock, as_of, calendars.get(clock.calendar))
        clocks.append((clock.name, state))
        if clock.name in CUSTOMER_CLOCKS and state == "pending" and used >= AT_RISK:
            at_risk = True
    for name in sorted(track.breaches - {c for c, _ in clocks}):
        clocks.append((name, "breached"))  # a window replaced since (a reopen) but breached before
    customer = [
        "breached" if name in track.breaches else state for name, state in clocks if name in CUSTOMER_CLOCKS
    ]
    sla: SlaOutcome | None = None
    if "breached" in customer:
        sla = "breached"
    elif "pending" in customer:
        sla = "pending"
    elif customer:
        sla = "met"

    active: float | None = None
    if resolved and ticket.solved_at is not None and track.decisions:
        paused = timedelta(milliseconds=track.waiting_until(ticket.solved_at) + track.dormant_ms)
        active = max((ticket.solved_at - ticket.created_at - paused) / _HOUR, 0.0)
    owner = ticket.owner
    return TicketFacts(
        ticket_id=ticket.id,
        external_id=ticket.external_links[0].id if ticket.external_links else None,
        open=ticket.stage not in _CLOSED,
        priority=ticket.priority.value,
        first_tier=track.first_tier if track.decisions else ticket.tier,
        sla_policy=ticket.sla_policy,
        mrr_band=mrr_band(account),
        account_id=ticket.account_id,
        arr=account.arr if account is not None else None,
        resolution_hours=_hours(ticket.created_at, ticket.solved_at) if resolved else None,
        first_resolution_hours=_hours(ticket.created_at, track.first_solved_at),
        active_resolution_hours=active,
        first_response_hours=_hours(ticket.created_at, ticket.first_response_at),
        first_action_hours=_hours(ticket.created_at, track.first_action_at),
        ever_resolved=track.first_solved_at is not None or resolved,
        handoffs=handoffs,
        assists=assists,
        escalations=escalations,
        escalated_from=frozenset(escalated_from),
        tier_ups=tier_ups,
        tiers_visited=frozenset(visited),
        automated_handoffs=automated,
        rolled_back=rolled_back,
        bounced=track.bounced,
        returned=track.returned,
        reopens=ticket.reopen_count,
        customer_replies=ticket.customer_replies,
        sla=sla,
        clocks=tuple(sorted(clocks)),
        at_risk=at_risk and ticket.stage not in _CLOSED,
        recorded_sla=track.recorded_sla,
        enrichment_gap=track.enrichment_gap,
        observed=track.decisions > 0,
        outcome=Outcome(
            route=",".join(track.route) or "-",
            owner=f"{owner.role}/{owner.person or '-'}" if owner else "-",
            tier=ticket.tier or "-",
            escalation=",".join(applied) or "-",
            sla=sla or "-",
        ),
    )
