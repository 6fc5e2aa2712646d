"""SLA steps of a decision: choosing the ticket's SLA policy, pausing and resuming clocks,
retargeting on a priority change, the next-response clock, update cadences, and what a threshold
timer does when it fires."""

from __future__ import annotations

from datetime import timedelta

from baton.engine.decide_base import CLOSED
from baton.engine.decide_escalate import EscalationSteps
from baton.model import Reason, TimerSpec, replace
from baton.policy import sla as clocks
from baton.policy.model import SlaPolicy

__all__ = ["SlaSteps"]


class SlaSteps(EscalationSteps):
    def choose_sla(self) -> None:
        for p in self.policy.sla:
            matched, inputs = self.evaluate(p.when, f"sla.{p.name}")
            if matched:
                self.reasons.append(Reason(rule=f"sla.{p.name}", matched=True, inputs=inputs))
                self.update(sla_policy=p.name)
                for name in ("first_response", "resolution"):
                    if name in p.targets:
                        self.start_clock(p, name, self.event.occurred_at)
                self.schedule_updates(p)
                return
        self.reasons.append(
            Reason(rule="sla", matched=False, note="no SLA policy matches; no clocks started")
        )

    def keep_clocks(self) -> None:
        """Pause or resume running clocks as the policy's ``pause_when`` now says."""
        p = self.sla_policy()
        if p is None or p.pause_when is None or self.ticket.stage in CLOSED or self.ticket.sla_held_by:
            return  # a manual hold stays until it is lifted by hand
        paused, error = p.pause_when.evaluate_bool_safe(self.env())
        if error is not None:
            self.evaluate(p.pause_when, f"sla.{p.name}.pause")  # records the failure
            paused = False
        inputs: dict[str, object] | None = None  # read only when a clock moves: most events move none
        at = self.event.occurred_at
        for clock in self.ticket.sla:
            if clock.stopped_at is not None:
                continue
            if paused and clock.running_since is not None:
                inputs = self.inputs(p.pause_when) if inputs is None else inputs
                self.put_clock(clocks.pause(clock, p.calendar, at))
                self.cancel_thresholds(p, clock.name)
                self.reasons.append(
                    Reason(
                        rule=f"sla.{p.name}.pause", matched=True, inputs=inputs, note=f"{clock.name} paused"
                    )
                )
            elif not paused and clock.paused_at is not None:
                inputs = self.inputs(p.pause_when) if inputs is None else inputs
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
            if (
                moved.running_since is not None
                and not moved.breached
                and clocks.threshold_due(moved, p.calendar, 100) is None
            ):
                # The new, shorter target is already used up: the breach is due now, not never.
                self.timers_set.append(
                    TimerSpec(
                        name=f"sla.{clock.name}.100",
                        due_at=self.event.occurred_at,
                        data={"clock": clock.name, "pct": 100},
                    )
                )
        self.reasons.append(
            Reason(
                rule=f"sla.{p.name}.retarget", matched=True, inputs={"priority": self.ticket.priority.value}
            )
        )
        if self.ticket.stage not in CLOSED:
            self.schedule_updates(p)

    def owe_next_response(self) -> None:
        """A customer writing again after we answered starts the next-response clock."""
        p = self.sla_policy()
        if p is None or "next_response" not in p.targets or self.ticket.first_response_at is None:
            return
        current = self.ticket.clock("next_response")
        if current is None or current.stopped_at is not None:
            self.start_clock(p, "next_response", self.event.occurred_at)

    def on_timer(self) -> None:
        data = self.event.data
        update = data.get("update")
        if isinstance(update, int):
            self.on_update(update)
            return
        stuck = data.get("stuck")
        if isinstance(stuck, str):
            self.on_stuck(stuck, data.get("since"))
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
            self.put_clock(replace(clock, breached=True))  # a fact, whatever the threshold does
        held = self.held_back(
            f"sla.{self.ticket.sla_policy}.{threshold.at}", shadow=threshold.shadow, canary=threshold.canary
        )
        if held is not None:
            self.reasons.append(
                Reason(rule=rule, matched=True, note=f"{held}: threshold recorded, not acted on")
            )
        before = len(self.actions)
        self.notify_all(threshold.notify, rule=rule)
        if held is not None:
            self.shadowed_since(before)
        if threshold.escalate == "tier_up":
            self.tier_up(rule=rule, reason=f"{name} SLA at {pct}%", held=held)
        elif threshold.escalate:
            target = self.policy.escalation_by_name[threshold.escalate]
            already = target.once and any(
                e.rule == f"escalation.{target.name}" for e in self.ticket.escalations
            )
            if not target.enabled or already:  # the kill switch and `once` hold here too
                why = "disabled" if not target.enabled else "already applied"
                self.reasons.append(Reason(rule=f"escalation.{target.name}", matched=False, note=why))
            else:
                self.apply_escalation(target, inputs={"trigger": rule}, forced=True, held=held)

    def on_update(self, index: int) -> None:
        p = self.sla_policy()
        rule = f"update.{index}"
        if p is None or index >= len(p.updates) or self.ticket.stage in CLOSED:
            self.reasons.append(
                Reason(rule=rule, matched=False, note="ticket closed or cadence gone; no update")
            )
            return
        cadence = p.updates[index]
        matched, inputs = self.evaluate(cadence.when, rule)
        self.reasons.append(Reason(rule=rule, matched=matched, inputs=inputs))
        if matched:  # the cadence stops when its condition no longer holds; a priority change re-arms it
            self.notify_all((cadence.notify,), rule=rule, customer_facing=True)
            self.timers_set.append(
                TimerSpec(name=rule, due_at=self.event.occurred_at + cadence.every, data={"update": index})
            )
