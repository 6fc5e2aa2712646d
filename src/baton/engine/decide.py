"""The decision core: ``decide(ticket, event, context, policy, now) -> Decision``.

A pure function. It reads no clock, does no I/O and touches no global state, so the live service,
the replay simulator and ``baton policy test`` all run exactly this code. For one event it:

1. opens the ticket (and routes it) or applies the event to the ticket's state;
2. keeps the SLA clocks: start, stop, pause and resume them, and schedule threshold timers;
3. evaluates the escalation rules listening to this event (or SLA threshold);
4. returns the new ticket, field changes, actions, timers to set or cancel, and a reason for
   every rule considered: its name, whether it matched, and the inputs it read.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from functools import lru_cache

from baton.engine.brief import brief_values, missing_fields
from baton.engine.env import environment
from baton.model import (
    Action,
    Change,
    Context,
    Decision,
    EscalationRecord,
    Event,
    EventType,
    Owner,
    Participant,
    Priority,
    Raci,
    Reason,
    SlaClock,
    Stage,
    Ticket,
    TimerSpec,
    dump,
    replace,
)
from baton.policy import sla as clocks
from baton.policy.expr import CompiledExpression
from baton.policy.model import Escalation, Notify, Policy, Route, SlaPolicy
from baton.policy.owners import assign
from baton.policy.templates import TemplateProblem

__all__ = ["decide", "decision_id", "in_canary", "new_ticket_id"]

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
_CLOSED = (Stage.SOLVED, Stage.CLOSED)


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


def in_canary(ticket_id: str, rule: str, share: float) -> bool:
    """Deterministic canary membership: the same ticket is always in or out for a rule."""
    if share >= 1:
        return True
    bucket = int.from_bytes(hashlib.sha256(f"{rule}\0{ticket_id}".encode()).digest()[:8], "big") / 2**64
    return bucket < share


def decide(ticket: Ticket | None, event: Event, context: Context, policy: Policy, now: datetime) -> Decision:
    """Decide what ``event`` means for ``ticket`` under ``policy`` at ``now``.

    ``ticket`` is ``None`` when the event opens a ticket Baton has not seen.
    """
    d = _Decider(event=event, context=context, policy=policy, now=now)
    if ticket is None:
        d.open_ticket()
    else:
        d.ticket = ticket
        d.apply_event()
    d.keep_clocks()
    d.escalate()
    return d.finish(before=ticket)


class _Decider:
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
        self.trigger = event.type.value  # what escalation rules listen for; a timer sets sla.<clock>.<pct>
        self._env: dict[str, object] | None = None

    # -- helpers ---------------------------------------------------------------------------

    def env(self) -> dict[str, object]:
        if self._env is None:
            self._env = environment(self.ticket, self.event, self.context, self.now)
        return self._env

    def changed(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self._env = None

    def evaluate(self, expr: CompiledExpression, rule: str) -> tuple[bool, dict[str, object]]:
        env = self.env()
        value, error = expr.evaluate_bool_safe(env)
        inputs = _inputs(expr, env)
        if error is not None:
            self.reasons.append(
                Reason(rule=rule, matched=False, inputs=inputs, note=f"evaluation failed: {error}")
            )
            return False, inputs
        return value, inputs

    def sla_policy(self) -> SlaPolicy | None:
        name = self.ticket.sla_policy
        return next((p for p in self.policy.sla if p.name == name), None)

    # -- opening and routing ---------------------------------------------------------------

    def open_ticket(self) -> None:
        e, f = self.event, self.event.fields
        at = e.occurred_at
        self.ticket = Ticket(
            id=e.ticket_id or new_ticket_id(e),
            created_at=at,
            updated_at=at,
            external_links=(e.external,) if e.external else (),
            account_id=f.account_id,
            channel=f.channel,
            requester=f.requester,
            subject=f.subject or "",
            body=f.body or "",
            category=f.category,
            severity=f.severity,
            priority=f.priority or Priority(self.policy.default_priority),
            tags=tuple(sorted(set(f.tags or ()))),
            stage=Stage.OPEN,
            stage_since=at,
            policy_version=self.policy.version,
        )
        for gap in self.context.gaps:
            self.reasons.append(
                Reason(rule=f"enrichment.{gap}", matched=False, note=f"{gap} unknown; decided without it")
            )
        self.route()
        self.choose_sla()

    def route(self) -> None:
        for route in self.policy.routing:
            rule = f"routing.{route.name}"
            if not route.enabled:
                self.reasons.append(Reason(rule=rule, matched=False, note="disabled"))
                continue
            matched, inputs = self.evaluate(route.when, rule)
            self.reasons.append(Reason(rule=rule, matched=matched, inputs=inputs))
            if matched:
                self.apply_route(route)
                if not route.continue_:
                    return

    def apply_route(self, route: Route) -> None:
        t = self.ticket
        role = route.owner or (self.policy.tier_roles.get(route.tier) if route.tier else None)
        owner = self.resolve(role, rule=f"routing.{route.name}") if role else t.owner
        self.changed(
            replace(
                t,
                queue=route.queue or t.queue,
                team=route.team or t.team,
                tier=route.tier or t.tier,
                priority=_at_least(t.priority, route.priority),
                owner=owner,
                tags=tuple(sorted(set(t.tags) | set(route.tags))),
            )
        )
        self.notify_all(route.notify, rule=f"routing.{route.name}")
        self.rule_actions(route.actions, rule=f"routing.{route.name}")

    def resolve(self, role: str, *, rule: str) -> Owner:
        result = assign(self.policy, role, now=self.now, ticket_id=self.ticket.id, loads=self.context.loads)
        self.reasons.append(
            Reason(
                rule=f"owner.{role}",
                matched=result.person is not None,
                note="; ".join(result.trail),
                inputs={"for": rule},
            )
        )
        return Owner(role=role, person=result.person)

    # -- SLA -------------------------------------------------------------------------------

    def choose_sla(self) -> None:
        for p in self.policy.sla:
            matched, inputs = self.evaluate(p.when, f"sla.{p.name}")
            if matched:
                self.reasons.append(Reason(rule=f"sla.{p.name}", matched=True, inputs=inputs))
                self.changed(replace(self.ticket, sla_policy=p.name))
                for name in ("first_response", "resolution"):
                    if name in p.targets:
                        self.start_clock(p, name, self.event.occurred_at)
                self.schedule_updates(p)
                return
        self.reasons.append(
            Reason(rule="sla", matched=False, note="no SLA policy matches; no clocks started")
        )

    def start_clock(self, p: SlaPolicy, name: str, at: datetime) -> None:
        clock = clocks.start(
            name=name,
            policy=p.name,
            version=self.policy.version,
            calendar=p.calendar,
            target=p.targets[name][self.ticket.priority.value],  # type: ignore[index]
            at=at,
        )
        self.put_clock(clock)
        self.schedule_thresholds(p, clock)

    def put_clock(self, clock: SlaClock) -> None:
        others = tuple(c for c in self.ticket.sla if c.name != clock.name)
        self.changed(replace(self.ticket, sla=tuple(sorted((*others, clock), key=lambda c: c.name))))

    def schedule_thresholds(self, p: SlaPolicy, clock: SlaClock) -> None:
        for threshold in p.thresholds:
            due = clocks.threshold_due(clock, p.calendar, threshold.at)
            if due is not None:
                self.timers_set.append(
                    TimerSpec(
                        name=f"sla.{clock.name}.{threshold.at}",
                        due_at=due,
                        data={"clock": clock.name, "pct": threshold.at},
                    )
                )

    def cancel_thresholds(self, p: SlaPolicy | None, name: str) -> None:
        if p is not None:
            self.timers_cancel.extend(f"sla.{name}.{t.at}" for t in p.thresholds)

    def stop_clock(self, name: str) -> None:
        clock, p = self.ticket.clock(name), self.sla_policy()
        if clock is None or clock.stopped_at is not None or p is None:
            return
        self.put_clock(clocks.stop(clock, p.calendar, self.event.occurred_at))
        self.cancel_thresholds(p, name)

    def keep_clocks(self) -> None:
        """Pause or resume running clocks as the policy's ``pause_when`` now says."""
        p = self.sla_policy()
        if p is None or p.pause_when is None or self.ticket.stage in _CLOSED:
            return
        paused, inputs = self.evaluate(p.pause_when, f"sla.{p.name}.pause")
        at = self.event.occurred_at
        for clock in self.ticket.sla:
            if clock.stopped_at is not None:
                continue
            if paused and clock.running_since is not None:
                self.put_clock(clocks.pause(clock, p.calendar, at))
                self.cancel_thresholds(p, clock.name)
                self.reasons.append(
                    Reason(
                        rule=f"sla.{p.name}.pause", matched=True, inputs=inputs, note=f"{clock.name} paused"
                    )
                )
            elif not paused and clock.paused_at is not None:
                resumed = clocks.resume(clock, p.calendar, at)
                self.put_clock(resumed)
                self.schedule_thresholds(p, resumed)
                self.reasons.append(
                    Reason(
                        rule=f"sla.{p.name}.pause", matched=False, inputs=inputs, note=f"{clock.name} resumed"
                    )
                )

    def schedule_updates(self, p: SlaPolicy) -> None:
        """Arm each update cadence whose condition holds now (again after a priority change)."""
        for i, cadence in enumerate(p.updates):
            matched, _ = self.evaluate(cadence.when, f"update.{i}")
            if matched:
                self.timers_set.append(
                    TimerSpec(
                        name=f"update.{i}", due_at=self.event.occurred_at + cadence.every, data={"update": i}
                    )
                )

    # -- events on a known ticket ----------------------------------------------------------

    def apply_event(self) -> None:
        e, t = self.event, self.ticket
        self.merge_fields()
        if e.external is not None and e.external not in t.external_links:
            self.changed(replace(self.ticket, external_links=(*self.ticket.external_links, e.external)))
        brief = e.data.get("brief")
        if isinstance(brief, dict):
            merged = {
                **self.ticket.brief,
                **{str(k): str(v)[:2_000] for k, v in brief.items() if v is not None},
            }
            self.changed(replace(self.ticket, brief=merged))
        match e.type:
            case EventType.CUSTOMER_REPLIED:
                self.changed(replace(self.ticket, customer_replies=self.ticket.customer_replies + 1))
                if self.ticket.stage == Stage.PENDING:
                    self.set_stage(Stage.OPEN)
                    p = self.sla_policy()
                    if p is not None:
                        self.schedule_updates(p)  # the customer is back: updates are owed again
                self.owe_next_response()
            case EventType.AGENT_REPLIED:
                if self.ticket.first_response_at is None:
                    self.changed(replace(self.ticket, first_response_at=e.occurred_at))
                self.changed(replace(self.ticket, agent_replies=self.ticket.agent_replies + 1))
                self.stop_clock("first_response")
                self.stop_clock("next_response")
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
            self.changed(replace(self.ticket, **update))
        if "priority" in update:
            self.retarget()

    def retarget(self) -> None:
        """A priority change applies the new priority's targets to the clocks still running."""
        p = self.sla_policy()
        if p is None:
            return
        for clock in self.ticket.sla:
            targets = p.targets.get(clock.name if clock.name != "internal_resolution" else "resolution")  # type: ignore[call-overload]
            if clock.stopped_at is not None or targets is None:
                continue
            moved = replace(clock, target_ms=targets[self.ticket.priority.value] // timedelta(milliseconds=1))
            moved = replace(moved, due_at=clocks.due_at(moved, p.calendar))
            self.put_clock(moved)
            self.cancel_thresholds(p, clock.name)
            self.schedule_thresholds(p, moved)
        self.reasons.append(
            Reason(
                rule=f"sla.{p.name}.retarget", matched=True, inputs={"priority": self.ticket.priority.value}
            )
        )
        if self.ticket.stage not in _CLOSED:
            self.schedule_updates(p)

    def owe_next_response(self) -> None:
        """A customer writing again after we answered starts the next-response clock."""
        p = self.sla_policy()
        if p is None or "next_response" not in p.targets or self.ticket.first_response_at is None:
            return
        current = self.ticket.clock("next_response")
        if current is None or current.stopped_at is not None:
            self.start_clock(p, "next_response", self.event.occurred_at)

    def set_stage(self, stage: Stage) -> None:
        if stage != self.ticket.stage:
            self.changed(replace(self.ticket, stage=stage, stage_since=self.event.occurred_at))

    def change_status(self, status: Stage) -> None:
        before = self.ticket.stage
        if status == before:
            return
        if status in _CLOSED:
            self.set_stage(status)
            if before not in _CLOSED:
                self.changed(replace(self.ticket, solved_at=self.event.occurred_at))
            for clock in self.ticket.sla:
                self.stop_clock(clock.name)
            p = self.sla_policy()
            self.timers_cancel.extend(f"update.{i}" for i in range(len(p.updates) if p else 0))
        elif before in _CLOSED:
            # Reopened: a new resolution clock starts; the first response is not owed again.
            self.changed(replace(self.ticket, reopen_count=self.ticket.reopen_count + 1, solved_at=None))
            self.set_stage(Stage.OPEN)
            p = self.sla_policy()
            if p is not None and "resolution" in p.targets:
                self.start_clock(p, "resolution", self.event.occurred_at)
                self.schedule_updates(p)
            self.notify_builtin(
                "reopened", "owner", f"Ticket {self.ticket.id} was reopened: {self.ticket.subject[:120]}"
            )
        else:
            self.set_stage(status)

    def assign_from_event(self) -> None:
        person = self.event.data.get("person")
        role = self.event.data.get("role")
        if isinstance(person, str):
            current_role = self.ticket.owner.role if self.ticket.owner else "unassigned"
            self.changed(
                replace(
                    self.ticket,
                    owner=Owner(role=role if isinstance(role, str) else current_role, person=person),
                )
            )

    def on_timer(self) -> None:
        data = self.event.data
        update = data.get("update")
        if isinstance(update, int):
            self.on_update(update)
            return
        name, pct = data.get("clock"), data.get("pct")
        rule = f"sla.{name}.{pct}"
        clock = self.ticket.clock(name) if isinstance(name, str) else None
        p = self.sla_policy()
        threshold = next((t for t in p.thresholds if t.at == pct), None) if p else None
        if clock is None or threshold is None or clock.stopped_at or clock.paused_at:
            self.reasons.append(
                Reason(rule=rule, matched=False, note="clock stopped or paused; timer ignored")
            )
            return
        self.trigger = rule
        self.reasons.append(
            Reason(rule=rule, matched=True, inputs={"due_at": clock.due_at.isoformat(), "pct": pct})
        )
        if threshold.at >= 100 and not clock.breached:
            self.put_clock(replace(clock, breached=True))
        self.notify_all(threshold.notify, rule=rule)
        if threshold.escalate == "tier_up":
            self.tier_up(rule=rule, reason=f"{name} SLA at {pct}%")
        elif threshold.escalate:
            self.apply_escalation(
                self.policy.escalation_by_name[threshold.escalate], inputs={"trigger": rule}, forced=True
            )

    def on_update(self, index: int) -> None:
        p = self.sla_policy()
        rule = f"update.{index}"
        if p is None or index >= len(p.updates) or self.ticket.stage in _CLOSED:
            self.reasons.append(
                Reason(rule=rule, matched=False, note="ticket closed or cadence gone; no update")
            )
            return
        cadence = p.updates[index]
        matched, inputs = self.evaluate(cadence.when, rule)
        self.reasons.append(Reason(rule=rule, matched=matched, inputs=inputs))
        if matched:  # the cadence stops when its condition no longer holds; a priority change re-arms it
            self.notify_all((cadence.notify,), rule=rule)
            self.timers_set.append(
                TimerSpec(name=rule, due_at=self.event.occurred_at + cadence.every, data={"update": index})
            )

    # -- escalation ------------------------------------------------------------------------

    def escalate(self) -> None:
        if self.ticket.stage in _CLOSED:
            return
        applied = {r.rule for r in self.ticket.escalations}
        for rule in self.policy.escalations:
            name = f"escalation.{rule.name}"
            if self.trigger not in rule.on:
                continue
            if not rule.enabled:
                self.reasons.append(Reason(rule=name, matched=False, note="disabled"))
                continue
            if rule.once and name in applied:
                continue
            matched, inputs = self.evaluate(rule.when, name)
            if not matched:
                self.reasons.append(Reason(rule=name, matched=False, inputs=inputs))
                continue
            self.apply_escalation(rule, inputs=inputs)

    def apply_escalation(self, rule: Escalation, *, inputs: dict[str, object], forced: bool = False) -> None:
        name = f"escalation.{rule.name}"
        t = self.ticket
        shadow = self.policy.shadow or rule.shadow or not in_canary(t.id, rule.name, rule.canary)
        missing = missing_fields(t, self.context, rule.requires) if rule.mode == "handoff" else ()
        if missing and not shadow:
            self.reasons.append(
                Reason(
                    rule=name,
                    matched=True,
                    inputs=inputs,
                    note=f"handoff held: brief incomplete, missing {', '.join(missing)}",
                )
            )
            self.notify_builtin(
                f"brief-needed.{rule.name}",
                "owner",
                f"Complete the handoff brief for {t.id} ({', '.join(missing)}) so it can go to {rule.to}",
            )
            return
        target = self.resolve(rule.to, rule=name)
        if shadow:
            why = "shadow" if (self.policy.shadow or rule.shadow) else "outside canary"
            self.reasons.append(
                Reason(
                    rule=name,
                    matched=True,
                    inputs=inputs,
                    note=f"{why}: would {rule.mode} to {target.role} ({target.person})",
                )
            )
            before = len(self.actions)
            self.notify_all(rule.notify, rule=name, target=target, escalation=rule)
            self.rule_actions(rule.actions, rule=name, escalation=rule)
            self.actions[before:] = [replace(a, shadow=True) for a in self.actions[before:]]
            return
        self.reasons.append(
            Reason(rule=name, matched=True, inputs=inputs, note="forced by SLA threshold" if forced else None)
        )
        record = EscalationRecord(
            at=self.now,
            rule=name,
            kind=rule.kind,
            mode=rule.mode,
            from_tier=t.tier,
            to_tier=rule.tier or t.tier,
            from_owner=t.owner,
            to_owner=target if rule.mode == "handoff" else t.owner,
            policy_version=self.policy.version,
        )
        participants = list(t.participants)
        if rule.mode == "assist":
            if target.person:
                participants.append(Participant(person=target.person, raci=Raci.CONSULTED, role=target.role))
            update: dict[str, object] = {}
        else:
            if rule.split and t.owner and t.owner.person:
                participants.append(
                    Participant(person=t.owner.person, raci=Raci.RESPONSIBLE, role="customer-communication")
                )
            elif t.owner and t.owner.person:
                participants.append(Participant(person=t.owner.person, raci=Raci.INFORMED, role=t.owner.role))
            update = {"owner": target, "stage": Stage.ESCALATED, "stage_since": self.event.occurred_at}
            if rule.tier:
                update["tier"] = rule.tier
        if rule.priority:
            update["priority"] = _at_least(t.priority, rule.priority)
        self.changed(
            replace(
                t,
                escalations=(*t.escalations, record),
                participants=tuple(dict.fromkeys(participants)),
                **update,
            )
        )
        if rule.mode == "handoff":
            self.on_handoff()
        self.notify_all(rule.notify, rule=name, target=target, escalation=rule)
        self.rule_actions(rule.actions, rule=name, escalation=rule)
        if rule.approval == "notify_after" and self.policy.approvers:
            self.notify_builtin(
                f"approval-notice.{rule.name}",
                self.policy.approvers,
                f"{rule.name} acted on {t.id} without waiting for approval; review it",
            )

    def on_handoff(self) -> None:
        """What the SLA does when ownership moves: continue, or a new internal resolution target."""
        p = self.sla_policy()
        if p is None or p.on_handoff == "continue" or "resolution" not in p.targets:
            return
        internal = clocks.start(
            name="internal_resolution",
            policy=p.name,
            version=self.policy.version,
            calendar=p.calendar,
            target=p.targets["resolution"][self.ticket.priority.value],
            at=self.event.occurred_at,
        )
        self.put_clock(internal)
        self.schedule_thresholds(p, internal)

    def tier_up(self, *, rule: str, reason: str) -> None:
        t = self.ticket
        target_tier = self.policy.next_tier(t.tier)
        if target_tier is None:
            self.notify_builtin(
                f"{rule}.top", "owner", f"{reason} on {t.id}; already at the top tier {t.tier}"
            )
            return
        owner = self.resolve(self.policy.tier_roles[target_tier], rule=rule)
        record = EscalationRecord(
            at=self.now,
            rule=rule,
            kind="hierarchical",
            mode="handoff",
            from_tier=t.tier,
            to_tier=target_tier,
            from_owner=t.owner,
            to_owner=owner,
            policy_version=self.policy.version,
        )
        self.changed(
            replace(
                t,
                tier=target_tier,
                owner=owner,
                stage=Stage.ESCALATED,
                stage_since=self.event.occurred_at,
                escalations=(*t.escalations, record),
            )
        )
        self.on_handoff()
        self.notify_builtin(
            f"tier-up.{target_tier}", "owner", f"{reason}: {t.id} handed to {target_tier} ({owner.person})"
        )

    # -- actions ---------------------------------------------------------------------------

    def recipient(self, notify: Notify, target: Owner | None) -> tuple[str | None, str | None]:
        """(person, address) for a notification."""
        t, account = self.ticket, self.context.account
        to = notify.to
        if notify.to_expression is not None:
            raw = _safe_value(notify.to_expression, self.env())
            to = str(raw) if raw is not None else ""
        person: str | None
        match to:
            case "owner":
                person = t.owner.person if t.owner else None
            case "previous_owner":
                last = t.escalations[-1].from_owner if t.escalations else None
                person = last.person if last else None
            case "manager":
                team = (
                    self.policy.members[t.owner.person].team
                    if t.owner and t.owner.person in self.policy.members
                    else None
                )
                person = self.policy.teams[team].manager if team else None
            case "customer":
                return None, t.requester
            case "ae":
                return None, account.ae if account else None
            case "csm":
                return None, account.csm if account else None
            case _ if to in self.policy.roles:
                person = (
                    target.person
                    if target and target.role == to
                    else self.resolve(to, rule=f"notify.{notify.template}").person
                )
            case _:
                person = to or None
        member = self.policy.members.get(person) if person else None
        address = member.identities.get(notify.connector) if member else person
        return person, address

    def notify_all(
        self,
        specs: tuple[Notify, ...],
        *,
        rule: str,
        target: Owner | None = None,
        escalation: Escalation | None = None,
    ) -> None:
        for i, spec in enumerate(specs):
            person, address = self.recipient(spec, target)
            values = brief_values(self.ticket, self.event, self.context, rule=rule, target=target)
            try:
                rendered = self.policy.templates.render(spec.template, values)
                subject, text = rendered.subject, rendered.text
            except TemplateProblem as exc:
                self.reasons.append(Reason(rule=rule, matched=True, note=f"template failed: {exc}"))
                subject, text = "", f"[{spec.template}] {self.ticket.subject}"
            self.add_action(
                Action(
                    name=f"{rule}.notify.{i}",
                    connector=spec.connector,
                    kind="notify",
                    params={
                        "to": person,
                        "address": address,
                        "template": spec.template,
                        "subject": subject,
                        "text": text,
                        "ticket": self.ticket.id,
                    },
                    rule=rule,
                    approval=escalation.approval if escalation else "none",
                    author=escalation.author if escalation else None,
                )
            )

    def notify_builtin(self, name: str, to: str, message: str) -> None:
        spec = Notify(to=to, template="", connector=self.policy.notify_connector)
        person, address = self.recipient(spec, None)
        self.add_action(
            Action(
                name=f"notify.{name}",
                connector=self.policy.notify_connector,
                kind="notify",
                params={
                    "to": person,
                    "address": address,
                    "about": name,
                    "text": message,
                    "ticket": self.ticket.id,
                },
            )
        )

    def rule_actions(
        self, specs: tuple[object, ...], *, rule: str, escalation: Escalation | None = None
    ) -> None:
        for spec in specs:
            self.add_action(
                Action(
                    name=f"{rule}.{spec.name}",  # type: ignore[attr-defined]
                    connector=spec.connector,  # type: ignore[attr-defined]
                    kind=spec.kind,  # type: ignore[attr-defined]
                    params={**spec.params, "ticket": self.ticket.id},  # type: ignore[attr-defined]
                    rule=rule,
                    approval=escalation.approval if escalation else "none",
                    author=escalation.author if escalation else None,
                )
            )

    def add_action(self, action: Action) -> None:
        if any(a.name == action.name for a in self.actions):
            action = replace(action, name=f"{action.name}#{len(self.actions)}")
        self.actions.append(action)

    # -- the result ------------------------------------------------------------------------

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
            timers_set=tuple({t.name: t for t in self.timers_set}.values()),
            timers_cancel=tuple(n for n in dict.fromkeys(self.timers_cancel) if n not in set_names),
            reasons=tuple(self.reasons),
        )


_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


def _at_least(current: Priority, floor: str | None) -> Priority:
    """Rules raise priority to at least their level; they never lower what a person set."""
    if floor is None:
        return current
    wanted = Priority(floor)
    return wanted if _RANK[wanted] > _RANK[current] else current


def _safe_value(expr: CompiledExpression, env: dict[str, object]) -> object:
    try:
        return expr.evaluate(env)
    except ValueError:
        return None


@lru_cache(maxsize=4_096)
def _split_paths(paths: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((path, tuple(path.split("."))) for path in paths)


def _inputs(expr: CompiledExpression, env: dict[str, object]) -> dict[str, object]:
    """The values of the data paths an expression reads: what the decision record shows."""
    found: dict[str, object] = {}
    for path, parts in _split_paths(expr.paths_used):
        value: object = env
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        found[path] = _plain(value)
    return found


def _plain(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value[:20]]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in list(value.items())[:20]}
    return str(value)


def _dump(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return dump(value)


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
