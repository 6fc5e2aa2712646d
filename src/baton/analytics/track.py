"""Following a ticket through its decisions: what its final state does not keep.

A ticket's final state holds its escalation records, SLA clocks, reopen count and first response,
but not *when* it was first solved, how long it waited on the customer, when somebody first acted
on it, which routing rule opened it, or whether it was handed straight back. :class:`TicketTrack`
gathers exactly those facts from the ticket's decisions, in order, and nothing else.

It reads each decision as the record keeps it — the tracked field changes (``field``, ``after``)
and the reasons (``rule``, ``matched``) — so the live store (rows of ``decisions`` joined to
``events``) and replay (the :class:`~baton.model.Decision` values of the simulator) feed it the
same data and get the same answer. See ``docs/kpis.md`` for the definitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from baton.model import Decision, EventType

__all__ = [
    "ACTION_EVENTS",
    "NO_HOME",
    "TicketTrack",
    "breached_clock",
    "changes_of_decision",
    "changes_of_record",
    "reasons_of_decision",
    "reasons_of_record",
]

_CLOSED = frozenset({"solved", "closed"})
_MS = timedelta(milliseconds=1)
# What a person (or a source system on their behalf) does to a ticket. A customer writing again,
# a ticket being reopened, alerts and SLA timers are not actions on it.
ACTION_EVENTS = frozenset(
    {
        EventType.AGENT_REPLIED.value,
        EventType.NOTE_ADDED.value,
        EventType.STATUS_CHANGED.value,
        EventType.PRIORITY_CHANGED.value,
        EventType.ASSIGNED.value,
        EventType.SOLVED.value,
        EventType.CLOSED.value,
        EventType.TICKET_UPDATED.value,
        EventType.OVERRIDE.value,
    }
)
_TIMER = EventType.TIMER_FIRED.value
# An owner role that is no home: the engine's placeholder before anybody owns the ticket.
NO_HOME = "unassigned"
_CUSTOMER_CLOCKS = ("first_response", "next_response", "resolution", "internal_resolution")


def breached_clock(rule: str) -> str | None:
    """The clock a matched ``sla.<clock>.<pct>`` reason breached (``pct`` >= 100), else None."""
    if not rule.startswith("sla."):
        return None
    parts = rule.split(".")
    if len(parts) != 3 or parts[1] not in _CUSTOMER_CLOCKS or not parts[2].isdigit():
        return None
    return parts[1] if int(parts[2]) >= 100 else None


@dataclass(slots=True)
class TicketTrack:
    """Facts about one ticket gathered from its decisions, oldest first (see :meth:`observe`)."""

    decisions: int = 0
    first_tier: str | None = None
    route: tuple[str, ...] = ()
    enrichment_gap: str | None = None
    stage: str | None = None
    stage_since: datetime | None = None
    first_solved_at: datetime | None = None
    first_action_at: datetime | None = None
    waiting_ms: int = 0  # in `pending`: waiting on the customer
    dormant_ms: int = 0  # solved, before a reopen
    home: str | None = None
    previous_home: str | None = None  # the home before the current one, while the last step moved it
    left: set[str] = field(default_factory=set)
    bounced: bool = False
    returned: bool = False
    breaches: frozenset[str] = frozenset()
    recorded_sla: bool | None = None

    def observe(
        self,
        *,
        at: datetime,
        event_type: str,
        changes: Iterable[tuple[str, Any]],
        reasons: Iterable[tuple[str, bool]],
        recorded_sla: bool | None = None,
    ) -> None:
        """Take one decision: when its event happened, its type, its field changes as
        ``(field, after)`` and its reasons as ``(rule, matched)``."""
        stage: str | None = None
        home: str | None = None
        tier: str | None = None
        owner_changed = tier_changed = False
        for name, after in changes:
            if name == "stage":
                stage = after
            elif name == "owner":
                owner_changed = True
                home = after.get("role") if isinstance(after, dict) else None
            elif name == "tier":
                tier_changed, tier = True, after
        for rule, matched in reasons:
            if not matched:
                if self.decisions == 0 and rule.startswith("enrichment."):
                    self.enrichment_gap = rule.removeprefix("enrichment.")
                continue
            if self.decisions == 0 and rule.startswith("routing."):
                self.route = (*self.route, rule.removeprefix("routing."))
            elif rule.startswith("sla."):  # breached_clock's own first test, without the call
                clock = breached_clock(rule)
                if clock is not None and clock not in self.breaches:
                    self.breaches = self.breaches | {clock}
        if recorded_sla is not None:
            self.recorded_sla = recorded_sla
        if self.decisions == 0:
            self.decisions = 1
            self.first_tier = tier
            self.stage, self.stage_since = stage, at
            if stage in _CLOSED:
                self.first_solved_at = at  # the source reported it solved when it arrived
            self.home = home if home != NO_HOME else None
            return
        self.decisions += 1
        moved_stage = False
        if stage is not None and stage != self.stage:
            moved_stage = True
            self._stage(stage, at)
        if event_type == _TIMER and not (owner_changed or tier_changed or moved_stage):
            return  # a timer that only warned: nothing happened to the ticket
        if self.first_action_at is None and (event_type in ACTION_EVENTS or event_type == _TIMER):
            self.first_action_at = at  # a timer gets here only when it moved the ticket (a tier-up)
        self._home(home if owner_changed else self.home)

    def _stage(self, stage: str, at: datetime) -> None:
        before, since = self.stage, self.stage_since or at
        # A timer that was already overdue when it was set fires stamped with its due instant,
        # which can be before the step that set it: an interval never counts as negative.
        lasted = max((at - since) // _MS, 0)
        if before == "pending":
            self.waiting_ms += lasted
        if before in _CLOSED and stage not in _CLOSED:
            self.dormant_ms += lasted
        if stage in _CLOSED and before not in _CLOSED and self.first_solved_at is None:
            self.first_solved_at = at
        self.stage, self.stage_since = stage, at

    def _home(self, home: str | None) -> None:
        """A → B → A on consecutive steps is a bounce; coming back to any home left before, a return."""
        if home is None or home == NO_HOME:
            self.previous_home = None
            return
        if self.home is None:
            self.home = home
            return
        if home == self.home:
            self.previous_home = None
            return
        self.bounced = self.bounced or home == self.previous_home
        self.returned = self.returned or home in self.left
        self.left.add(self.home)
        self.previous_home, self.home = self.home, home

    def waiting_until(self, at: datetime) -> int:
        """Milliseconds in ``pending`` up to ``at``, counting a wait still under way."""
        extra = 0
        if self.stage == "pending" and self.stage_since is not None and at > self.stage_since:
            extra = (at - self.stage_since) // _MS
        return self.waiting_ms + extra


def changes_of_decision(decision: Decision) -> Iterable[tuple[str, Any]]:
    return ((c.field, c.after) for c in decision.changes)


def reasons_of_decision(decision: Decision) -> Iterable[tuple[str, bool]]:
    return ((r.rule, r.matched) for r in decision.reasons)


def changes_of_record(record: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """The changes of a stored decision body (``decisions.body``, or a ``decisions.jsonl`` line)."""
    return ((str(c.get("field")), c.get("after")) for c in record.get("changes") or () if isinstance(c, dict))


def reasons_of_record(record: Mapping[str, Any]) -> Iterable[tuple[str, bool]]:
    return (
        (str(r.get("rule")), bool(r.get("matched")))
        for r in record.get("reasons") or ()
        if isinstance(r, dict)
    )
