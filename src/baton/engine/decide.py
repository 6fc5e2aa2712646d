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
from datetime import datetime

from baton.engine.decide_base import CLOSED, CUSTOMER_COMMUNICATION, at_least, in_canary
from baton.engine.decide_sla import SlaSteps
from baton.engine.decide_sync import sync_actions
from baton.engine.decide_walk import routing
from baton.model import (
    Artifact,
    Change,
    Context,
    Decision,
    EscalationRecord,
    Event,
    EventType,
    ExternalLink,
    Owner,
    Priority,
    Reason,
    Stage,
    Ticket,
    TicketFields,
    dump,
    replace,
)
from baton.policy import sla as clocks
from baton.policy.model import Policy, Route

__all__ = ["decide", "decide_verbose", "decision_id", "in_canary", "new_ticket_id"]

_CONVERSATION = frozenset({EventType.CUSTOMER_REPLIED, EventType.AGENT_REPLIED, EventType.NOTE_ADDED})
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


_STATUS_EVENTS = frozenset({EventType.STATUS_CHANGED, EventType.SOLVED, EventType.CLOSED, EventType.REOPENED})


def linked_item(ticket: Ticket, event: Event) -> bool:
    """Whether ``event`` is about an item linked to ``ticket`` in another system than the one
    that reported the ticket first (its origin), e.g. the Jira issue of a Zendesk ticket."""
    if event.external is None or not ticket.external_links:
        return False
    return event.external.system != ticket.external_links[0].system


def with_link(links: tuple[ExternalLink, ...], link: ExternalLink) -> tuple[ExternalLink, ...]:
    """``links`` with ``link`` in them: one link per (system, id). A link already there keeps its
    place; it takes the new one's URL only if it had none (a connector records the id it made, the
    vendor's webhook later brings the same id with its web address). ``links`` itself, unchanged,
    when there is nothing to add."""
    for i, have in enumerate(links):
        if have.system == link.system and have.id == link.id:
            if have.url or not link.url:
                return links
            return (*links[:i], link, *links[i + 1 :])
    return (*links, link)


def timer_version(ticket: Ticket, event: Event) -> str | None:
    """The policy version that decides a timer firing on ``ticket``: the one the timer names (a
    time-in-stage timer names the version that set it), else the one that started its SLA clock,
    else the one that opened the ticket."""
    named = event.data.get("version")
    if isinstance(named, str):
        return named
    name = event.data.get("clock")
    clock = ticket.clock(name) if isinstance(name, str) else None
    return clock.policy_version if clock else ticket.policy_version


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
    return _decide(ticket, event, context, policy, now, verbose=False)


def decide_verbose(
    ticket: Ticket | None, event: Event, context: Context, policy: Policy, now: datetime
) -> Decision:
    """``decide``, with a reason for every rule walked (not one per walk): for explanations.
    The ticket, actions and timers are the same as ``decide``'s."""
    return _decide(ticket, event, context, policy, now, verbose=True)


def _decide(
    ticket: Ticket | None, event: Event, context: Context, policy: Policy, now: datetime, *, verbose: bool
) -> Decision:
    d = _Decider(event=event, context=context, policy=policy, now=now)
    d.verbose = verbose
    if ticket is not None and event.data.get("echo"):
        # Baton's own write coming back from a linked system: on the record, not acted on again.
        d.ticket = ticket
        d.reasons.append(
            Reason(rule="sync.echo", matched=True, note=f"echo of Baton's change to {event.source}")
        )
        return d.finish(before=ticket)
    if ticket is None:
        d.open_ticket()
    else:
        d.ticket = ticket
        if linked_item(ticket, event):
            d.apply_linked()
        else:
            d.apply_event()
    d.keep_clocks()
    d.escalate()
    d.keep_stage_timers(ticket)
    for action in sync_actions(ticket, d.ticket, event, policy):
        d.add_action(action)
    return d.finish(before=ticket)


class _Decider(SlaSteps):
    """One decision: opening and routing, applying the event, then the SLA and escalation steps."""

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
        self.take_attachments()
        if f.team is not None or f.tier is not None or f.assignee is not None:
            # The source system already placed the ticket: that is the record of truth.
            self.changed(
                replace(
                    self.ticket,
                    team=f.team or self.ticket.team,
                    tier=f.tier or self.ticket.tier,
                    owner=Owner(
                        role=f.team or (self.ticket.owner.role if self.ticket.owner else "unassigned"),
                        person=f.assignee,
                    )
                    if f.team or f.assignee
                    else self.ticket.owner,
                )
            )
        self.choose_sla()
        if f.status is not None and f.status not in (Stage.NEW, Stage.OPEN):
            self.change_status(f.status)  # the source system reports it already waiting or solved

    def route(self) -> None:
        """First match wins; a matched rule with ``continue`` lets the walk go on after it."""
        plan = routing(self.policy)
        if plan.disabled:
            self.reasons.append(Reason(rule="routing", matched=False, note=plan.disabled))
        start = 0
        while start < len(plan.routes):
            found, inputs = self.first_match("routing", plan.walk, start)
            if found is None:
                return
            route = plan.routes[found]
            start = found + 1
            held = self.held_back(plan.walk.names[found], shadow=route.shadow, canary=route.canary)
            if held is not None:
                self.shadow_route(route, held, inputs)
                continue  # it placed nothing: the walk goes on, so the ticket still gets a home
            self.reasons.append(Reason(rule=plan.walk.names[found], matched=True, inputs=inputs))
            self.apply_route(route)
            if not route.continue_:
                return

    def shadow_route(self, route: Route, why: str, inputs: dict[str, object]) -> None:
        """A routing rule in shadow (or outside its canary) whose condition holds: recorded as
        not matched, with where it would have sent the ticket; its notifications and actions are
        recorded as shadow."""
        name = f"routing.{route.name}"
        owner = self.route_owner(route)
        where = ", ".join(
            f"{label} {value}"
            for label, value in (("queue", route.queue), ("team", route.team), ("tier", route.tier))
            if value
        )
        who = f"{owner.role} ({owner.person})" if owner else "no owner"
        note = f"{why}: condition holds; would route to {where or 'the same place'}, {who}"
        self.shadow_rule(
            Reason(rule=name, matched=False, inputs=inputs, note=note),
            notify=route.notify,
            actions=route.actions,
            target=owner,
        )

    def route_owner(self, route: Route) -> Owner | None:
        """Who a route makes the owner: its role (or its tier's), resolved now; else the owner as is."""
        role = route.owner or (self.policy.tier_roles.get(route.tier) if route.tier else None)
        return self.resolve(role, rule=f"routing.{route.name}") if role else self.ticket.owner

    def apply_route(self, route: Route) -> None:
        t = self.ticket
        owner = self.route_owner(route)
        self.changed(
            replace(
                t,
                queue=route.queue or t.queue,
                team=route.team or t.team,
                tier=route.tier or t.tier,
                priority=at_least(t.priority, route.priority),
                owner=owner,
                tags=tuple(sorted(set(t.tags) | set(route.tags))),
            )
        )
        self.notify_all(route.notify, rule=f"routing.{route.name}")
        self.rule_actions(route.actions, rule=f"routing.{route.name}")

    # -- events on a known ticket ----------------------------------------------------------

    def apply_event(self) -> None:
        e, t = self.event, self.ticket
        self.merge_fields()
        if e.external is not None:
            links = with_link(t.external_links, e.external)
            if links is not t.external_links:
                self.changed(replace(self.ticket, external_links=links))
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
            case EventType.OVERRIDE:
                self.apply_override()
            case EventType.ALERT_FIRED if self.ticket.stage in CLOSED:
                self.change_status(Stage.OPEN)  # the same alert fired again: the problem is back
            case _:
                pass

    def apply_linked(self) -> None:
        """An event about linked work (a Jira issue, a Salesforce case) rather than the ticket
        itself: the link is kept and the policy sees the event, but only the fields ``sync``
        shares with that system change the ticket. A linked issue's title, its "created", or its
        own status (an engineer closing a bug) does not rewrite or solve the customer's ticket."""
        e = self.event
        shared = next(
            (t.fields for t in self.policy.sync if e.external and t.system == e.external.system), ()
        )
        kept = {name: getattr(e.fields, name) for name in shared if getattr(e.fields, name) is not None}
        ignored = sorted(name for name, value in e.fields if value is not None and name not in kept)
        status_event = e.type in _STATUS_EVENTS
        restricted = e.model_copy(
            update={
                "fields": TicketFields(**kept),
                "type": e.type if (not status_event or "status" in shared) else EventType.TICKET_UPDATED,
                "data": {k: v for k, v in e.data.items() if k != "brief"},
            }
        )
        if e.type == EventType.TICKET_CREATED:
            restricted = restricted.model_copy(update={"type": EventType.TICKET_UPDATED})
        if ignored or restricted.type != e.type:
            self.reasons.append(
                Reason(
                    rule=f"linked.{e.source}",
                    matched=True,
                    note=f"linked work: {e.type.value} kept for the policy; not applied: "
                    + (", ".join(ignored) if ignored else "its status"),
                )
            )
        self.event = restricted
        try:
            self.apply_event()
        finally:
            self.event = e

    def apply_override(self) -> None:
        """A person overrode the engine (capability X2): reassign, change tier or priority, pause or
        resume the SLA. The reason and the actor are on the record with the change."""
        data, t = self.event.data, self.ticket
        what, reason = data.get("action"), str(data.get("reason") or "")
        actor = self.event.actor.id if self.event.actor and self.event.actor.id else "unknown"
        rule = f"override.{what}"
        p = self.sla_policy()
        if what == "reassign":
            role = (
                data.get("role")
                if isinstance(data.get("role"), str)
                else (t.owner.role if t.owner else "unassigned")
            )
            person = data.get("person")
            if isinstance(person, str) and person:
                owner = Owner(role=str(role), person=person)
            elif isinstance(role, str) and role in self.policy.roles:
                owner = self.resolve(role, rule=rule)
            else:
                owner = Owner(role=str(role), person=None)
            record = EscalationRecord(
                at=self.event.occurred_at,
                rule=rule,
                kind="functional",
                mode="handoff",
                from_tier=t.tier,
                to_tier=t.tier,
                from_owner=t.owner,
                to_owner=owner,
                policy_version=self.policy.version,
            )
            self.changed(
                replace(t, owner=owner, communication_owner=None, escalations=(*t.escalations, record))
            )
            self.notify_builtin(f"{rule}.new-owner", "owner", f"{actor} assigned {t.id} to you: {reason}")
        elif what == "tier" and isinstance(data.get("tier"), str) and data["tier"] in self.policy.tiers:
            tier = str(data["tier"])
            owner = self.resolve(self.policy.tier_roles[tier], rule=rule)
            record = EscalationRecord(
                at=self.event.occurred_at,
                rule=rule,
                kind="hierarchical",
                mode="handoff",
                from_tier=t.tier,
                to_tier=tier,
                from_owner=t.owner,
                to_owner=owner,
                policy_version=self.policy.version,
            )
            self.changed(
                replace(
                    t, tier=tier, owner=owner, communication_owner=None, escalations=(*t.escalations, record)
                )
            )
            self.notify_builtin(f"{rule}.new-owner", "owner", f"{actor} moved {t.id} to {tier}: {reason}")
        elif what == "priority" and data.get("priority") in {p.value for p in Priority}:
            self.changed(replace(t, priority=Priority(str(data["priority"]))))
            self.retarget()
        elif what in ("pause_sla", "resume_sla") and p is not None:
            self.changed(replace(self.ticket, sla_held_by=actor if what == "pause_sla" else None))
            for clock in self.ticket.sla:
                if clock.stopped_at is not None:
                    continue
                if what == "pause_sla" and clock.running_since is not None:
                    self.put_clock(clocks.pause(clock, p.calendar, self.event.occurred_at))
                    self.cancel_thresholds(p, clock.name)
                elif what == "resume_sla" and clock.paused_at is not None:
                    resumed = clocks.resume(clock, p.calendar, self.event.occurred_at)
                    self.put_clock(resumed)
                    self.schedule_thresholds(p, resumed)
        else:
            self.reasons.append(
                Reason(rule=rule, matched=False, note=f"override not understood: {data!r:.200}")
            )
            return
        self.reasons.append(Reason(rule=rule, matched=True, inputs={"actor": actor, "reason": reason}))

    def merge_fields(self) -> None:
        f = self.event.fields
        # A reply's text is the conversation, not a new report: the ticket keeps what the customer
        # first reported (the handoff brief's "customer report"), and the reply stays on the record.
        names: tuple[str, ...] = ("subject", "account_id", "channel", "requester", "category", "severity")
        if self.event.type not in _CONVERSATION:
            names = (*names, "body")
        update: dict[str, object] = {
            name: value
            for name in names
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
        self.take_attachments()
        if f.team is not None or f.tier is not None or f.assignee is not None:
            self.external_assignment()

    def take_attachments(self) -> None:
        if not self.event.attachments:
            return
        known = {a.sha256 for a in self.ticket.artifacts}
        new = tuple(
            Artifact(kind="attachment", name=a.name, uri=a.uri, sha256=a.sha256, size=a.size)
            for a in self.event.attachments
            if a.sha256 not in known
        )
        if new:
            self.changed(replace(self.ticket, artifacts=(*self.ticket.artifacts, *new)))

    def external_assignment(self) -> None:
        """A person moved the ticket in the source system (another team, tier or assignee): the
        record of truth follows, and a team or tier change is a handoff on the ticket's history."""
        f, t = self.event.fields, self.ticket
        team = f.team if f.team is not None else t.team
        tier = f.tier if f.tier is not None else t.tier
        role = team or (t.owner.role if t.owner else "unassigned")
        person = (
            f.assignee if f.assignee is not None else (t.owner.person if t.owner and team == t.team else None)
        )
        owner = Owner(role=role, person=person or None)
        moved = (t.team is not None and team != t.team) or (t.tier is not None and tier != t.tier)
        if moved:
            up = t.tier is not None and tier in self.policy.tiers and t.tier in self.policy.tiers
            rising = up and self.policy.tiers.index(tier) > self.policy.tiers.index(t.tier)
            record = EscalationRecord(
                at=self.event.occurred_at,
                rule=f"external.{self.event.source}",
                kind="hierarchical" if rising else "functional",
                mode="handoff",
                from_tier=t.tier,
                to_tier=tier,
                from_owner=t.owner,
                to_owner=owner,
                policy_version=self.policy.version,
            )
            self.changed(
                replace(
                    t,
                    team=team,
                    tier=tier,
                    owner=owner,
                    communication_owner=None,
                    escalations=(*t.escalations, record),
                )
            )
            self.reasons.append(
                Reason(
                    rule=record.rule,
                    matched=True,
                    note=f"moved by {self.event.source}: {t.team}/{t.tier} -> {team}/{tier}",
                )
            )
        elif team != t.team or tier != t.tier or owner != t.owner:  # else the record already says so
            self.changed(replace(t, team=team, tier=tier, owner=owner))

    def set_stage(self, stage: Stage) -> None:
        if stage != self.ticket.stage:
            self.changed(replace(self.ticket, stage=stage, stage_since=self.event.occurred_at))

    def change_status(self, status: Stage) -> None:
        before = self.ticket.stage
        if status == before:
            return
        if status in CLOSED:
            self.set_stage(status)
            if before not in CLOSED:
                self.changed(replace(self.ticket, solved_at=self.event.occurred_at))
            for clock in self.ticket.sla:
                self.stop_clock(clock.name)
            p = self.sla_policy()
            self.timers_cancel.extend(f"update.{i}" for i in range(len(p.updates) if p else 0))
        elif before in CLOSED:
            # Reopened: a new resolution clock starts; the first response is not owed again.
            self.changed(replace(self.ticket, reopen_count=self.ticket.reopen_count + 1, solved_at=None))
            self.set_stage(Stage.OPEN)
            p = self.sla_policy()
            if p is not None:
                if "resolution" in p.targets:
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

    # -- the result ------------------------------------------------------------------------

    def finish(self, *, before: Ticket | None) -> Decision:
        t = self.ticket
        if t.communication_owner is None and any(p.role == CUSTOMER_COMMUNICATION for p in t.participants):
            # The split ended (a full transfer): nobody but the owner speaks to the customer now.
            kept = tuple(p for p in t.participants if p.role != CUSTOMER_COMMUNICATION)
            self.changed(replace(t, participants=kept))
        changes = _changes(before, self.ticket)
        ticket = replace(
            self.ticket,
            updated_at=max(self.ticket.updated_at, self.event.occurred_at),
            version=self.ticket.version + 1,
        )
        timers_set, timers_cancel = self.timers_set.net()
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
            timers_set=timers_set,
            timers_cancel=timers_cancel,
            reasons=tuple(self.reasons),
        )


def _dump(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if value.__class__ is Owner:  # what dump() makes of one, without the round trip through JSON
        return {"role": value.role, "person": value.person}
    return dump(value)


# The same changes of plain values recur (stage to open, queue to general...): a Change is frozen,
# so one object can stand for all of them. Keyed by type as well, since Priority.HIGH == "high".
_PLAIN = frozenset({str, Priority, Stage, type(None)})
_PLAIN_CHANGES: dict[tuple[object, ...], Change] = {}


def _change(name: str, before: object, after: object) -> Change:
    if before.__class__ in _PLAIN and after.__class__ in _PLAIN:
        key = (name, before.__class__, before, after.__class__, after)
        found = _PLAIN_CHANGES.get(key)
        if found is None:
            if len(_PLAIN_CHANGES) >= 4_096:
                _PLAIN_CHANGES.clear()
            found = _PLAIN_CHANGES[key] = Change(field=name, before=before, after=after)
        return found
    return Change(field=name, before=_dump(before), after=_dump(after))


def _changes(before: Ticket | None, after: Ticket) -> tuple[Change, ...]:
    now = after.__dict__  # Ticket is not slotted; its fields are its __dict__
    if before is None:
        changes = [_change(name, None, now[name]) for name in _TRACKED]
    else:
        was = before.__dict__
        changes = [
            _change(name, was[name], now[name])
            for name in _TRACKED
            if was[name] is not now[name] and was[name] != now[name]
        ]
    # Recorded only when it changes: most tickets never split their ownership.
    speaker = before.communication_owner if before is not None else None
    if after.communication_owner != speaker:
        changes.append(_change("communication_owner", speaker, after.communication_owner))
    return tuple(changes)
