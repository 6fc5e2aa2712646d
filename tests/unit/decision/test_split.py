"""Split handoff (docs/policy.md section 9): with ``mode: handoff`` and ``split: true`` ownership
moves and the previous owner keeps customer communication. The ticket records the communication
owner apart from the owner of record; customer-facing messages and the customer-update reminders
follow it while it is set; a full transfer ends it.

The decision policy's ``dispute-split`` hands a ticket tagged dispute from the L1 pool (al) to the
specialists (ed), split; its SLA policy ``disputes`` reminds ``owner`` every 2 h to update the
customer and tiers up (a full transfer, to dee in L2) when the first response is 8 h late.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from baton.engine.decide import decide
from baton.engine.decide_escalate import _speaker
from baton.engine.env import ticket_view
from baton.model import Context, Decision, Owner, Raci, Ticket
from baton.policy.model import Policy
from baton.policy.testing import TestCase, run_case
from tests.conftest import START
from tests.helpers import event
from tests.unit.decision.conftest import Problems

AL, ED, DEE = (
    Owner(role="l1", person="al"),
    Owner(role="specialists", person="ed"),
    Owner(role="l2", person="dee"),
)
DISPUTE = {"subject": "Charged twice", "requester": "pat@customer.example", "tags": ["dispute"]}


def play(
    policy: Policy, ticket: dict[str, Any], events: Sequence[dict[str, Any]] = (), at: str | None = None
) -> list[Decision]:
    case = TestCase.model_validate(
        {"name": "split", "ticket": ticket, "events": list(events), "at": at, "expect": {}}
    )
    result = run_case(policy, case)
    assert result.ok, result.failures
    return result.decisions


def notified(decisions: Sequence[Decision], rule_prefix: str) -> list[tuple[str | None, str]]:
    return [
        (str(a.params["to"]) if a.params.get("to") else None, str(a.name))
        for d in decisions
        for a in d.actions
        if a.kind == "notify" and (a.rule or a.name).startswith(rule_prefix)
    ]


def test_the_ticket_records_who_talks_to_the_customer(decision_policy: Policy) -> None:
    (opened,) = play(decision_policy, DISPUTE)
    t = opened.ticket
    assert (t.owner, t.communication_owner) == (ED, AL)
    assert any(p.person == "al" and p.raci == Raci.RESPONSIBLE for p in t.participants)
    change = next(c for c in opened.changes if c.field == "communication_owner")
    assert (change.before, change.after) == (None, {"role": "l1", "person": "al"})
    view = ticket_view(t)
    assert view["owner"] == {"role": "specialists", "person": "ed"}
    assert view["communication_owner"] == {"role": "l1", "person": "al"}
    assert view["split"] is True


def test_customer_facing_messages_speak_for_the_communication_owner(decision_policy: Policy) -> None:
    (opened,) = play(decision_policy, DISPUTE)
    sent = {a.name: a.params for a in opened.actions if a.rule == "escalation.dispute-split"}
    to_customer, to_owner, to_speaker = (sent[f"escalation.dispute-split.notify.{i}"] for i in range(3))
    assert (to_customer["address"], to_customer["on_behalf_of"]) == ("pat@customer.example", "al")
    assert to_owner["to"] == "ed" and "on_behalf_of" not in to_owner
    assert to_speaker["to"] == "al"
    assert to_speaker["text"] == "al talks to the customer; ed owns the ticket (split: True)."


def test_update_reminders_follow_the_communication_owner_until_a_full_transfer(
    decision_policy: Policy,
) -> None:
    decisions = play(decision_policy, DISPUTE, at="13h")
    reminders = [
        (d.decided_at - START, a.params["to"]) for d in decisions for a in d.actions if a.rule == "update.0"
    ]
    hours = [(int(delta.total_seconds() // 3600), to) for delta, to in reminders]
    # 2, 4, 6 h: al keeps the customer; 8 h: the first response is late, the tier-up hands the
    # ticket (and the customer) to dee; 10, 12 h: dee.
    assert hours == [(2, "al"), (4, "al"), (6, "al"), (8, "dee"), (10, "dee"), (12, "dee")]
    last = decisions[-1].ticket
    assert (last.owner, last.communication_owner) == (DEE, None)


def test_a_handoff_without_split_leaves_no_communication_owner(decision_policy: Policy) -> None:
    (opened,) = play(decision_policy, {"subject": "Crash", "tags": ["bug"]})
    assert opened.ticket.owner == DEE and opened.ticket.communication_owner is None
    assert ticket_view(opened.ticket)["communication_owner"] == {"role": "l2", "person": "dee"}
    assert ticket_view(opened.ticket)["split"] is False
    assert not [c for c in opened.changes if c.field == "communication_owner"]


def test_a_person_reassigning_the_ticket_ends_the_split(decision_policy: Policy) -> None:
    (opened,) = play(decision_policy, DISPUTE)
    override = event(
        2, "override", ticket=1, at=START, source="test",
        data={"action": "reassign", "person": "bo", "role": "l1", "reason": "bo takes it all"},
    )  # fmt: skip
    override = override.model_copy(update={"ticket_id": opened.ticket.id, "external": None})
    d = decide(opened.ticket, override, Context(), decision_policy, START)
    assert (d.ticket.owner, d.ticket.communication_owner) == (Owner(role="l1", person="bo"), None)


def test_a_second_split_keeps_the_person_who_has_the_customer() -> None:
    t = Ticket(id="T", created_at=START, updated_at=START, owner=ED, communication_owner=AL)
    assert _speaker(t, DEE) == AL  # ed hands on to dee: al still talks to the customer
    assert _speaker(t, Owner(role="l1", person="al")) is None  # back to al: one person does both
    unowned = Ticket(id="T", created_at=START, updated_at=START, owner=Owner(role="l1"))
    assert _speaker(unowned, ED) is None


def speakers(ticket: Ticket) -> list[str]:
    return [p.person for p in ticket.participants if p.role == "customer-communication"]


def test_the_responsible_participant_is_always_the_communication_owner(decision_policy: Policy) -> None:
    # al -> ed (split: al keeps the customer), then the 8 h tier-up to dee, a full transfer.
    decisions = play(decision_policy, DISPUTE, at="9h")
    opened, last = decisions[0].ticket, decisions[-1].ticket
    assert speakers(opened) == ["al"]
    assert (last.owner, last.communication_owner) == (DEE, None)
    assert speakers(last) == []  # the split ended: nobody else speaks for the ticket


def test_split_on_assist_is_a_located_check_error(problems_after: Problems) -> None:
    problems, path, line = problems_after(
        "escalation.yaml", "    mode: handoff\n    split: true\n", "    mode: assist\n    split: true\n"
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line + 1}:"), problems
    assert "`split` needs `mode: handoff`" in problems[0]
