"""Running history through policies in simulated time.

A :class:`PolicyRun` is one policy's :class:`~baton.engine.simulate.Simulator` — the live
service's ``decide``, its timers firing at their simulated due instants, business hours and all —
with a :class:`~baton.analytics.track.TicketTrack` per ticket fed from every decision, and
optionally a ``decisions.jsonl`` sink. Each line there is exactly the body the live service stores
in its ``decisions`` table (:func:`baton.engine.runtime.decision_record`), so a shadow deployment's
records and a replay's can be compared line by line.

:func:`replay_history` reads the history once, in time order, and feeds every event to one or two
runs (a policy and the baseline it is compared with). No connector is called: actions are only
recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from baton.analytics.facts import Outcome, ticket_facts
from baton.analytics.kpis import KpiAccumulator, KpiReport
from baton.analytics.track import TicketTrack, changes_of_decision, reasons_of_decision
from baton.engine.runtime import decision_record
from baton.engine.simulate import TIMER_SOURCE, Simulator
from baton.model import Account, Decision, Event, EventType, to_json
from baton.policy.model import Policy
from baton.replay.ahead import ReadAhead, worth_reading_ahead
from baton.replay.order import TimeOrdered
from baton.signals.history_mapping import HistoryMapping

__all__ = ["RECORDED_SLA_COLUMN", "PolicyRun", "Replayed", "RunResult", "recorded_sla", "replay_history"]

# A column the import mapping keeps (`keep:`) holding the source system's own SLA verdict per row.
RECORDED_SLA_COLUMN = "made_sla"
_TIMER = EventType.TIMER_FIRED.value
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def recorded_sla(event: Event) -> bool | None:
    """The source's SLA verdict carried by a history event, if its mapping kept one."""
    columns = event.data.get("columns")
    value = columns.get(RECORDED_SLA_COLUMN) if isinstance(columns, dict) else None
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


@dataclass(frozen=True)
class RunResult:
    """What one policy made of the history."""

    policy: Policy
    report: KpiReport
    outcomes: dict[str, tuple[str | None, Outcome]]  # ticket id -> (external id, outcome)
    decisions: int
    timers_fired: int
    as_of: datetime | None


class PolicyRun:
    """One policy in simulated time; feed it events in time order, then :meth:`finish`."""

    def __init__(
        self,
        policy: Policy,
        *,
        accounts: dict[str, Account],
        decisions: IO[bytes] | None = None,
        tiers: Sequence[str] | None = None,
    ) -> None:
        self.policy = policy
        self.tiers = policy.tiers if tiers is None else tuple(tiers)
        self.accounts = accounts
        self.sink = decisions
        self.tracks: dict[str, TicketTrack] = {}
        self.decisions = 0
        self._event: Event | None = None
        self.sim = Simulator(policy, accounts=accounts, on_decision=self._on_decision, keep_decisions=False)

    def feed(self, event: Event) -> None:
        self._event = event
        self.sim.ingest(event)

    def _on_decision(self, decision: Decision) -> None:
        self.decisions += 1
        event = self._event
        if decision.event_source == TIMER_SOURCE or event is None:
            at, kind, verdict = decision.decided_at, _TIMER, None
        else:
            at, kind, verdict = event.occurred_at, event.type.value, recorded_sla(event)
        track = self.tracks.get(decision.ticket_id)
        if track is None:
            track = self.tracks[decision.ticket_id] = TicketTrack()
        track.observe(
            at=at,
            event_type=kind,
            changes=changes_of_decision(decision),
            reasons=reasons_of_decision(decision),
            recorded_sla=verdict,
        )
        if self.sink is not None:
            self.sink.write(to_json(decision_record(decision), sort_keys=True) + b"\n")

    def finish(self) -> RunResult:
        """The KPIs as of the last simulated instant (timers due later have not fired)."""
        as_of = self.sim.now
        acc = KpiAccumulator(tiers=self.tiers, sla_policies=[p.name for p in self.policy.sla])
        outcomes: dict[str, tuple[str | None, Outcome]] = {}
        for ticket_id in sorted(self.sim.tickets):
            ticket = self.sim.tickets[ticket_id]
            facts = ticket_facts(
                ticket,
                self.tracks.get(ticket_id),
                as_of=as_of or ticket.updated_at,
                tiers=self.tiers,
                account=self.accounts.get(ticket.account_id) if ticket.account_id else None,
                calendars=self.policy.calendars,
            )
            acc.add(facts)
            outcomes[ticket_id] = (facts.external_id, facts.outcome)
        return RunResult(
            policy=self.policy,
            report=acc.report(),
            outcomes=outcomes,
            decisions=self.decisions,
            timers_fired=self.sim.timers_fired,
            as_of=as_of,
        )


@dataclass(frozen=True)
class Replayed:
    """A replay: the history's counts and each policy's result (``baseline`` when comparing)."""

    events: int
    rows: int
    errors: int
    peak_buffered: int
    result: RunResult
    baseline: RunResult | None

    @property
    def tickets(self) -> int:
        return len(self.result.outcomes)


def replay_history(
    path: Path,
    mapping: HistoryMapping,
    *,
    policy: Policy,
    baseline: Policy | None = None,
    accounts: dict[str, Account] | None = None,
    limit: int | None = None,
    decisions: IO[bytes] | None = None,
    baseline_decisions: IO[bytes] | None = None,
    on_error: Callable[[int, str], None] | None = None,
    on_event: Callable[[int], None] | None = None,
    tiers: Sequence[str] | None = None,
    read_ahead: bool | None = None,
) -> Replayed:
    """Read ``path`` once in time order and run every event through ``policy`` (and ``baseline``).
    ``tiers`` overrides the policy's tier order in the KPIs (the observer policy's are a stand-in).
    ``read_ahead`` reads the history in a second process (:mod:`baton.replay.ahead`); by default
    when that pays for itself. The results are the same either way."""
    known = accounts or {}
    runs: Sequence[PolicyRun] = [PolicyRun(policy, accounts=known, decisions=decisions, tiers=tiers)]
    if baseline is not None:
        runs = [*runs, PolicyRun(baseline, accounts=known, decisions=baseline_decisions)]
    if read_ahead is None:
        read_ahead = worth_reading_ahead(path, limit)
    reader = ReadAhead if read_ahead else TimeOrdered
    ordered = reader(path, mapping, limit=limit, on_error=on_error)
    events = 0
    for event in ordered:
        events += 1
        for run in runs:
            run.feed(event)
        if on_event is not None and events % 1_000 == 0:
            on_event(events)
    results = [run.finish() for run in runs]
    return Replayed(
        events=events,
        rows=ordered.rows,
        errors=ordered.errors,
        peak_buffered=ordered.peak,
        result=results[0],
        baseline=results[1] if len(results) > 1 else None,
    )
