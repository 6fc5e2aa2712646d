"""State and shared steps of one decision: expression evaluation with recorded inputs, owner
resolution, SLA clock primitives, and the actions a decision emits (notifications rendered from
templates, rule actions). The steps proper are in :mod:`decide_sla`, :mod:`decide_escalate`
and :mod:`decide`; everything here is pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from baton.engine.brief import brief_values
from baton.engine.decide_sync import links_param
from baton.engine.decide_walk import Path, Walk, missed_note, sla_policies, split_paths
from baton.engine.env import VIEWED_FIELDS, account_view, event_view, ticket_view
from baton.model import (
    Action,
    Context,
    Event,
    Owner,
    Priority,
    Reason,
    SlaClock,
    Stage,
    Ticket,
    TimerSpec,
    replace,
)
from baton.policy import sla as clocks
from baton.policy.expr import CompiledExpression
from baton.policy.model import Escalation, Notify, Policy, SlaPolicy
from baton.policy.owners import assign
from baton.policy.templates import TemplateProblem

__all__ = ["CLOSED", "CUSTOMER_COMMUNICATION", "DecisionState", "at_least", "in_canary"]

CLOSED = (Stage.SOLVED, Stage.CLOSED)
CUSTOMER_COMMUNICATION = "customer-communication"  # the participant role of a split's speaker


def in_canary(ticket_id: str, rule: str, share: float) -> bool:
    """Deterministic canary membership: the same ticket is always in or out for a rule."""
    if share >= 1:
        return True
    bucket = int.from_bytes(hashlib.sha256(f"{rule}\0{ticket_id}".encode()).digest()[:8], "big") / 2**64
    return bucket < share


class DecisionState:
    """What one decision has concluded so far, and the helpers every step uses."""

    def __init__(self, *, event: Event, context: Context, policy: Policy, now: datetime) -> None:
        self.event = event
        self.context = context
        self.policy = policy
        self.now = now
        self.ticket: Ticket
        self.actions: list[Action] = []
        # Timer operations in the order the steps made them: a later cancel undoes an earlier set
        # of the same name within one decision, and a later set moves an earlier cancel.
        self.timer_ops: list[tuple[str, TimerSpec | None]] = []
        self.timers_set = _TimerLog(self.timer_ops, cancel=False)
        self.timers_cancel = _TimerLog(self.timer_ops, cancel=True)
        self.reasons: list[Reason] = []
        self.trigger = event.type.value  # what escalation rules listen for; a timer sets sla.<clock>.<pct>
        self._env: dict[str, object] | None = None
        self._values: dict[str, object] = {}
        # The parts of the environment that no step changes, built once: the account and the
        # signals; and the event's view, with the event it was built from (a step may stand in
        # another event for a while).
        self._account: dict[str, object] | None = None
        self._signals: dict[str, object] = {}
        self._event_view: tuple[Event, dict[str, object]] | None = None
        self.verbose = False

    # -- helpers ---------------------------------------------------------------------------

    def env(self) -> dict[str, object]:
        env = self._env
        if env is None:
            if self._account is None:
                self._account = account_view(self.context.account)
                self._signals = dict(self.context.signals)
            seen = self._event_view
            if seen is None or seen[0] is not self.event:
                seen = self._event_view = (self.event, event_view(self.event))
            env = self._env = {
                "ticket": ticket_view(self.ticket),
                "account": self._account,
                "event": seen[1],
                "signals": self._signals,
                "now": self.now,
            }
        return env

    def changed(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self._env = None
        self._values = {}

    def update(self, **changes: Any) -> None:
        """Change some of the ticket's fields; the environment is rebuilt only if a policy
        expression could see the difference."""
        self.ticket = replace(self.ticket, **changes)
        if self._env is not None and not VIEWED_FIELDS.isdisjoint(changes):
            self._env = None
            self._values = {}

    def evaluate(self, expr: CompiledExpression, rule: str) -> tuple[bool, dict[str, object]]:
        """Evaluate a condition; a failure counts as no match and is recorded with its location."""
        value, error = expr.evaluate_bool_safe(self.env())
        inputs = self.inputs(expr)
        if error is not None:
            self.reasons.append(
                Reason(rule=rule, matched=False, inputs=inputs, note=f"evaluation failed: {error}")
            )
            return False, inputs
        return value, inputs

    def inputs(self, expr: CompiledExpression) -> dict[str, object]:
        """The values of the data paths ``expr`` reads, for the record."""
        return self.read(split_paths(expr.paths_used))

    def read(self, paths: tuple[Path, ...]) -> dict[str, object]:
        """The values of ``paths`` in the environment, as plain data; memoised per environment
        because a rule walk reads the same few paths over and over."""
        env = self.env()
        memo = self._values
        found: dict[str, object] = {}
        for path, parts in paths:
            value = memo.get(path, _MISSING)
            if value is _MISSING:
                value = env
                for part in parts:
                    value = value.get(part) if isinstance(value, dict) else None
                if value is not None and value.__class__ not in _SCALARS:
                    value = _plain(value)
                memo[path] = value
            found[path] = value
        return found

    def first_match(self, kind: str, walk: Walk, start: int = 0) -> tuple[int | None, dict[str, object]]:
        """Walk the rules of ``walk`` from ``start`` to the first whose condition holds; return
        its index and inputs.

        Every rule walked is on the record: a matched or failed rule as its own reason; the rules
        that did not match as one reason per walk naming them, with the inputs they read (in
        verbose mode, used by ``policy explain``, each gets its own reason).
        """
        env = self.env()
        runs: list[tuple[int, int]] = []  # the rules that did not match, as (start, end) runs
        at = start
        while True:
            index, error = walk.first(env, at)
            if self.verbose:
                self.reasons.extend(
                    Reason(rule=walk.names[i], matched=False, inputs=self.read(walk.paths[i]))
                    for i in range(at, index)
                )
            elif index > at:
                runs.append((at, index))
            if error is None:
                break
            self.reasons.append(
                Reason(
                    rule=walk.names[index],
                    matched=False,
                    inputs=self.read(walk.paths[index]),
                    note=f"evaluation failed: {error}",
                )
            )
            at = index + 1
        if runs:
            if len(runs) == 1:
                paths, note = walk.missed(*runs[0])
            else:
                paths, note = missed_note(
                    [name for a, b in runs for name in walk.names[a:b]],
                    [read for a, b in runs for read in walk.paths[a:b]],
                )
            self.reasons.append(Reason(rule=kind, matched=False, inputs=self.read(paths), note=note))
        if index == len(walk.names):
            return None, {}
        return index, self.read(walk.paths[index])

    def held_back(self, key: str, *, shadow: bool, canary: float) -> str | None:
        """Why a rule (``key``: its name in the canary hash) decides and records but does not
        act on this ticket: ``"shadow"``, ``"outside canary"``, or None when it acts."""
        if shadow:
            return "shadow"
        if not in_canary(self.ticket.id, key, canary):
            return "outside canary"
        return None

    def shadow_rule(
        self,
        reason: Reason,
        *,
        notify: tuple[Notify, ...],
        actions: tuple[object, ...],
        target: Owner | None,
        escalation: Escalation | None = None,
    ) -> None:
        """A rule that decides and records but does not act: its reason, and its notifications
        and actions recorded as shadow."""
        self.reasons.append(reason)
        before = len(self.actions)
        self.notify_all(notify, rule=reason.rule, target=target, escalation=escalation)
        self.rule_actions(actions, rule=reason.rule, escalation=escalation)
        self.shadowed_since(before)

    def shadowed_since(self, start: int) -> None:
        """Mark the actions added since ``start`` as shadow: recorded, never sent."""
        self.actions[start:] = [replace(a, shadow=True) for a in self.actions[start:]]

    def sla_policy(self) -> SlaPolicy | None:
        return sla_policies(self.policy).get(self.ticket.sla_policy)

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

    # -- SLA clock primitives --------------------------------------------------------------

    def start_clock(self, p: SlaPolicy, name: str, at: datetime, *, target_name: str | None = None) -> None:
        """Start clock ``name`` at ``at`` with the target of ``target_name`` (its own by default)
        for the ticket's priority, and schedule its thresholds."""
        clock, dues = clocks.start_with_thresholds(
            name=name,
            policy=p.name,
            version=self.policy.version,
            calendar=p.calendar,
            target=p.targets[target_name or name][self.ticket.priority.value],  # type: ignore[index]
            at=at,
            pcts=[threshold.at for threshold in p.thresholds],
        )
        self.put_clock(clock)
        self._threshold_timers(p, clock, dues)

    def put_clock(self, clock: SlaClock) -> None:
        others = tuple(c for c in self.ticket.sla if c.name != clock.name)
        self.update(sla=tuple(sorted((*others, clock), key=_clock_name)))

    def schedule_thresholds(self, p: SlaPolicy, clock: SlaClock) -> None:
        dues = clocks.threshold_dues(clock, p.calendar, [threshold.at for threshold in p.thresholds])
        self._threshold_timers(p, clock, dues)

    def _threshold_timers(self, p: SlaPolicy, clock: SlaClock, dues: list[datetime | None]) -> None:
        for threshold, due in zip(p.thresholds, dues, strict=True):
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

    # -- actions ---------------------------------------------------------------------------

    def recipient(
        self, notify: Notify, target: Owner | None, *, customer_facing: bool = False
    ) -> tuple[str | None, str | None]:
        """(person, address) for a notification. About talking to the customer (``customer_facing``:
        an update cadence), ``owner`` is whoever has customer communication after a split handoff."""
        t, account = self.ticket, self.context.account
        to = notify.to
        if notify.to_expression is not None:
            raw = _safe_value(notify.to_expression, self.env())
            to = str(raw) if raw is not None else ""
        person: str | None
        match to:
            case "owner":
                owner = (t.communication_owner or t.owner) if customer_facing else t.owner
                person = owner.person if owner else None
            case "communication_owner":
                speaker = t.communication_owner or t.owner
                person = speaker.person if speaker else None
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
        customer_facing: bool = False,
    ) -> None:
        for i, spec in enumerate(specs):
            person, address = self.recipient(spec, target, customer_facing=customer_facing)
            view = self.env()["ticket"]
            assert isinstance(view, dict)
            values = brief_values(
                self.ticket,
                self.event,
                self.context,
                rule=rule,
                target=target,
                view=view,
                only=self.policy.templates.uses(spec.template),
            )
            try:
                rendered = self.policy.templates.render(spec.template, values)
                subject, text = rendered.subject, rendered.text
            except TemplateProblem as exc:
                self.reasons.append(Reason(rule=rule, matched=True, note=f"template failed: {exc}"))
                subject, text = "", f"[{spec.template}] {self.ticket.subject}"
            params: dict[str, JsonValue] = {
                "to": person,
                "address": address,
                "template": spec.template,
                "subject": subject,
                "text": text,
                "ticket": self.ticket.id,
            }
            if spec.to == "customer":  # who speaks for Baton: the communication owner
                speaker = self.ticket.communication_owner or self.ticket.owner
                params["on_behalf_of"] = speaker.person if speaker else None
            self.add_action(
                Action(
                    name=f"{rule}.notify.{i}",
                    connector=spec.connector,
                    kind="notify",
                    params=params,
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
                    params={
                        **spec.params,  # type: ignore[attr-defined]
                        "ticket": self.ticket.id,
                        **({"links": links_param(self.ticket)} if self.ticket.external_links else {}),
                    },
                    rule=rule,
                    approval=escalation.approval if escalation else "none",
                    author=escalation.author if escalation else None,
                )
            )

    def add_action(self, action: Action) -> None:
        if self.policy.shadow and not action.shadow:
            action = replace(action, shadow=True)  # whole-policy shadow: decide and record, send nothing
        if any(a.name == action.name for a in self.actions):
            action = replace(action, name=f"{action.name}#{len(self.actions)}")
        self.actions.append(action)


class _TimerLog:
    """Appends set (TimerSpec) or cancel (name) operations to one ordered log."""

    def __init__(self, ops: list[tuple[str, TimerSpec | None]], *, cancel: bool) -> None:
        self.ops = ops
        self.cancel = cancel

    def append(self, item: Any) -> None:
        if self.cancel:
            self.ops.append((str(item), None))
        else:
            self.ops.append((item.name, item))

    def extend(self, items: Iterable[Any]) -> None:
        for item in items:
            self.append(item)

    def net(self) -> tuple[tuple[TimerSpec, ...], tuple[str, ...]]:
        """(timers to set, names to cancel) after applying the log in order."""
        if not self.ops:
            return (), ()
        final: dict[str, TimerSpec | None] = {}
        for name, spec in self.ops:
            final.pop(name, None)  # re-insert so the last operation decides the order too
            final[name] = spec
        sets = tuple(spec for spec in final.values() if spec is not None)
        return sets, tuple(name for name, spec in final.items() if spec is None)


_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


def at_least(current: Priority, floor: str | None) -> Priority:
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


_MISSING = object()
_SCALARS = frozenset({str, int, float, bool})  # what _plain returns as it is (subclasses too)


def _clock_name(clock: SlaClock) -> str:
    return clock.name


def _plain(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value[:20]]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in list(value.items())[:20]}
    return str(value)
