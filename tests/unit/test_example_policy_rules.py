"""What the example policy promises beyond its YAML cases: no customer message on a contract
question without approval, ever, and each effect through the connector that really carries it."""

from __future__ import annotations

from typing import Any

import pytest

from baton.model import Action
from baton.policy.loader import load_policy
from baton.policy.model import Policy
from baton.policy.testing import TestCase, run_case
from tests.conftest import EXAMPLE_POLICY

ENTERPRISE = {"id": "acme", "name": "Acme", "plan": "enterprise", "mrr": 20000, "ae": "jo@acme.example"}
REQUESTER = "cto@acme.example"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(EXAMPLE_POLICY)


def actions_of(policy: Policy, **case: Any) -> list[Action]:
    result = run_case(policy, TestCase.model_validate({"name": "probe", "expect": {}, **case}))
    assert result.ok, result.failures
    return [action for decision in result.decisions for action in decision.actions]


def to_customer(actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.kind == "notify" and a.params.get("address") == REQUESTER]


def test_a_contract_question_never_messages_the_customer_without_approval(policy: Policy) -> None:
    actions = actions_of(
        policy,
        account=ENTERPRISE,
        ticket={"subject": "Question about contract clause 7.2", "priority": "high", "requester": REQUESTER},
        at="10h",
    )
    held = to_customer(actions)
    assert held, "the legal acknowledgement should be there, waiting"
    assert all(a.approval == "required" for a in held), [(a.name, a.approval) for a in held]
    reminders = [a for a in actions if a.params.get("template") == "update-due"]
    assert len(reminders) >= 4, "an update is due every 2 h for 10 h"
    assert not [a for a in actions if a.params.get("template") == "status-update"]


def test_other_urgent_enterprise_tickets_get_their_status_updates(policy: Policy) -> None:
    # The control: the cadence runs, and on a ticket that is not a contract question it writes to
    # the customer directly.
    actions = actions_of(
        policy,
        account=ENTERPRISE,
        ticket={"subject": "Reports are slow", "priority": "high", "requester": REQUESTER},
        at="10h",
    )
    updates = [a for a in to_customer(actions) if a.params.get("template") == "status-update"]
    assert len(updates) >= 4
    assert {(a.connector, a.approval) for a in updates} == {("email", "none")}


def test_an_enterprise_outage_pages_through_pagerduty_and_opens_a_slack_channel(policy: Policy) -> None:
    actions = actions_of(policy, account=ENTERPRISE, ticket={"subject": "Production outage: app is down"})
    by_name = {a.name: a for a in actions}
    page = by_name["routing.enterprise-outage.page"]
    assert (page.connector, page.kind, page.params["event_action"]) == ("pagerduty", "page", "trigger")
    channel = by_name["routing.enterprise-outage.incident-channel"]
    assert (channel.connector, channel.kind) == ("slack", "incident_channel")


def test_a_billing_dispute_tells_the_ae_by_email_and_holds_collections_in_billing(policy: Policy) -> None:
    actions = actions_of(
        policy,
        account={**ENTERPRISE, "renewal_date": "2026-04-01"},
        ticket={"subject": "Charged twice", "body": "Invoice 1042 was charged twice.", "category": "billing"},
    )
    heads_up = [a for a in actions if a.params.get("template") == "ae-heads-up"]
    assert [(a.connector, a.params["address"]) for a in heads_up] == [("email", "jo@acme.example")]
    (hold,) = [a for a in actions if a.name == "escalation.billing-dispute-renewal.pause-collections"]
    assert (hold.connector, hold.kind) == ("webhook", "collections_hold")


def test_no_effect_of_the_example_goes_to_the_log_connector(policy: Policy) -> None:
    rules = [*policy.routing, *policy.escalations]
    assert all(action.connector != "log" for rule in rules for action in rule.actions)
    assert all(notify.connector != "log" for rule in rules for notify in rule.notify)
