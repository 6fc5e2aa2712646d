"""The pure decision core on the fixture policy (tests/fixtures/policy): clocks, timers, tiers,
purity. Rule features of the full language are covered by the example policy's own YAML cases
(tests/unit/test_example_policy.py) and tests/unit/test_rule_features.py."""

from __future__ import annotations

import copy
from datetime import timedelta

from baton.engine.decide import decide, decision_id, in_canary, new_ticket_id
from baton.model import Context, Decision, Event, Priority, Stage, Ticket, replace
from baton.policy.model import Policy
from tests.conftest import START
from tests.helpers import event, minutes


def opened(policy: Policy, **fields: object) -> Decision:
    fields.setdefault("subject", "Question")
    return decide(None, event(1, **fields), Context(), policy, START)


def follow(policy: Policy, ticket: Ticket, ev: Event, at_min: float = 0) -> Decision:
    return decide(ticket, ev, Context(), policy, START + minutes(at_min))


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


def test_routing_assigns_the_least_loaded_member(policy: Policy) -> None:
    d = decide(None, event(1, subject="Hi"), Context(loads={"al": 4, "bo": 0, "cy": 2}), policy, START)
    assert d.ticket.owner is not None and d.ticket.owner.person == "bo"
    assert (d.ticket.queue, d.ticket.tier, d.ticket.stage) == ("general", "L1", Stage.OPEN)
    note = next(r.note for r in d.reasons if r.rule == "owner.l1")
    assert note is not None and "least loaded" in note


def test_members_at_capacity_are_skipped_and_the_manager_is_the_last_resort(policy: Policy) -> None:
    full = {"al": 5, "bo": 5, "cy": 5}
    d = decide(None, event(1), Context(loads=full), policy, START)
    assert d.ticket.owner is not None and d.ticket.owner.person == "mia"  # the team manager


def test_new_ticket_starts_both_clocks_with_threshold_timers(policy: Policy) -> None:
    d = opened(policy, priority="high")
    clocks = {c.name: c for c in d.ticket.sla}
    assert clocks["first_response"].due_at == START + timedelta(hours=2)
    assert clocks["resolution"].due_at == START + timedelta(hours=24)
    assert clocks["first_response"].policy_version == policy.version
    due = {t.name: t.due_at for t in d.timers_set}
    assert due["sla.first_response.50"] == START + timedelta(hours=1)
    assert due["sla.first_response.80"] == START + timedelta(minutes=96)
    assert due["sla.first_response.100"] == START + timedelta(hours=2)
    assert due["sla.resolution.100"] == START + timedelta(hours=24)
    assert len(d.timers_set) == 6
    (action,) = d.actions
    assert action.name == "routing.default.notify.0" and action.params["template"] == "assigned"
    assert action.params["to"] == d.ticket.owner.person  # type: ignore[union-attr]
    assert str(action.params["subject"]).startswith("New ticket T-")


def test_agent_reply_stops_first_response_and_cancels_its_timers(policy: Policy) -> None:
    t = opened(policy).ticket
    d = follow(policy, t, event(2, "agent.replied", ticket=1, at=START + minutes(30)))
    fr = d.ticket.clock("first_response")
    assert fr is not None and fr.stopped_at == START + minutes(30) and not fr.breached
    assert fr.consumed_ms == 30 * 60_000
    assert d.ticket.first_response_at == START + minutes(30)
    assert set(d.timers_cancel) == {
        "sla.first_response.50",
        "sla.first_response.80",
        "sla.first_response.100",
    }
    assert d.ticket.clock("resolution").stopped_at is None  # type: ignore[union-attr]
    d2 = follow(policy, d.ticket, event(3, "agent.replied", ticket=1, at=START + minutes(90)))
    assert d2.ticket.first_response_at == START + minutes(30) and d2.ticket.agent_replies == 2


def test_pending_pauses_and_customer_reply_resumes_with_due_moved(policy: Policy) -> None:
    t = opened(policy).ticket  # normal: resolution 72 h
    t = follow(policy, t, event(2, "agent.replied", ticket=1, at=START + minutes(10))).ticket
    d = follow(policy, t, event(3, "status.changed", ticket=1, status="pending", at=START + minutes(60)))
    res = d.ticket.clock("resolution")
    assert d.ticket.stage == Stage.PENDING and res is not None and res.paused_at == START + minutes(60)
    assert res.running_since is None and res.consumed_ms == 60 * 60_000
    assert "sla.resolution.100" in d.timers_cancel
    back = follow(policy, d.ticket, event(4, "customer.replied", ticket=1, at=START + minutes(60 + 180)))
    res2 = back.ticket.clock("resolution")
    assert back.ticket.stage == Stage.OPEN
    assert res2 is not None and res2.paused_at is None and res2.paused_ms == 180 * 60_000
    assert res2.due_at == START + timedelta(hours=72, minutes=180)
    due = {t.name: t.due_at for t in back.timers_set}
    assert due["sla.resolution.100"] == res2.due_at
    assert due["sla.resolution.50"] == START + timedelta(hours=36, minutes=180)


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
    assert [a.params.get("about") for a in reopened.actions] == ["reopened"]


def test_threshold_warning_then_breach_escalates_one_tier(policy: Policy) -> None:
    t = opened(policy, priority="urgent").ticket  # first response 30 min
    warn = follow(policy, t, timer(1, "first_response", 80, 24), at_min=24)
    assert [a.params.get("template") for a in warn.actions] == ["warn"]
    assert warn.ticket.tier == "L1"
    breach = follow(policy, warn.ticket, timer(2, "first_response", 100, 30), at_min=30)
    b = breach.ticket
    assert b.tier == "L2" and b.stage == Stage.ESCALATED
    assert b.owner is not None and b.owner.role == "l2"
    assert b.clock("first_response").breached  # type: ignore[union-attr]
    (record,) = b.escalations
    assert (record.from_tier, record.to_tier, record.kind, record.mode) == (
        "L1",
        "L2",
        "hierarchical",
        "handoff",
    )
    assert record.rule == "sla.first_response.100" and record.policy_version == policy.version
    assert [a.params.get("about") for a in breach.actions] == ["tier-up.L2"]
    assert breach.actions[0].params["to"] == b.owner.person


def test_a_second_tier_up_keeps_the_time_the_ticket_was_escalated(policy: Policy) -> None:
    # stage_since is when the stage last changed: L1 -> L2 escalates the ticket, L2 -> L3 moves it
    # within the stage. A time-in-stage rule on "escalated" must not start again at every tier.
    t = opened(policy, priority="urgent").ticket
    first = follow(policy, t, timer(1, "first_response", 100, 30), at_min=30).ticket
    assert (first.tier, first.stage, first.stage_since) == ("L2", Stage.ESCALATED, START + minutes(30))
    second = follow(policy, first, timer(2, "resolution", 100, 480), at_min=480).ticket
    assert (second.tier, second.stage) == ("L3", Stage.ESCALATED)
    assert second.stage_since == START + minutes(30)


def test_breach_at_the_top_tier_notifies_without_moving(policy: Policy) -> None:
    t = replace(opened(policy).ticket, tier="L3")
    d = follow(policy, t, timer(1, "resolution", 100, 5000), at_min=5000)
    assert d.ticket.tier == "L3" and not d.ticket.escalations
    assert [a.params.get("about") for a in d.actions] == ["sla.resolution.100.top"]


def test_timer_for_a_stopped_clock_does_nothing(policy: Policy) -> None:
    t = opened(policy).ticket
    t = follow(policy, t, event(2, "agent.replied", ticket=1, at=START + minutes(5))).ticket
    d = follow(policy, t, timer(1, "first_response", 100, 480), at_min=480)
    assert d.actions == () and d.ticket.tier == t.tier
    assert d.reasons[-1].note is not None and "ignored" in d.reasons[-1].note


def test_priority_change_retargets_running_clocks(policy: Policy) -> None:
    t = opened(policy, priority="low").ticket  # first response 24 h
    d = follow(
        policy,
        t,
        event(2, "priority.changed", ticket=1, priority="urgent", at=START + minutes(10)),
        at_min=10,
    )
    assert d.ticket.priority == Priority.URGENT
    assert d.ticket.clock("first_response").due_at == START + minutes(30)  # type: ignore[union-attr]
    assert {t.name: t.due_at for t in d.timers_set}["sla.first_response.100"] == START + minutes(30)
    assert "sla.first_response.100" not in d.timers_cancel  # moved, not cancelled
    assert {c.field for c in d.changes} == {"priority"}


def test_decide_is_pure_and_deterministic(policy: Policy) -> None:
    ev = event(1, subject="Production outage", account_id="acme")
    ctx = Context(loads={"al": 1})
    before = copy.deepcopy((ev, ctx))
    first = decide(None, ev, ctx, policy, START)
    second = decide(None, ev, ctx, policy, START)
    assert first == second
    assert (ev, ctx) == before
    assert first.id == decision_id(first.ticket_id, ev)
    assert first.ticket_id == new_ticket_id(ev)
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


def test_brief_fields_from_events_are_kept(policy: Policy) -> None:
    t = opened(policy).ticket
    d = follow(policy, t, event(2, "note.added", ticket=1, data={"brief": {"steps_tried": "restarted sync"}}))
    assert d.ticket.brief == {"steps_tried": "restarted sync"}


def test_canary_membership_is_stable_and_proportional() -> None:
    ids = [f"T-{i}" for i in range(4000)]
    share = sum(in_canary(i, "rule", 0.25) for i in ids) / len(ids)
    assert 0.22 < share < 0.28
    assert [in_canary(i, "rule", 0.25) for i in ids[:50]] == [in_canary(i, "rule", 0.25) for i in ids[:50]]
    assert all(in_canary(i, "rule", 1.0) for i in ids[:10]) and not any(
        in_canary(i, "rule", 0.0) for i in ids[:10]
    )


def test_an_alert_firing_again_reopens_its_solved_ticket(policy: Policy) -> None:
    t = decide(None, event(1, "alert.fired", subject="Disk full"), Context(), policy, START).ticket
    t = follow(policy, t, event(2, "ticket.solved", ticket=1, at=START + minutes(20))).ticket
    again = follow(policy, t, event(3, "alert.fired", ticket=1, at=START + minutes(300)))
    assert again.ticket.stage == Stage.OPEN and again.ticket.reopen_count == 1
    resolved = follow(policy, again.ticket, event(4, "alert.fired", ticket=1, at=START + minutes(301)))
    assert resolved.ticket.reopen_count == 1  # firing while open is not another reopen


def test_a_priority_change_and_a_solve_in_one_event_leave_no_timer_behind(policy: Policy) -> None:
    t = opened(policy, priority="low").ticket
    d = follow(
        policy, t, event(2, "ticket.solved", ticket=1, priority="urgent", at=START + minutes(10)), at_min=10
    )
    assert d.timers_set == ()  # retargeting set them, the solve cancelled them: the last word wins
    assert {n for n in d.timers_cancel if n.startswith("sla.")} >= {
        "sla.first_response.100",
        "sla.resolution.100",
    }


def test_a_ticket_that_arrives_solved_is_solved(policy: Policy) -> None:
    d = decide(None, event(1, subject="Done already", status="solved"), Context(), policy, START)
    assert d.ticket.stage == Stage.SOLVED and all(c.stopped_at is not None for c in d.ticket.sla)
    assert d.timers_set == ()
