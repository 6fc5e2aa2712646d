"""Escalation steps of a decision: evaluating the rules that listen to this event, applying one
(assist or handoff, split ownership, handoff-brief completeness, approvals, shadow and canary),
tier-ups on SLA breach, and what the clock does on a handoff."""

from __future__ import annotations

from datetime import datetime

from pydantic import JsonValue

from baton.engine.brief import missing_fields
from baton.engine.decide_base import CLOSED, CUSTOMER_COMMUNICATION, DecisionState, at_least
from baton.engine.decide_walk import listening, stage_watchers
from baton.model import EscalationRecord, Owner, Participant, Raci, Reason, Stage, Ticket, TimerSpec, replace
from baton.policy.calendar import add_business_time
from baton.policy.model import Escalation

__all__ = ["EscalationSteps"]


class EscalationSteps(DecisionState):
    def escalate(self) -> None:
        if self.ticket.stage in CLOSED:
            return
        plan = listening(self.policy, self.trigger)
        if plan.once and self.ticket.escalations:
            applied = plan.once.intersection(r.rule for r in self.ticket.escalations)
            if applied:  # rules that apply once have applied: they are not walked again
                plan = listening(self.policy, self.trigger, applied)
        rules, walk = plan.rules, plan.walk
        # Each rule listening to this trigger is evaluated; every one that matches applies, in order.
        start = 0
        while start < len(rules):
            found, inputs = self.first_match("escalation", walk, start)
            if found is None:
                return
            self.apply_escalation(rules[found], inputs=inputs)
            start = found + 1

    def apply_escalation(
        self, rule: Escalation, *, inputs: dict[str, object], forced: bool = False, held: str | None = None
    ) -> None:
        """Apply ``rule``; ``held`` (why the SLA threshold that forces it is in shadow) makes it
        decide and record without acting, as its own shadow or canary would."""
        name = f"escalation.{rule.name}"
        t = self.ticket
        held = held or self.held_back(rule.name, shadow=self.policy.shadow or rule.shadow, canary=rule.canary)
        shadow = held is not None
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
        if held is not None:
            note = f"{held}: would {rule.mode} to {target.role} ({target.person})"
            self.shadow_rule(
                Reason(rule=name, matched=True, inputs=inputs, note=note),
                notify=rule.notify,
                actions=rule.actions,
                target=target,
                escalation=rule,
            )
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
            # Whoever is responsible for customer communication is exactly the communication owner
            # this handoff leaves (none after a full transfer); the outgoing owner is informed.
            speaker = _speaker(t, target) if rule.split else None
            participants = [p for p in participants if p.role != CUSTOMER_COMMUNICATION]
            if speaker is not None and speaker.person:
                participants.append(
                    Participant(person=speaker.person, raci=Raci.RESPONSIBLE, role=CUSTOMER_COMMUNICATION)
                )
            if t.owner and t.owner.person and (speaker is None or speaker.person != t.owner.person):
                participants.append(Participant(person=t.owner.person, raci=Raci.INFORMED, role=t.owner.role))
            update = {
                "owner": target,
                "communication_owner": speaker,
                "stage": Stage.ESCALATED,
                # stage_since is when the stage last changed: a second handoff keeps it
                "stage_since": t.stage_since if t.stage == Stage.ESCALATED else self.event.occurred_at,
            }
            if rule.tier:
                update["tier"] = rule.tier
        if rule.priority:
            update["priority"] = at_least(t.priority, rule.priority)
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

    # -- time in stage ---------------------------------------------------------------------

    def keep_stage_timers(self, before: Ticket | None) -> None:
        """When the ticket has entered a stage in this decision, arm the time-in-stage timer of
        every rule watching that stage and cancel those of rules watching the stage it left."""
        t = self.ticket
        if before is not None and before.stage == t.stage and before.stage_since == t.stage_since:
            return
        watchers = stage_watchers(self.policy)
        if not watchers or t.stage_since is None:
            return
        left = before.stage.value if before is not None else None
        applied = {r.rule for r in t.escalations}
        for rule in watchers:
            stuck = rule.stuck
            assert stuck is not None
            name = f"stuck.{rule.name}"
            if stuck.stage == t.stage.value and not (rule.once and f"escalation.{rule.name}" in applied):
                if stuck.business:
                    p = self.sla_policy()
                    calendar = stuck.calendar or (p.calendar if p else stuck.fallback)
                    due = add_business_time(calendar, t.stage_since, stuck.after)
                else:
                    due = t.stage_since + stuck.after
                data: dict[str, JsonValue] = {
                    "stuck": rule.name,
                    "stage": stuck.stage,
                    "since": t.stage_since.isoformat(),
                    "version": self.policy.version,  # it decides the firing too
                }
                self.timers_set.append(TimerSpec(name=name, due_at=due, data=data))
            elif stuck.stage == left:
                self.timers_cancel.append(name)

    def on_stuck(self, name: str, since: object) -> None:
        """A time-in-stage timer fired: if the ticket is still where it was when the timer was
        set, the rule's trigger ``stuck.<rule>`` is what this decision's escalation step hears."""
        rule = self.policy.escalation_by_name.get(name)
        trigger = f"stuck.{name}"
        t = self.ticket
        if rule is None or rule.stuck is None:
            self.reasons.append(Reason(rule=trigger, matched=False, note="no such time-in-stage rule now"))
            return
        entered = t.stage_since.isoformat() if t.stage_since else None
        inputs: dict[str, object] = {"stage": t.stage.value, "since": entered}
        if t.stage.value != rule.stuck.stage or not _same_instant(t.stage_since, since):
            note = f"left {rule.stuck.stage} since the timer was set; ignored"
            self.reasons.append(Reason(rule=trigger, matched=False, inputs=inputs, note=note))
            return
        self.trigger = trigger
        hours = rule.stuck.after.total_seconds() / 3600
        kind = "business" if rule.stuck.business else "calendar"
        note = f"in {rule.stuck.stage} for {hours:g}h of {kind} time"
        self.reasons.append(Reason(rule=trigger, matched=True, inputs=inputs, note=note))

    def on_handoff(self) -> None:
        """What the SLA does when ownership moves: continue, or a new internal resolution target."""
        p = self.sla_policy()
        if p is None or p.on_handoff == "continue" or "resolution" not in p.targets:
            return
        self.start_clock(p, "internal_resolution", self.event.occurred_at, target_name="resolution")

    def tier_up(self, *, rule: str, reason: str, held: str | None = None) -> None:
        t = self.ticket
        target_tier = self.policy.next_tier(t.tier)
        if target_tier is None:
            self.notify_builtin(
                f"{rule}.top", "owner", f"{reason} on {t.id}; already at the top tier {t.tier}"
            )
            return
        owner = self.resolve(self.policy.tier_roles[target_tier], rule=rule)
        held = held or ("shadow" if self.policy.shadow else None)
        if held is not None:
            # Shadow mode decides and records but does not act: an escalation rule in shadow keeps
            # the ticket where it is, and so does the SLA's own tier-up.
            self.reasons.append(
                Reason(
                    rule=rule, matched=True, note=f"{held}: would hand off to {target_tier} ({owner.person})"
                )
            )
            return
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
                communication_owner=None,  # a full transfer: the new owner talks to the customer
                stage=Stage.ESCALATED,
                stage_since=t.stage_since if t.stage == Stage.ESCALATED else self.event.occurred_at,
                escalations=(*t.escalations, record),
            )
        )
        self.on_handoff()
        self.notify_builtin(
            f"tier-up.{target_tier}", "owner", f"{reason}: {t.id} handed to {target_tier} ({owner.person})"
        )


def _same_instant(at: datetime | None, text: object) -> bool:
    """Whether ``text`` (an ISO 8601 date-time from a timer's data) is the instant ``at``."""
    if at is None or not isinstance(text, str):
        return False
    try:
        return datetime.fromisoformat(text) == at
    except ValueError:
        return False


def _speaker(ticket: Ticket, target: Owner) -> Owner | None:
    """Who keeps customer communication after a split handoff to ``target``: whoever had it (the
    communication owner of an earlier split, else the owner), unless that is the new owner."""
    speaker = ticket.communication_owner or (ticket.owner if ticket.owner and ticket.owner.person else None)
    return None if speaker is None or speaker.person == target.person else speaker
