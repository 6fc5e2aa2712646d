"""Facts about a mapped history: how many tickets and events, handoffs, tier-ups and bounces.

Computed from the event stream alone (parse and map, no engine), with the engine's own rules for
what counts as a handoff, so the figures predict what an import will record:

- a **handover** is an event that names a team other than the ticket's current one (a row that
  names no team keeps the current team, and a ticket's first team is not a handover);
- a **handoff** is a handover or a tier change: what ``decide`` records as an ``external.<source>``
  escalation record (with a routing policy that sets no team of its own);
- a **tier-up** is a handoff to a later tier of ``tiers`` (lowest first): a *hierarchical* record;
- a **bounce** is a ticket with three consecutive events whose team goes A → B → A (the ticket
  returns at once from the team it was handed to); a **return** is a ticket that comes back to a
  team it had left at any later point (the broader reading).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from baton.model import EventType
from baton.signals.history import HistoryReader, MappedRow

__all__ = ["FactCounter", "HistoryFacts", "count_facts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryFacts:
    rows: int
    errors: int
    tickets: int
    events: int
    teams: int
    handovers: int
    handoffs: int
    tier_ups: int
    tickets_tier_up: int
    bounces: int
    returns: int
    reopens: int
    reordered: int
    event_types: dict[str, int]
    final_priority: dict[str, int]

    def table(self) -> list[tuple[str, str]]:
        """The facts as (label, value) rows, for printing."""
        rows = [
            ("rows read", self.rows),
            ("rows with errors", self.errors),
            ("tickets", self.tickets),
            ("events", self.events),
            ("teams", self.teams),
            ("team handovers", self.handovers),
            ("handoffs (team or tier)", self.handoffs),
            ("tier-ups", self.tier_ups),
            ("tickets with a tier-up", self.tickets_tier_up),
            ("tickets bouncing A→B→A", self.bounces),
            ("tickets returning to a team", self.returns),
            ("reopens", self.reopens),
            ("tickets put in time order", self.reordered),
        ]
        out = [(label, f"{value:,}") for label, value in rows]
        out += [(f"final priority {k}", f"{v:,}") for k, v in sorted(self.final_priority.items())]
        out += [(f"events {k}", f"{v:,}") for k, v in sorted(self.event_types.items())]
        return out


@dataclass(slots=True)
class _Ticket:
    team: str | None = None
    before: str | None = None  # the team before the current one, while the last event moved it
    tier: str | None = None
    priority: str | None = None
    left: set[str] = field(default_factory=set)
    tier_up: bool = False
    bounced: bool = False
    returned: bool = False


class FactCounter:
    """Feed it mapped rows in stream order; :meth:`facts` summarises them."""

    def __init__(self, *, tiers: Sequence[str] = ()) -> None:
        self.rank = {tier: i for i, tier in enumerate(tiers)}
        self.tickets: dict[str, _Ticket] = {}
        self.rows = self.errors = self.events = 0
        self.handovers = self.handoffs = self.tier_ups = self.reopens = 0
        self.teams: set[str] = set()
        self.types: Counter[str] = Counter()

    def add(self, item: MappedRow) -> None:
        self.rows += 1
        event = item.event
        if event is None:
            self.errors += 1
            return
        self.events += 1
        self.types[event.type.value] += 1
        if event.type == EventType.REOPENED:
            self.reopens += 1
        key = event.external.id if event.external else event.event_id
        t = self.tickets.get(key)
        f = event.fields
        if f.team is not None:
            self.teams.add(f.team)
        if t is None:
            self.tickets[key] = _Ticket(team=f.team, tier=f.tier, priority=f.priority)
            return
        if f.priority is not None:
            t.priority = f.priority
        team = f.team if f.team is not None else t.team
        tier = f.tier if f.tier is not None else t.tier
        handover = t.team is not None and team != t.team
        tier_moved = t.tier is not None and tier != t.tier
        if handover or tier_moved:
            self.handoffs += 1
        if tier_moved and tier in self.rank and t.tier in self.rank and self.rank[tier] > self.rank[t.tier]:
            self.tier_ups += 1
            t.tier_up = True
        if handover and team is not None and t.team is not None:
            self.handovers += 1
            t.bounced = t.bounced or team == t.before
            t.returned = t.returned or team in t.left
            t.left.add(t.team)
            t.before = t.team
        elif team is not None:
            t.before = None  # the team stayed for one more event: the next move is no bounce
        t.team, t.tier = team, tier

    def facts(self, *, reordered: int = 0) -> HistoryFacts:
        tickets = self.tickets.values()
        return HistoryFacts(
            rows=self.rows,
            errors=self.errors,
            tickets=len(self.tickets),
            events=self.events,
            teams=len(self.teams),
            handovers=self.handovers,
            handoffs=self.handoffs,
            tier_ups=self.tier_ups,
            tickets_tier_up=sum(1 for t in tickets if t.tier_up),
            bounces=sum(1 for t in tickets if t.bounced),
            returns=sum(1 for t in tickets if t.returned),
            reopens=self.reopens,
            reordered=reordered,
            event_types=dict(self.types),
            final_priority=dict(Counter(t.priority for t in tickets if t.priority is not None)),
        )


def count_facts(
    reader: HistoryReader | Iterable[MappedRow], *, tiers: Sequence[str] | None = None
) -> HistoryFacts:
    """Read all of ``reader`` and return its facts. ``tiers`` defaults to the mapping's tier order."""
    if tiers is None:
        tiers = reader.mapping.tiers if isinstance(reader, HistoryReader) else ()
    counter = FactCounter(tiers=tiers)
    for item in reader:
        counter.add(item)
    if isinstance(reader, HistoryReader):
        return counter.facts(reordered=reader.reordered)
    return counter.facts()
