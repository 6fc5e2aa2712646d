"""Per-rule shadow and canary on routing rules and SLA thresholds (docs/policy.md section 14),
at the level of whole decisions.

The decision policy's routing rule ``vip-desk`` is a canary of 0.3: it routes VIP tickets to the
vip queue for 30% of ticket ids and runs as shadow on the rest, which the next rules route.
"""

from __future__ import annotations

from baton.engine.decide import decide
from baton.model import Context, Decision
from baton.policy.model import Policy
from tests.helpers import event
from tests.unit.decision.conftest import Problems

CONTEXT = Context(gaps=("account_id",))


def vip_ticket(policy: Policy, ticket_id: str) -> Decision:
    opening = event(ticket_id, subject="Renewal question", tags=["vip"])
    opening = opening.model_copy(update={"ticket_id": ticket_id})
    return decide(None, opening, CONTEXT, policy, opening.occurred_at)


def test_the_canary_routes_its_share_of_ten_thousand_tickets(decision_policy: Policy) -> None:
    routed = [vip_ticket(decision_policy, f"T-{n:05d}").ticket.queue for n in range(10_000)]
    share = routed.count("vip") / len(routed)
    assert abs(share - 0.3) <= 0.02, share
    assert set(routed) == {"vip", "general"}  # outside the canary the walk went on to the default


def test_the_same_ticket_id_always_gets_the_same_answer(decision_policy: Policy) -> None:
    for n in range(0, 10_000, 37):
        ticket_id = f"T-{n:05d}"
        first, again = vip_ticket(decision_policy, ticket_id), vip_ticket(decision_policy, ticket_id)
        assert first.ticket.queue == again.ticket.queue
        assert first.actions == again.actions


def test_outside_the_canary_the_rule_is_recorded_and_its_actions_are_shadow(decision_policy: Policy) -> None:
    decisions = [vip_ticket(decision_policy, f"T-{n:05d}") for n in range(200)]
    outside = [d for d in decisions if d.ticket.queue == "general"]
    inside = [d for d in decisions if d.ticket.queue == "vip"]
    assert outside and inside
    for d in outside:
        reason = next(r for r in d.reasons if r.rule == "routing.vip-desk")
        assert not reason.matched
        assert reason.note is not None and reason.note.startswith("outside canary: condition holds")
        assert d.ticket.owner is not None and d.ticket.owner.role == "l1"
        assert [a.shadow for a in d.actions if a.rule == "routing.vip-desk"] == [True]
    for d in inside:
        assert d.ticket.owner is not None and d.ticket.owner.role == "leads"
        assert [a.shadow for a in d.actions if a.rule == "routing.vip-desk"] == [False]


def test_a_routing_rule_in_shadow_never_places_a_ticket(decision_policy: Policy) -> None:
    for n in range(50):
        opening = event(f"api-{n}", subject="API returns 500", category="api")
        d = decide(None, opening, CONTEXT, decision_policy, opening.occurred_at)
        assert d.ticket.queue == "general"
        reason = next(r for r in d.reasons if r.rule == "routing.api-desk")
        assert reason.note is not None and reason.note.startswith("shadow: condition holds; would route to")
        assert "queue api, tier L2, l2 (dee)" in reason.note
        assert {a.name: a.shadow for a in d.actions if a.rule == "routing.api-desk"} == {
            "routing.api-desk.notify.0": True,
            "routing.api-desk.label": True,
        }


def test_a_catch_all_in_shadow_or_canary_does_not_hide_the_rules_after_it(problems_after: Problems) -> None:
    for setting in ("shadow: true", "canary: 0.5"):
        problems, _, _ = problems_after(
            "routing.yaml", '    when: ticket.category == "api"\n    shadow: true', f"    {setting}"
        )
        assert problems == [], (setting, problems)


def test_only_rules_in_shadow_leave_tickets_without_a_home(problems_after: Problems) -> None:
    problems, path, _ = problems_after(
        "routing.yaml",
        "    set: {queue: general, tier: L1, owner: l1}",
        "    set: {queue: general}\n    shadow: true",
    )
    assert len(problems) == 1 and "no catch-all rule" in problems[0], problems
    assert problems[0].startswith(f"{path}:1:"), problems


def test_a_share_outside_zero_to_one_is_a_located_error(problems_after: Problems) -> None:
    for name, old, new, message in (
        ("routing.yaml", "canary: 0.3", "canary: 1.5", "less than or equal to 1"),
        (
            "sla.yaml",
            "escalate: tier_up, shadow: true",
            "escalate: tier_up, canary: -0.1",
            "greater than or equal to 0",
        ),
    ):
        problems, path, line = problems_after(name, old, new)
        assert len(problems) == 1, problems
        assert problems[0].startswith(f"{path}:{line}:") and message in problems[0], problems
