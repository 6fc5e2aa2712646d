"""The decision core: ``decide(ticket, event, context, policy, now) -> Decision``.

A pure function. It reads no clock, does no I/O and touches no global state, so the live
service, the replay simulator and the tests all run exactly this code. It returns the new ticket,
the field changes, the actions to send, the timers to set or cancel, and a reason for every rule
it considered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal

from pydantic import JsonValue

from baton.model import (
    Action,
    Change,
    Context,
    Decision,
    EscalationRecord,
    Event,
    EventType,
    Owner,
    Priority,
    Reason,
    SlaClock,
    Stage,
    Ticket,
    TimerSpec,
    dump,
    replace,
)
from baton.policy.model import Condition, Policy, RoutingRule

__all__ = ["decide", "decision_id", "new_ticket_id"]

ClockName = Literal["first_response", "resolution"]
_CLOCKS: tuple[ClockName, ...] = ("first_response", "resolution")
_TRACKED = (
    "stage",
    "priority",
    "tier",
    "queue",
    "team",
    "owner",
    "category",
    "severity",
    "subject",
    "account_id",
)


def new_ticket_id(event: Event) -> str:
    """A canonical id derived from the first system that reported the ticket, so that replaying the
    same history gives the same ids."""
    if event.external is not None:
        basis = f"{event.external.system}\0{event.external.id}"
    else:
        basis = f"{event.source}\0{event.event_id}"
    return "T-" + hashlib.sha256(basis.encode()).hexdigest()[:16]


def decision_id(ticket_id: str, event: Event) -> str:
    digest = hashlib.sha256(f"{ticket_id}\0{event.source}\0{event.event_id}".encode()).hexdigest()[:20]
    return f"D-{digest}"


def decide(ticket: Ticket | None, event: Event, context: Context, policy: Policy, now: datetime) -> Decision:
    """Decide what ``event`` means for ``ticket`` under ``policy`` at ``now``.

    ``ticket`` is ``None`` when the event opens a ticket Baton has not seen.
    """
    builder = _Builder(event=event, context=context, policy=policy, now=now)
    if ticket is None:
        builder.open_ticket()
    else:
        builder.ticket = ticket
        builder.apply_event()
    return builder.finish(before=ticket)


class _Builder:
    """Accumulates one decision. Private: the public surface is ``decide``."""

    def __init__(self, *, event: Event, context: Context, policy: Policy, now: datetime) -> None:
        self.event = event
        self.context = context
        self.policy = policy
        self.now = now
        self.ticket: Ticket
        self.actions: list[Action] = []
        self.timers_set: list[TimerSpec] = []
        self.timers_cancel: list[str] = []
        self.reasons: list[Reason] = []

    # -- opening and routing ---------------------------------------------------------------

    def open_ticket(self) -> None:
        e, f = self.event, self.event.fields
        ticket_id = e.ticket_id or new_ticket_id(e)
        self.ticket = Ticket(
            id=ticket_id,
            created_at=e.occurred_at,
            updated_at=e.occurred_at,
            external_links=(e.external,) if e.external else (),
            account_id=f.account_id,
            channel=f.channel,
            requester=f.requester,
            subject=f.subject or "",
            body=f.body or "",
            category=f.category,
            severity=f.severity,
            priority=f.priority or Priority.NORMAL,
            tags=tuple(sorted(set(f.tags or ()))),
            stage=Stage.OPEN,
            policy_version=self.policy.version,
        )
        if "account" in self.context.gaps:
            self.reasons.append(
                Reason(rule="enrichment.account", matched=False, note="account unknown; routed without it")
            )
        self.route()
        self.start_clocks(start=e.occurred_at)
        self.notify_owner("assigned", f"New ticket {ticket_id}: {self.ticket.subject[:120]}")

    def route(self) -> None:
        for rule in self.policy.routing:
            if not rule.enabled:
                self.reasons.append(Reason(rule=f"routing.{rule.name}", matched=False, note="disabled"))
                continue
            matched, inputs = self.matches(rule)
            self.reasons.append(Reason(rule=f"routing.{rule.name}", matched=matched, inputs=inputs))
            if matched:
                self.apply_route(rule)
                return

    def matches(self, rule: RoutingRule) -> tuple[bool, dict[str, JsonValue]]:
        inputs: dict[str, JsonValue] = {}
        for field, test in rule.when.items():
            value = self.field_value(field)
            inputs[field] = value
            if not _test(test, value):
                return False, inputs
        return True, inputs

    def field_value(self, field: str) -> JsonValue:
        t, account = self.ticket, self.context.account
        match field:
            case "text":
                return f"{t.subject}\n{t.body}"
            case "tags":
                return list(t.tags)
            case "event.type":
                return self.event.type.value
            case "account.plan":
                return account.plan if account else None
            case "account.mrr":
                return account.mrr if account else None
            case "account.health":
                return account.health if account else None
            case "account.flags":
                return list(account.flags) if account else []
            case _:
                value = getattr(t, field)
                plain: JsonValue = value.value if isinstance(value, Enum) else value
                return plain

    def apply_route(self, rule: RoutingRule) -> None:
        s = rule.set
        role = s.owner_role or (self.policy.tiers.get(s.tier) if s.tier else None)
        self.ticket = replace(
            self.ticket,
            queue=s.queue or self.ticket.queue,
            team=s.team or self.ticket.team,
            tier=s.tier or self.ticket.tier,
            priority=s.priority or self.ticket.priority,
            owner=self.resolve_owner(role) if role else self.ticket.owner,
        )

    def resolve_owner(self, role: str) -> Owner:
        """The minimal policy spreads a role's tickets over its members by ticket id."""
        members = self.policy.roles[role].members
        index = int(hashlib.sha256(self.ticket.id.encode()).hexdigest()[:8], 16) % len(members)
        return Owner(role=role, person=members[index])

    # -- SLA clocks ------------------------------------------------------------------------

    def start_clocks(self, *, start: datetime, only: Iterable[ClockName] = _CLOCKS) -> None:
        clocks = {c.name: c for c in self.ticket.sla}
        for name in only:
            target = self.policy.sla.target(name, self.ticket.priority)
            clocks[name] = SlaClock(
                name=name, started_at=start, due_at=start + target, policy_version=self.policy.version
            )
            self.schedule_thresholds(clocks[name])
        self.ticket = replace(self.ticket, sla=tuple(clocks[n] for n in sorted(clocks)))

    def schedule_thresholds(self, clock: SlaClock) -> None:
        window = clock.due_at - clock.started_at - timedelta(milliseconds=clock.paused_ms)
        for pct in self.policy.sla.thresholds:
            due = clock.due_at - window + window * pct / 100
            self.timers_set.append(
                TimerSpec(name=f"sla.{clock.name}.{pct}", due_at=due, data={"clock": clock.name, "pct": pct})
            )

    def cancel_thresholds(self, name: str) -> None:
        self.timers_cancel.extend(f"sla.{name}.{pct}" for pct in self.policy.sla.thresholds)

    def update_clock(self, name: str, **changes: object) -> SlaClock | None:
        clock = self.ticket.clock(name)
        if clock is None:
            return None
        new = replace(clock, **changes)
        self.ticket = replace(self.ticket, sla=tuple(new if c.name == name else c for c in self.ticket.sla))
        return new

    def stop_clock(self, name: str) -> None:
        clock = self.ticket.clock(name)
        if clock is not None and clock.stopped_at is None:
            self.update_clock(name, stopped_at=self.event.occurred_at, paused_at=None)
            self.cancel_thresholds(name)

    def pause_clocks(self) -> None:
        for clock in self.ticket.sla:
            if clock.stopped_at is None and clock.paused_at is None:
                self.update_clock(clock.name, paused_at=self.event.occurred_at)
                self.cancel_thresholds(clock.name)

    def resume_clocks(self) -> None:
        for clock in self.ticket.sla:
            if clock.stopped_at is None and clock.paused_at is not None:
                paused = max(self.event.occurred_at - clock.paused_at, timedelta(0))
                new = self.update_clock(
                    clock.name,
                    paused_at=None,
                    paused_ms=clock.paused_ms + paused // timedelta(milliseconds=1),
                    due_at=clock.due_at + paused,
                )
                if new is not None:
                    self.schedule_thresholds(new)

    # -- events on a known ticket ----------------------------------------------------------

    def apply_event(self) -> None:
        e, t = self.event, self.ticket
        self.merge_fields()
        if e.external is not None and e.external not in t.external_links:
            self.ticket = replace(self.ticket, external_links=(*t.external_links, e.external))
        match e.type:
            case EventType.CUSTOMER_REPLIED:
                self.ticket = replace(self.ticket, customer_replies=t.customer_replies + 1)
                if t.stage == Stage.PENDING:
                    self.set_stage(Stage.OPEN)
                    self.resume_clocks()
            case EventType.AGENT_REPLIED:
                update: dict[str, object] = {"agent_replies": t.agent_replies + 1}
                if t.first_response_at is None:
                    update["first_response_at"] = e.occurred_at
                self.ticket = replace(self.ticket, **update)
                self.stop_clock("first_response")
            case EventType.STATUS_CHANGED if e.fields.status is not None:
                self.change_status(e.fields.status)
            case EventType.SOLVED:
                self.change_status(Stage.SOLVED)
            case EventType.CLOSED:
                self.change_status(Stage.CLOSED)
            case EventType.REOPENED:
                self.change_status(Stage.OPEN)
            case EventType.ASSIGNED:
                self.assign_from_event()
            case EventType.TIMER_FIRED:
                self.on_timer()
            case _:
                pass

    def merge_fields(self) -> None:
        f = self.event.fields
        update: dict[str, object] = {
            name: value
            for name in ("subject", "body", "account_id", "channel", "requester", "category", "severity")
            if (value := getattr(f, name)) is not None and value != getattr(self.ticket, name)
        }
        if f.tags is not None:
            update["tags"] = tuple(sorted(set(f.tags)))
        if f.priority is not None and f.priority != self.ticket.priority:
            update["priority"] = f.priority
        if update:
            self.ticket = replace(self.ticket, **update)

    def set_stage(self, stage: Stage) -> None:
        self.ticket = replace(self.ticket, stage=stage)

    def change_status(self, status: Stage) -> None:
        before = self.ticket.stage
        if status == before:
            return
        if status == Stage.PENDING:
            self.set_stage(Stage.PENDING)
            self.pause_clocks()
        elif status in (Stage.SOLVED, Stage.CLOSED):
            self.set_stage(status)
            if self.ticket.solved_at is None or before not in (Stage.SOLVED, Stage.CLOSED):
                self.ticket = replace(self.ticket, solved_at=self.event.occurred_at)
            for clock in self.ticket.sla:
                self.stop_clock(clock.name)
        elif before in (Stage.SOLVED, Stage.CLOSED):
            # Reopened: a new resolution clock starts; the first response is not owed again.
            self.ticket = replace(
                self.ticket, stage=Stage.OPEN, reopen_count=self.ticket.reopen_count + 1, solved_at=None
            )
            self.start_clocks(start=self.event.occurred_at, only=("resolution",))
            self.notify_owner("reopened", f"Ticket {self.ticket.id} was reopened")
        else:
            self.set_stage(status)
            if before == Stage.PENDING:
                self.resume_clocks()

    def assign_from_event(self) -> None:
        person = self.event.data.get("person")
        role = self.event.data.get("role")
        if isinstance(person, str):
            current_role = self.ticket.owner.role if self.ticket.owner else "unassigned"
            owner = Owner(role=role if isinstance(role, str) else current_role, person=person)
            self.ticket = replace(self.ticket, owner=owner)

    def on_timer(self) -> None:
        clock_name, pct = self.event.data.get("clock"), self.event.data.get("pct")
        clock = self.ticket.clock(clock_name) if isinstance(clock_name, str) else None
        rule = f"sla.{clock_name}.{pct}"
        if clock is None or not isinstance(pct, int) or clock.stopped_at or clock.paused_at:
            self.reasons.append(
                Reason(rule=rule, matched=False, note="clock stopped or paused; timer ignored")
            )
            return
        inputs: dict[str, JsonValue] = {"due_at": clock.due_at.isoformat(), "pct": pct}
        self.reasons.append(Reason(rule=rule, matched=True, inputs=inputs))
        if pct < 100:
            self.notify_owner(f"sla-{clock.name}-{pct}", f"{clock.name} SLA {pct}% used on {self.ticket.id}")
            return
        self.update_clock(clock.name, breached=True)
        self.escalate_tier(rule=rule, reason=f"{clock.name} SLA breached")

    def escalate_tier(self, *, rule: str, reason: str) -> None:
        t = self.ticket
        target = self.policy.next_tier(t.tier)
        if target is None:
            self.notify_owner(f"{rule}-top", f"{reason} on {t.id}; already at the top tier")
            return
        owner = self.resolve_owner(self.policy.tiers[target])
        record = EscalationRecord(
            at=self.now,
            rule=rule,
            kind="hierarchical",
            mode="handoff",
            from_tier=t.tier,
            to_tier=target,
            from_owner=t.owner,
            to_owner=owner,
            policy_version=self.policy.version,
        )
        self.ticket = replace(
            t, tier=target, owner=owner, stage=Stage.ESCALATED, escalations=(*t.escalations, record)
        )
        self.notify_owner(f"escalated-{target}", f"{reason}: {t.id} handed to {target} ({owner.person})")

    # -- actions and the result ------------------------------------------------------------

    def notify_owner(self, name: str, message: str) -> None:
        owner = self.ticket.owner
        self.actions.append(
            Action(
                name=f"notify.{name}",
                connector=self.policy.notify_connector,
                kind="notify",
                params={
                    "to": owner.person if owner else None,
                    "role": owner.role if owner else None,
                    "ticket": self.ticket.id,
                    "message": message,
                },
            )
        )

    def finish(self, *, before: Ticket | None) -> Decision:
        changes = _changes(before, self.ticket)
        ticket = replace(
            self.ticket,
            updated_at=max(self.ticket.updated_at, self.event.occurred_at),
            version=self.ticket.version + 1,
        )
        set_names = {t.name for t in self.timers_set}
        return Decision(
            id=decision_id(ticket.id, self.event),
            ticket_id=ticket.id,
            event_source=self.event.source,
            event_id=self.event.event_id,
            policy_version=self.policy.version,
            decided_at=self.now,
            ticket=ticket,
            changes=changes,
            actions=tuple(self.actions),
            timers_set=tuple(self.timers_set),
            timers_cancel=tuple(n for n in dict.fromkeys(self.timers_cancel) if n not in set_names),
            reasons=tuple(self.reasons),
        )


def _test(test: Condition | str | float | bool, value: JsonValue) -> bool:
    if not isinstance(test, Condition):
        return value == test
    if test.equals is not None:
        return value == test.equals
    if test.one_of is not None:
        return value in test.one_of
    if test.contains_any is not None:
        if isinstance(value, list):
            return any(v in value for v in test.contains_any)
        text = str(value or "").lower()
        return any(word.lower() in text for word in test.contains_any)
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None:
        return False
    if test.at_least is not None:
        return number >= test.at_least
    return test.at_most is not None and number <= test.at_most


def _dump(value: object) -> JsonValue:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    dumped: JsonValue = dump(value)
    return dumped


def _changes(before: Ticket | None, after: Ticket) -> tuple[Change, ...]:
    return tuple(
        Change(
            field=name,
            before=_dump(getattr(before, name)) if before else None,
            after=_dump(getattr(after, name)),
        )
        for name in _TRACKED
        if before is None or getattr(before, name) != getattr(after, name)
    )
