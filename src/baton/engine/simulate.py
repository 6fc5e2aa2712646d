"""An in-memory engine on simulated time: the same ``decide`` as the live service, with tickets,
links and timers held in dictionaries and a clock that jumps from one due instant to the next.

Used by ``baton policy test`` and ``baton policy explain``, and by replay. Timers fire in due order
before any event that comes after them, exactly as the durable worker would fire them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from pydantic import JsonValue

from baton.clock import time_key
from baton.engine.decide import decide, decide_verbose, new_ticket_id, timer_version
from baton.enrich.signals import build_context
from baton.model import Account, Decision, Event, EventType, Stage, Ticket
from baton.policy.model import Policy

__all__ = ["Simulator"]

TIMER_SOURCE = "baton.timer"


# A pending timer in the heap: (due as microseconds since the epoch, serial, due, ticket id, timer
# name, timer data). Plain tuples of ints compare in C, several times faster than aware datetimes,
# and in the same order for the UTC and fixed-offset instants events and calendars carry (two
# datetimes sharing a zone with a repeated hour compare by wall clock; their keys, by the instant).
# The serial is unique, so the comparison never reaches the fields after it.
_Due = tuple[int, int, datetime, str, str, dict[str, object]]


class Simulator:
    """Feed it events in time order; it fires timers in between and keeps every decision."""

    def __init__(
        self,
        policy: Policy,
        *,
        accounts: dict[str, Account] | None = None,
        policy_for: Callable[[str | None], Policy] | None = None,
        on_decision: Callable[[Decision], None] | None = None,
        keep_decisions: bool = True,
        verbose: bool = False,
        signals: Mapping[str, JsonValue] | None = None,
    ) -> None:
        """``signals`` are given for every ticket, over the derived ones (a policy test case's)."""
        self.policy = policy
        self.signals = signals
        self.accounts = accounts or {}
        self.policy_for = policy_for
        self.on_decision = on_decision
        self.keep_decisions = keep_decisions
        self.decide = decide_verbose if verbose else decide
        self.tickets: dict[str, Ticket] = {}
        self.links: dict[tuple[str, str], str] = {}
        self.decisions: list[Decision] = []
        self.loads: dict[str, int] = {}
        self.now: datetime | None = None
        self._heap: list[_Due] = []
        self._live: dict[tuple[str, str], int] = {}  # (ticket, timer name) -> serial of the live one
        self._serial = 0
        self.timers_fired = 0

    def ticket_id_for(self, event: Event) -> str:
        if event.ticket_id:
            return event.ticket_id
        if event.external is not None:
            found = self.links.get((event.external.system, event.external.id))
            if found:
                return found
        return new_ticket_id(event)

    def ingest(self, event: Event) -> Decision:
        self.advance(event.occurred_at)
        return self._apply(event, now=max(event.occurred_at, self.now or event.occurred_at))

    def ingest_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.ingest(event)

    def advance(self, to: datetime) -> int:
        """Fire every live timer due at or before ``to``, in due order; return how many fired."""
        fired = 0
        heap, live = self._heap, self._live
        limit = time_key(to) if heap else 0
        while heap and heap[0][0] <= limit:
            _, serial, due, ticket_id, name, data = heapq.heappop(heap)
            if live.get((ticket_id, name)) != serial:
                continue  # cancelled or moved
            del live[(ticket_id, name)]
            event = Event(
                source=TIMER_SOURCE,
                event_id=f"timer-{serial}",
                type=EventType.TIMER_FIRED,
                occurred_at=due,
                ticket_id=ticket_id,
                data={"name": name, **data},
            )
            self._apply(event, now=due)
            fired += 1
        self.timers_fired += fired
        if self.now is None or to > self.now:
            self.now = to
        return fired

    def _apply(self, event: Event, *, now: datetime) -> Decision:
        ticket_id = self.ticket_id_for(event)
        ticket = self.tickets.get(ticket_id)
        account_id = event.fields.account_id or (ticket.account_id if ticket else None)
        context = build_context(
            account=self.accounts.get(account_id) if account_id else None,
            account_id=account_id,
            loads=self.loads,
            ticket=ticket,
            event=event,
            given=self.signals,
        )
        policy = self.policy
        if self.policy_for is not None and ticket is not None and event.type == EventType.TIMER_FIRED:
            policy = self.policy_for(timer_version(ticket, event))
        # The event goes to decide as it came: a known ticket is the one decide is given, and a
        # new one is opened under ``event.ticket_id or new_ticket_id(event)``, which is the id
        # ``ticket_id_for`` found (a link would have named a known ticket).
        decision = self.decide(ticket, event, context, policy, now)
        self._count_load(ticket, decision.ticket)
        self.tickets[ticket_id] = decision.ticket
        if event.external is not None:
            self.links.setdefault((event.external.system, event.external.id), ticket_id)
        for name in decision.timers_cancel:
            self._live.pop((ticket_id, name), None)
        for timer in decision.timers_set:
            self._serial += 1
            self._live[(ticket_id, timer.name)] = self._serial
            due: _Due = (
                time_key(timer.due_at),
                self._serial,
                timer.due_at,
                ticket_id,
                timer.name,
                dict(timer.data),
            )
            heapq.heappush(self._heap, due)
        if self.keep_decisions:
            self.decisions.append(decision)
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision

    def _count_load(self, before: Ticket | None, after: Ticket) -> None:
        for ticket, step in ((before, -1), (after, 1)):
            if (
                ticket is not None
                and ticket.owner
                and ticket.owner.person
                and ticket.stage not in (Stage.SOLVED, Stage.CLOSED)
            ):
                self.loads[ticket.owner.person] = max(self.loads.get(ticket.owner.person, 0) + step, 0)

    def pending_timers(self) -> int:
        return len(self._live)
