"""Every rule feature of docs/policy.md, on the feature policy (tests/fixtures/features).

The policy's own YAML cases (tests/fixtures/features/tests/*.yaml) run first, one test each, through
the same ``run_case`` as ``baton policy test``. The Python tests below check what a case's ``expect``
cannot say: how an escalation is recorded (kind, mode, participants), that a rule's actions wait
for approval with their author, how many updates a cadence sent and when, which clocks exist,
pool assignment under load, and whole-policy shadow mode.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from baton.engine.decide import decide
from baton.model import Action, Context, Decision, Raci, Stage, Ticket
from baton.policy.loader import load_policy
from baton.policy.model import Policy
from baton.policy.testing import TestCase, load_cases, run_case
from tests.conftest import ROOT, START
from tests.helpers import event

FEATURES = ROOT / "tests" / "fixtures" / "features"
CASES = list(load_cases(FEATURES))


@pytest.fixture(scope="module")
def features() -> Policy:
    return load_policy(FEATURES)


# -- the YAML cases ------------------------------------------------------------------------------


def test_the_feature_policy_has_cases_in_every_file() -> None:
    files = {where.split(":")[0].rsplit("/", 1)[-1] for where, _ in CASES}
    assert files == {
        "routing.yaml",
        "owners.yaml",
        "escalation.yaml",
        "safety.yaml",
        "sla.yaml",
        "notify.yaml",
    }
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    ("where", "case"), CASES, ids=[c.name if isinstance(c, TestCase) else w for w, c in CASES]
)
def test_feature_case(features: Policy, where: str, case: TestCase | str) -> None:
    assert not isinstance(case, str), f"{where}: {case}"
    result = run_case(features, case, where=where)
    assert result.ok, f"{where}: " + "; ".join(result.failures)


# -- helpers ---------------------------------------------------------------------------------------


def play(
    policy: Policy,
    *,
    ticket: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]] = (),
    at: str | None = None,
) -> tuple[Ticket, list[Decision]]:
    """Run one case (from Monday 2026-03-02 09:00 UTC) with no expectations; return the ticket at
    the end and every decision."""
    case = TestCase.model_validate(
        {"name": "python check", "ticket": ticket, "events": list(events), "at": at, "expect": {}}
    )
    result = run_case(policy, case)
    assert result.ok, result.failures
    return result.decisions[-1].ticket, result.decisions


def actions_of(decisions: Sequence[Decision], rule: str) -> list[Action]:
    return [a for d in decisions for a in d.actions if a.rule == rule]


def notes(decisions: Sequence[Decision], rule: str) -> list[str]:
    return [r.note or "" for d in decisions for r in d.reasons if r.rule == rule]


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


# -- escalation records ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "category", "at", "rule", "kind", "mode", "from_tier", "to_tier"),
    [
        (["legal"], None, None, "escalation.legal-consult", "functional", "assist", "L1", "L1"),
        (["bug"], None, None, "escalation.engineering-handoff", "functional", "handoff", "L1", "L2"),
        (["watch"], None, None, "escalation.reply-watch", "hierarchical", "assist", "L1", "L1"),
        ([], "security", "1h", "escalation.security-lead", "hierarchical", "handoff", "L1", "L1"),
        ([], None, "8h", "sla.first_response.100", "hierarchical", "handoff", "L1", "L2"),  # tier_up
    ],
)
def test_an_escalation_records_its_kind_mode_tiers_and_version(
    features: Policy,
    tags: list[str],
    category: str | None,
    at: str | None,
    rule: str,
    kind: str,
    mode: str,
    from_tier: str,
    to_tier: str,
) -> None:
    events = [{"after": "10m", "type": "customer.replied"}] if "watch" in tags else []
    ticket, _ = play(
        features, ticket={"subject": "x", "tags": tags, "category": category}, events=events, at=at
    )
    (record,) = ticket.escalations
    assert (record.rule, record.kind, record.mode) == (rule, kind, mode)
    assert (record.from_tier, record.to_tier) == (from_tier, to_tier)
    assert record.from_owner is not None and record.from_owner.person == "cy"
    assert record.policy_version == features.version
    if mode == "assist":
        assert record.to_owner == record.from_owner
    else:
        assert record.to_owner == ticket.owner and ticket.owner.person != "cy"  # type: ignore[union-attr]


def test_assist_adds_the_target_as_consulted_and_keeps_the_owner(features: Policy) -> None:
    ticket, decisions = play(features, ticket={"subject": "Clause?", "tags": ["legal"]})
    assert ticket.owner is not None and (ticket.owner.role, ticket.owner.person) == ("l1", "cy")
    assert [(p.person, p.raci, p.role) for p in ticket.participants] == [("lea", Raci.CONSULTED, "legal")]
    # the notification to the rule's own target role goes to the person escalated to, not a new pick
    resolved = [r.inputs["for"] for d in decisions for r in d.reasons if r.rule == "owner.legal"]
    assert resolved == ["escalation.legal-consult"]


def test_handoff_keeps_the_previous_owner_informed(features: Policy) -> None:
    ticket, _ = play(features, ticket={"subject": "Crash", "tags": ["bug"]})
    assert ticket.owner is not None and ticket.owner.person == "dee" and ticket.stage == Stage.ESCALATED
    assert [(p.person, p.raci, p.role) for p in ticket.participants] == [("cy", Raci.INFORMED, "l1")]


def test_split_handoff_keeps_the_previous_owner_responsible_for_the_customer(features: Policy) -> None:
    brief = {"steps_tried": "Checked the invoice", "next_question": "Refund or credit?"}
    ticket, _ = play(
        features,
        ticket={"subject": "Charged twice", "tags": ["dispute"]},
        events=[{"after": "30m", "type": "note.added", "data": {"brief": brief}}],
    )
    assert ticket.owner is not None and ticket.owner.person == "hana"
    assert [(p.person, p.raci, p.role) for p in ticket.participants] == [
        ("cy", Raci.RESPONSIBLE, "customer-communication")
    ]
    assert ticket.brief == brief


def test_a_held_handoff_says_why_and_asks_the_owner_for_the_missing_fields(features: Policy) -> None:
    ticket, decisions = play(
        features,
        ticket={"subject": "Charged twice", "tags": ["dispute"]},
        events=[{"after": "30m", "type": "note.added", "data": {"brief": {"steps_tried": "Looked"}}}],
    )
    assert notes(decisions, "escalation.billing-dispute") == [
        "handoff held: brief incomplete, missing steps_tried, next_question",
        "handoff held: brief incomplete, missing next_question",
    ]
    asks = [a for d in decisions for a in d.actions if a.name == "notify.brief-needed.billing-dispute"]
    assert [a.params["to"] for a in asks] == ["cy", "cy"]
    assert "next_question" in str(asks[-1].params["text"]) and "steps_tried" not in str(
        asks[-1].params["text"]
    )
    assert ticket.escalations == () and ticket.participants == ()


# -- approvals, shadow, canary ----------------------------------------------------------------------


def test_required_approval_marks_every_action_of_the_rule_with_its_author(features: Policy) -> None:
    ticket, decisions = play(
        features, ticket={"subject": "Contract", "tags": ["contract"], "requester": "cto@acme.example"}
    )
    waiting = actions_of(decisions, "escalation.legal-review")
    assert sorted(a.name for a in waiting) == [
        "escalation.legal-review.hold-replies",
        "escalation.legal-review.notify.0",
        "escalation.legal-review.notify.1",
    ]
    assert {(a.approval, a.author, a.shadow) for a in waiting} == {("required", "mia", False)}
    routed = actions_of(decisions, "routing.default")
    assert routed and {a.approval for a in routed} == {"none"}  # only the rule's own actions wait
    assert ticket.owner is not None and ticket.owner.person == "lea"


def test_a_rule_without_its_own_author_carries_the_policy_author(features: Policy) -> None:
    _, decisions = play(features, ticket={"subject": "Furious", "tags": ["angry"]})
    (notice,) = [a for a in decisions[0].actions if a.name == "notify.approval-notice.lead-heads-up"]
    assert notice.params["to"] == "mia" and "without waiting for approval" in str(notice.params["text"])
    assert {(a.approval, a.author) for a in actions_of(decisions, "escalation.lead-heads-up")} == {
        ("notify_after", "olivia")
    }


@pytest.mark.parametrize(
    ("tag", "rule", "note"),
    [
        ("trial", "escalation.trial-shadow", "shadow: would handoff to l2 (dee)"),
        ("canary-none", "escalation.canary-none", "outside canary: would handoff to l3 (flo)"),
    ],
)
def test_shadow_and_canary_zero_record_everything_and_change_nothing(
    features: Policy, tag: str, rule: str, note: str
) -> None:
    ticket, decisions = play(features, ticket={"subject": "x", "tags": [tag]})
    assert notes(decisions, rule) == [note]
    recorded = actions_of(decisions, rule)
    assert recorded and all(a.shadow for a in recorded)
    assert ticket.owner is not None and ticket.owner.person == "cy"
    assert (ticket.stage, ticket.tier, ticket.escalations, ticket.participants) == (Stage.OPEN, "L1", (), ())


def test_a_shadow_rule_is_evaluated_again_on_its_next_trigger(features: Policy, tmp_path: Path) -> None:
    """It did not count as applied, so `once` does not stop it."""
    folder = tmp_path / "policy"
    shutil.copytree(FEATURES, folder)
    text = (folder / "escalation.yaml").read_text()
    (folder / "escalation.yaml").write_text(
        text.replace(
            "    when: '\"trial\" in ticket.tags'\n    on: [ticket.created]",
            "    when: '\"trial\" in ticket.tags'\n    on: [ticket.created, customer.replied]",
        )
    )
    policy = load_policy(folder)
    _, decisions = play(
        policy,
        ticket={"subject": "x", "tags": ["trial"]},
        events=[{"after": "1h", "type": "customer.replied"}],
    )
    assert len(notes(decisions, "escalation.trial-shadow")) == 2


def test_whole_policy_shadow_sends_nothing_in_any_case(tmp_path: Path) -> None:
    folder = tmp_path / "policy"
    shutil.copytree(FEATURES, folder)
    with (folder / "baton.yaml").open("a") as f:
        f.write("safety: {shadow: true}\n")
    policy = load_policy(folder)
    assert policy.shadow
    seen = 0
    for _, case in CASES:
        assert isinstance(case, TestCase)
        for decision in run_case(policy, case).decisions:
            for action in decision.actions:
                seen += 1
                assert action.shadow, f"{case.name}: {action.name} would be sent"
    assert seen > 50
    ticket, decisions = play(policy, ticket={"subject": "Crash", "tags": ["bug"]})
    assert notes(decisions, "escalation.engineering-handoff") == ["shadow: would handoff to l2 (dee)"]
    assert ticket.owner is not None and ticket.owner.person == "cy" and ticket.escalations == ()
    # The SLA's own tier-up at 100% is an escalation too: recorded, not applied.
    ticket, decisions = play(policy, ticket={"subject": "Nobody answered"}, at="8h")
    assert notes(decisions, "sla.first_response.100")[-1] == "shadow: would hand off to L2 (dee)"
    assert (ticket.tier, ticket.stage, ticket.escalations) == ("L1", Stage.OPEN, ())
    assert ticket.clock("first_response") is not None and ticket.clock("first_response").breached  # type: ignore[union-attr]


# -- SLA -------------------------------------------------------------------------------------------------


def update_times(decisions: Sequence[Decision]) -> list[str]:
    return [
        d.decided_at.strftime("%H:%M")
        for d in decisions
        for a in d.actions
        if a.name == "update.0.notify.0" and not a.shadow
    ]


INCIDENT = {"subject": "Outage in progress", "category": "incident", "requester": "cto@acme.example"}


@pytest.mark.parametrize(
    ("events", "sent"),
    [
        ([], ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00", "17:00"]),
        # pending at 12:30: the 13:00 update is not sent and the cadence stops; the ticket going back
        # to open by a status change is not one of the events that arm it again
        (
            [
                {"after": "3h30m", "type": "status.changed", "status": "pending"},
                {"after": "4h30m", "type": "status.changed", "status": "open"},
            ],
            ["10:00", "11:00", "12:00"],
        ),
        # the customer replying to the pending ticket arms it again, every hour from the reply
        (
            [
                {"after": "3h30m", "type": "status.changed", "status": "pending"},
                {"after": "5h30m", "type": "customer.replied"},
            ],
            ["10:00", "11:00", "12:00", "15:30", "16:30"],
        ),
        # a priority change arms it again
        (
            [
                {"after": "30m", "type": "status.changed", "status": "pending"},
                {"after": "1h30m", "type": "status.changed", "status": "open"},
                {"after": "2h", "type": "priority.changed", "priority": "high"},
            ],
            ["12:00", "13:00", "14:00", "15:00", "16:00", "17:00"],
        ),
        # solving cancels it
        ([{"after": "2h30m", "type": "ticket.solved"}], ["10:00", "11:00"]),
    ],
    ids=[
        "runs-every-hour",
        "stops-when-condition-fails",
        "customer-reply-rearms",
        "priority-rearms",
        "solve",
    ],
)
def test_update_cadence(features: Policy, events: list[dict[str, str]], sent: list[str]) -> None:
    _, decisions = play(features, ticket=INCIDENT, events=events, at="8h")
    assert update_times(decisions) == sent


def test_update_cadence_is_armed_again_when_the_ticket_is_reopened(features: Policy) -> None:
    """docs/policy.md section 7: "A cadence is armed when the ticket opens ..., when its priority
    changes, when the customer replies to a pending ticket, and when the ticket is reopened"."""
    _, decisions = play(
        features,
        ticket=INCIDENT,
        events=[{"after": "1h30m", "type": "ticket.solved"}, {"after": "3h", "type": "ticket.reopened"}],
        at="5h30m",
    )
    assert update_times(decisions) == ["10:00", "13:00", "14:00"]


def test_next_response_is_owed_only_after_the_first_answer_and_stops_at_the_next(
    features: Policy,
) -> None:
    before, _ = play(features, ticket={"subject": "x"}, events=[{"after": "30m", "type": "customer.replied"}])
    assert before.clock("next_response") is None
    after, _ = play(
        features,
        ticket={"subject": "x"},
        events=[
            {"after": "1h", "type": "agent.replied"},
            {"after": "3h", "type": "customer.replied"},
            {"after": "4h", "type": "agent.replied"},
        ],
        at="20h",
    )
    clock = after.clock("next_response")
    assert clock is not None and clock.started_at == START + hours(3)
    assert clock.stopped_at == START + hours(4) and not clock.breached


def test_the_first_matching_sla_policy_decides_which_clocks_run(features: Policy) -> None:
    expected = {
        "office": ("office-hours", ["first_response", "resolution"]),
        "security": ("forced-escalation", ["first_response", "resolution"]),
        "incident": ("status-updates", ["first_response"]),
        None: ("standard", ["first_response", "resolution"]),
    }
    for category, (name, clocks) in expected.items():
        ticket, _ = play(features, ticket={"subject": "x", "category": category})
        assert (ticket.sla_policy, [c.name for c in ticket.sla]) == (name, clocks)


def test_pause_cancels_threshold_timers_and_resume_sets_them_again(features: Policy) -> None:
    _, decisions = play(
        features,
        ticket={"subject": "x"},
        events=[
            {"after": "1h", "type": "status.changed", "status": "pending"},
            {"after": "3h", "type": "customer.replied"},
        ],
    )
    paused, resumed = decisions[1], decisions[2]
    assert {"sla.first_response.50", "sla.resolution.100"} <= set(paused.timers_cancel)
    due = {t.name: t.due_at for t in resumed.timers_set}
    assert due["sla.first_response.100"] == START + hours(8 + 2)  # 8 h target, 2 h paused
    assert due["sla.first_response.50"] == START + hours(4 + 2)


# -- owners -----------------------------------------------------------------------------------------------

PLAIN = Context()


@pytest.mark.parametrize(
    ("loads", "person", "trail"),
    [
        ({}, "cy", "cy: least loaded of 3 available (0% of capacity)"),  # tie: stable hash of the ticket
        ({"al": 3, "bo": 1, "cy": 2}, "bo", "bo: least loaded of 3 available (20% of capacity)"),
        # load is a share of capacity: al carries the most tickets but has capacity 10, the others 5
        ({"al": 4, "bo": 3, "cy": 3}, "al", "al: least loaded of 3 available (40% of capacity)"),
        # members at capacity are skipped even when they would be the least loaded
        ({"al": 10, "bo": 4, "cy": 5}, "bo", "al: at capacity (10/10); cy: at capacity (5/5); bo: least"),
        # everyone full, and l1 has no backup: the team's manager
        ({"al": 10, "bo": 5, "cy": 5}, "mia", "manager mia: nobody in l1 available"),
    ],
)
def test_pool_assignment_by_load_and_capacity(
    features: Policy, loads: dict[str, int], person: str, trail: str
) -> None:
    d = decide(None, event(1, subject="Question"), Context(loads=loads), features, START)
    assert d.ticket.owner is not None and (d.ticket.owner.role, d.ticket.owner.person) == ("l1", person)
    (note,) = notes([d], "owner.l1")
    assert trail in note


def test_a_full_pool_falls_back_to_the_role_backup(features: Policy) -> None:
    d = decide(
        None, event(1, subject="Refund", category="billing"), Context(loads={"hana": 20}), features, START
    )
    assert d.ticket.owner is not None and d.ticket.owner.person == "omar"
    assert notes([d], "owner.billing-sme") == [
        "hana: at capacity (20/20); backup omar: nobody in billing-sme available"
    ]


def test_the_schedule_trail_names_who_was_away(features: Policy) -> None:
    at = datetime(2026, 3, 13, 12, 0, tzinfo=UTC)
    d = decide(None, event(1, subject="Down", category="outage", at=at), PLAIN, features, at)
    (note,) = notes([d], "owner.oncall")
    assert "esther" in note and "farid" in note and "backup nadia" in note
    assert d.ticket.owner is not None and d.ticket.owner.person == "nadia"


def test_when_nobody_at_all_is_available_the_owner_is_the_role_without_a_person(features: Policy) -> None:
    at = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)  # hana, her backup omar and the manager fay all away
    d = decide(None, event(1, subject="Refund", category="billing", at=at), PLAIN, features, at)
    assert d.ticket.owner is not None and (d.ticket.owner.role, d.ticket.owner.person) == (
        "billing-sme",
        None,
    )
    (note,) = notes([d], "owner.billing-sme")
    assert note == (
        "hana: out of office; backup omar: out of office; manager fay: out of office; "
        "nobody available for billing-sme"
    )
