"""The pure decision core, table-driven over the example policy."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from baton.engine.decide import decide, decision_id, new_ticket_id
from baton.model import Account, Context, Decision, Event, Priority, Stage, Ticket
from baton.policy.model import Policy
from tests.conftest import START
from tests.helpers import event, minutes

ENTERPRISE = Account(id="acme", plan="enterprise", mrr=20_000)
STARTER = Account(id="tiny", plan="starter", mrr=49)
BIG_BUSINESS = Account(id="big", plan="business", mrr=9_000)


def opened(policy: Policy, account: Account | None = None, **fields: object) -> Decision:
    fields.setdefault("subject", "Question")
    return decide(None, event(1, **fields), Context(account=account), policy, START)


def follow(
    policy: Policy, ticket: Ticket, ev: Event, account: Account | None = None, at_min: float = 0
) -> Decision:
    return decide(ticket, ev, Context(account=account), policy, START + minutes(at_min))


@pytest.mark.parametrize(
    ("fields", "account", "rule", "queue", "tier", "role", "priority"),
    [
        (
            {"subject": "Production outage", "account_id": "acme"},
            ENTERPRISE,
            "enterprise-outage",
            "incidents",
            "L2",
            "l2-engineer",
            "urgent",
        ),
        (
            {"subject": "Site is down", "account_id": "tiny"},
            STARTER,
            "default",
            "general",
            "L1",
            "l1-agent",
            "normal",
        ),
        (
            {"subject": "Invoice", "category": "billing"},
            None,
            "billing-dispute",
            "billing",
            "L1",
            "billing-sme",
            "normal",
        ),
        (
            {"subject": "Clause 7 of our contract"},
            None,
            "contract-question",
            "legal",
            "L1",
            "legal-ops",
            "normal",
        ),
        (
            {"subject": "How to export", "account_id": "big"},
            BIG_BUSINESS,
            "high-value-account",
            "priority",
            "L1",
            "l1-agent",
            "high",
        ),
        ({"subject": "How to export"}, None, "default", "general", "L1", "l1-agent", "normal"),
    ],
)
def test_routing_first_match_wins(
    policy: Policy,
    fields: dict[str, object],
    account: Account | None,
    rule: str,
    queue: str,
    tier: str,
    role: str,
    priority: str,
) -> None:
    d = opened(policy, account, **fields)
    matched = [r.rule for r in d.reasons if r.matched]
    assert matched == [f"routing.{rule}"]
    # every rule before the winner was considered and did not match
    considered = [r.rule for r in d.reasons if r.rule.startswith("routing.")]
    assert considered[-1] == f"routing.{rule}"
    assert all(not r.matched for r in d.reasons[:-1] if r.rule.startswith("routing."))
    t = d.ticket
    assert (t.queue, t.tier, t.owner.role if t.owner else None, t.priority.value) == (
        queue,
        tier,
        role,
        priority,
    )
    assert t.owner is not None and t.owner.person in policy.roles[role].members


def test_unknown_account_is_a_flagged_gap_not_a_block(policy: Policy) -> None:
    d = decide(
        None, event(1, subject="outage", account_id="ghost"), Context(gaps=("account",)), policy, START
    )
    assert d.ticket.queue == "general"
    assert any(r.rule == "enrichment.account" and not r.matched for r in d.reasons)


def test_new_ticket_starts_both_clocks_with_threshold_timers(policy: Policy) -> None:
    d = opened(policy, priority="high")
    clocks = {c.name: c for c in d.ticket.sla}
    assert clocks["first_response"].due_at == START + timedelta(hours=2)
    assert clocks["resolution"].due_at == START + timedelta(hours=24)
    due = {t.name: t.due_at for t in d.timers_set}
    assert due["sla.first_response.50"] == START + timedelta(hours=1)
    assert due["sla.first_response.80"] == START + timedelta(minutes=96)
    assert due["sla.first_response.100"] == START + timedelta(hours=2)
    assert due["sla.resolution.100"] == START + timedelta(hours=24)
    assert len(d.timers_set) == 6
    assert [a.name for a in d.actions] == ["notify.assigned"]
    assert d.actions[0].params["to"] == d.ticket.owner.person  # type: ignore[union-attr]


def test_agent_reply_stops_first_response_and_cancels_its_timers(policy: Policy) -> None:
    t = opened(policy).ticket
    d = follow(policy, t, event(2, "agent.replied", ticket=1, at=START + minutes(30)))
    fr = d.ticket.clock("first_response")
    assert fr is not None and fr.stopped_at == START + minutes(30) and not fr.breached
    assert d.ticket.first_response_at == START + minutes(30)
    assert set(d.timers_cancel) == {
        "sla.first_response.50",
        "sla.first_response.80",
        "sla.first_response.100",
    }
    assert d.ticket.clock("resolution").stopped_at is None  # type: ignore[union-attr]
    # a second reply does not move the first response
    d2 = follow(policy, d.ticket, event(3, "agent.replied", ticket=1, at=START + minutes(90)))
    assert d2.ticket.first_response_at == START + minutes(30)
    assert d2.ticket.agent_replies == 2


def test_pending_pauses_and_customer_reply_resumes_with_due_moved(policy: Policy) -> None:
    t = opened(policy).ticket  # normal: resolution 72 h
    t = follow(policy, t, event(2, "agent.replied", ticket=1, at=START + minutes(10))).ticket
    d = follow(policy, t, event(3, "status.changed", ticket=1, status="pending", at=START + minutes(60)))
    res = d.ticket.clock("resolution")
    assert d.ticket.stage == Stage.PENDING and res is not None and res.paused_at == START + minutes(60)
    assert "sla.resolution.100" in d.timers_cancel
    back = follow(policy, d.ticket, event(4, "customer.replied", ticket=1, at=START + minutes(60 + 180)))
    res2 = back.ticket.clock("resolution")
    assert back.ticket.stage == Stage.OPEN
    assert res2 is not None and res2.paused_at is None and res2.paused_ms == 180 * 60_000
    assert res2.due_at == START + timedelta(hours=72, minutes=180)
    assert {t.name: t.due_at for t in back.timers_set}["sla.resolution.100"] == res2.due_at
    assert {t.name: t.due_at for t in back.timers_set}["sla.resolution.50"] == START + timedelta(
        hours=36, minutes=180
    )


def test_solve_stops_everything_and_reopen_starts_a_new_resolution_clock(policy: Policy) -> None:
    t = opened(policy).ticket
    solved = follow(policy, t, event(2, "ticket.solved", ticket=1, at=START + minutes(50)))
    assert solved.ticket.stage == Stage.SOLVED and solved.ticket.solved_at == START + minutes(50)
    assert all(c.stopped_at is not None for c in solved.ticket.sla)
    assert len(solved.timers_cancel) == 6
    reopened = follow(policy, solved.ticket, event(3, "ticket.reopened", ticket=1, at=START + minutes(500)))
    r = reopened.ticket
    assert r.stage == Stage.OPEN and r.reopen_count == 1 and r.solved_at is None
    res = r.clock("resolution")
    assert res is not None and res.started_at == START + minutes(500) and res.stopped_at is None
    assert r.clock("first_response").stopped_at is not None  # type: ignore[union-attr]
    assert {t.name for t in reopened.timers_set} == {
        "sla.resolution.50",
        "sla.resolution.80",
        "sla.resolution.100",
    }
    assert [a.name for a in reopened.actions] == ["notify.reopened"]


def timer(n: int, clock: str, pct: int, at_min: float) -> Event:
    return Event.model_validate(
        {
            "source": "baton.timer",
            "event_id": f"timer-{n}",
            "type": "timer.fired",
            "occurred_at": (START + minutes(at_min)).isoformat(),
            "ticket_id": "x",
            "data": {"clock": clock, "pct": pct},
        }
    )


def test_threshold_warning_then_breach_escalates_one_tier(policy: Policy) -> None:
    t = opened(policy, priority="urgent").ticket  # first response 30 min
    warn = follow(policy, t, timer(1, "first_response", 80, 24), at_min=24)
    assert [a.name for a in warn.actions] == ["notify.sla-first_response-80"]
    assert warn.ticket.tier == "L1"
    breach = follow(policy, warn.ticket, timer(2, "first_response", 100, 30), at_min=30)
    b = breach.ticket
    assert b.tier == "L2" and b.stage == Stage.ESCALATED
    assert b.owner is not None and b.owner.role == "l2-engineer"
    assert b.clock("first_response").breached  # type: ignore[union-attr]
    (record,) = b.escalations
    assert (record.from_tier, record.to_tier, record.kind, record.mode) == (
        "L1",
        "L2",
        "hierarchical",
        "handoff",
    )
    assert record.rule == "sla.first_response.100" and record.policy_version == policy.version
    assert [a.name for a in breach.actions] == ["notify.escalated-L2"]
    assert breach.actions[0].params["to"] == b.owner.person


def test_breach_at_the_top_tier_notifies_without_moving(policy: Policy) -> None:
    t = opened(policy).ticket
    t = Ticket(**{**{f: getattr(t, f) for f in t.__dataclass_fields__}, "tier": "L3"})
    d = follow(policy, t, timer(1, "resolution", 100, 5000), at_min=5000)
    assert d.ticket.tier == "L3" and not d.ticket.escalations
    assert [a.name for a in d.actions] == ["notify.sla.resolution.100-top"]


def test_timer_for_a_stopped_clock_does_nothing(policy: Policy) -> None:
    t = opened(policy).ticket
    t = follow(policy, t, event(2, "agent.replied", ticket=1, at=START + minutes(5))).ticket
    d = follow(policy, t, timer(1, "first_response", 100, 480), at_min=480)
    assert d.actions == () and d.ticket.tier == t.tier
    assert d.reasons[-1].note is not None and "ignored" in d.reasons[-1].note


def test_priority_change_and_fields_merge(policy: Policy) -> None:
    t = opened(policy).ticket
    d = follow(policy, t, event(2, "priority.changed", ticket=1, priority="urgent", tags=["vip", "vip", "a"]))
    assert d.ticket.priority == Priority.URGENT
    assert d.ticket.tags == ("a", "vip")
    assert {c.field for c in d.changes} == {"priority"}


def test_decide_is_pure_and_deterministic(policy: Policy) -> None:
    ev = event(1, subject="Production outage", account_id="acme")
    ctx = Context(account=ENTERPRISE)
    before = copy.deepcopy((ev, ctx))
    first = decide(None, ev, ctx, policy, START)
    second = decide(None, ev, ctx, policy, START)
    assert first == second
    assert (ev, ctx) == before
    assert first.id == decision_id(first.ticket_id, ev)
    assert first.ticket_id == new_ticket_id(ev)
    # a different delivery of the same external ticket maps to the same canonical id
    assert new_ticket_id(event(99, ticket=1)) == new_ticket_id(event(1))


def test_version_increments_and_updated_at_never_goes_back(policy: Policy) -> None:
    t = opened(policy).ticket
    late = follow(policy, t, event(2, "customer.replied", ticket=1, at=START + minutes(60))).ticket
    early = follow(policy, late, event(3, "note.added", ticket=1, at=START + minutes(10))).ticket
    assert (t.version, late.version, early.version) == (1, 2, 3)
    assert early.updated_at == START + minutes(60)


def test_assignment_event_sets_the_person(policy: Policy) -> None:
    t = opened(policy).ticket
    d = follow(policy, t, event(2, "ticket.assigned", ticket=1, data={"person": "zoe"}))
    assert d.ticket.owner is not None and d.ticket.owner.person == "zoe"
    assert d.ticket.owner.role == t.owner.role  # type: ignore[union-attr]
