"""Declarative policy tests (``baton policy test``) and explanations (``baton policy explain``).

A test case (YAML, in the policy's ``tests/`` folder) gives an account, a new ticket, later events
and times, and what to expect. The case runs through the same ``decide`` as production, on
simulated time (:class:`~baton.engine.simulate.Simulator`), so SLA timers fire as time passes::

    - name: billing dispute before renewal goes to the billing SME
      start: 2026-03-02T09:00:00Z
      account: {id: acme, plan: enterprise, mrr: 20000, renewal_date: 2026-04-01, ae: jo}
      ticket: {subject: Charged twice, category: billing}
      events:
        - {after: 30m, type: agent.replied}
      at: 5h
      expect:
        route: billing
        owner: {role: billing-sme, person: hana}
        escalations: [billing-dispute-renewal]
        sla: {first_response: 2026-03-02T13:00:00Z}
        notifications: [{to: hana, template: handoff-brief}]
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from baton.engine.simulate import Simulator
from baton.model import Account, Decision, Event, load
from baton.policy.model import Policy
from baton.policy.schema import DURATION_PATTERN, parse_duration_text
from baton.policy.source import SourceError, read_yaml

__all__ = ["CaseResult", "TestCase", "explain", "load_cases", "run_case"]

DEFAULT_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CaseEvent(_Model):
    type: str
    after: str | None = Field(default=None, description="Time after the case's start, e.g. 30m.")
    at: datetime | None = None
    body: str | None = None
    status: str | None = None
    priority: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(DURATION_PATTERN, value):
            raise ValueError(f"{value!r} is not a duration (use e.g. 30m, 1h30m or 2d)")
        return value


class Expect(_Model):
    route: str | None = None
    queue: str | None = None
    team: str | None = None
    tier: str | None = None
    priority: str | None = None
    stage: str | None = None
    owner: dict[str, str] | None = None
    tags: list[str] | None = None
    escalations: list[str] | None = None
    no_escalations: list[str] | None = None
    sla: dict[str, datetime] | None = None
    breached: list[str] | None = None
    notifications: list[dict[str, str]] | None = None
    actions: list[str] | None = None
    approvals: list[str] | None = None
    shadow: list[str] | None = None


class TestCase(_Model):
    __test__ = False  # not a pytest class

    name: str
    start: datetime = DEFAULT_START
    account: dict[str, Any] | None = None
    signals: dict[str, JsonValue] | None = Field(
        default=None, description="Signals as enrichment would give them, over the derived ones."
    )
    ticket: dict[str, Any]
    events: list[CaseEvent] = Field(default_factory=list)
    at: str | None = Field(default=None, description="Let time run to start + this before checking.")
    expect: Expect


@dataclass
class CaseResult:
    case: TestCase
    where: str
    failures: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def load_cases(directory: Path) -> Iterator[tuple[str, TestCase | str]]:
    """Every case under ``directory/tests``: (location, case) or (location, problem)."""
    for path in sorted((directory / "tests").glob("*.yaml")):
        try:
            located = read_yaml(path)
        except SourceError as exc:
            yield exc.where, exc.message
            continue
        if not isinstance(located.data, list):
            yield f"{path}:1:1", "a test file is a list of cases"
            continue
        for i, raw in enumerate(located.data):
            where = located.locator.where([i])
            try:
                yield where, TestCase.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                yield (
                    located.locator.where([i, *first["loc"]]),
                    f"{'.'.join(map(str, first['loc']))}: {first['msg'].removeprefix('Value error, ')}",
                )


def _when(case: TestCase, after: str | None, at: datetime | None) -> datetime:
    if at is not None:
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    return case.start + timedelta(seconds=parse_duration_text(after or "0s"))


def _simulate(policy: Policy, case: TestCase, *, verbose: bool = False) -> tuple[Simulator, str]:
    accounts: dict[str, Account] = {}
    ticket = dict(case.ticket)
    if case.account:
        account = load(Account, case.account)
        accounts[account.id] = account
        ticket.setdefault("account_id", account.id)
    sim = Simulator(policy, accounts=accounts, verbose=verbose, signals=case.signals)
    external = {"system": "test", "id": "1"}
    sim.ingest(
        Event.model_validate(
            {
                "source": "test",
                "event_id": "0",
                "type": "ticket.created",
                "occurred_at": case.start.isoformat(),
                "external": external,
                "fields": ticket,
            }
        )
    )
    for n, item in enumerate(case.events, start=1):
        fields = {
            k: v
            for k, v in (("body", item.body), ("status", item.status), ("priority", item.priority))
            if v is not None
        }
        sim.ingest(
            Event.model_validate(
                {
                    "source": "test",
                    "event_id": str(n),
                    "type": item.type,
                    "occurred_at": _when(case, item.after, item.at).isoformat(),
                    "external": external,
                    "fields": fields,
                    "data": item.data,
                }
            )
        )
    end = _when(case, case.at, None) if case.at else (sim.now or case.start)
    sim.advance(end)
    return sim, sim.ticket_id_for(
        Event.model_validate(
            {
                "source": "test",
                "event_id": "x",
                "type": "ticket.updated",
                "occurred_at": case.start.isoformat(),
                "external": external,
            }
        )
    )


def run_case(policy: Policy, case: TestCase, *, where: str = "") -> CaseResult:
    result = CaseResult(case=case, where=where)
    try:
        sim, ticket_id = _simulate(policy, case)
    except (ValidationError, ValueError) as exc:
        result.failures.append(f"could not run: {exc}")
        return result
    result.decisions = sim.decisions
    t = sim.tickets[ticket_id]
    e = case.expect
    fail = result.failures.append

    def check(label: str, got: object, want: object) -> None:
        if want is not None and got != want:
            fail(f"{label}: expected {want!r}, got {got!r}")

    matched_routes = [
        r.rule.removeprefix("routing.")
        for r in sim.decisions[0].reasons
        if r.rule.startswith("routing.") and r.matched
    ]
    check("route", matched_routes[0] if matched_routes else None, e.route)
    check("queue", t.queue, e.queue)
    check("team", t.team, e.team)
    check("tier", t.tier, e.tier)
    check("priority", t.priority.value, e.priority)
    check("stage", t.stage.value, e.stage)
    if e.owner is not None:
        got = {"role": t.owner.role if t.owner else None, "person": t.owner.person if t.owner else None}
        check("owner", {k: got[k] for k in e.owner}, e.owner)
    if e.tags is not None:
        missing = sorted(set(e.tags) - set(t.tags))
        if missing:
            fail(f"tags: missing {missing}, have {list(t.tags)}")
    applied = [x.rule.removeprefix("escalation.") for x in t.escalations]
    if e.escalations is not None:
        check("escalations", applied, e.escalations)
    for name in e.no_escalations or ():
        if name in applied:
            fail(f"escalation {name!r} applied but should not have")
    for clock, due in (e.sla or {}).items():
        got_clock = t.clock(clock)
        check(
            f"sla.{clock}",
            got_clock.due_at if got_clock else None,
            due if due.tzinfo else due.replace(tzinfo=UTC),
        )
    if e.breached is not None:
        check("breached", sorted(c.name for c in t.sla if c.breached), sorted(e.breached))
    actions = [a for d in sim.decisions for a in d.actions]
    for want in e.notifications or ():
        if not any(
            a.kind == "notify"
            and all(
                str(a.params.get(k)) == v if k != "template" else a.params.get("template") == v
                for k, v in want.items()
            )
            for a in actions
            if not a.shadow
        ):
            sent = [(a.params.get("to"), a.params.get("template")) for a in actions if a.kind == "notify"]
            fail(f"notification {want} not sent; sent: {sent}")
    for name in e.actions or ():
        if not any(a.name.endswith(name) and not a.shadow for a in actions):
            fail(f"action {name!r} not taken; taken: {[a.name for a in actions]}")
    for name in e.approvals or ():
        if not any(
            a.name.endswith(name) or (a.rule or "").endswith(name)
            for a in actions
            if a.approval == "required"
        ):
            fail(f"no action of {name!r} waits for approval")
    for name in e.shadow or ():
        if not any((a.rule or "").endswith(name) for a in actions if a.shadow):
            fail(f"no shadow action of {name!r}")
    return result


def explain(
    policy: Policy, case: TestCase
) -> list[tuple[str, str, list[tuple[str, str, dict[str, Any], str]]]]:
    """The reasoning trail: for each decision (event), each rule considered, matched or not, the
    inputs it read, and any note."""
    sim, _ = _simulate(policy, case, verbose=True)
    trail = []
    for d in sim.decisions:
        rows = [
            (r.rule, "matched" if r.matched else "no match", dict(r.inputs), r.note or "") for r in d.reasons
        ]
        trail.append((d.event_id, d.decided_at.isoformat(), rows))
    return trail
