"""What decide prepares once per policy: rule walks compiled into one function, walks cached on the
policy (and rebuilt for a copy with other rules), and the environment rebuilt only when a field an
expression can see changed."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from baton.engine.decide_walk import Walk, listening, routing
from baton.engine.env import VIEWED_FIELDS, ticket_view
from baton.model import EscalationRecord, ExternalLink, Owner, Priority, SlaClock, Stage, Ticket, replace
from baton.policy.expr import compile_expression
from baton.policy.expr_walk import compile_walk
from baton.policy.model import Policy
from tests.conftest import START

CONDITIONS = [
    'ticket.priority == "urgent"',
    "account.mrr > 1000",
    'contains_any(ticket.subject, ["outage", "down"])',
    "ticket.subject < 3",  # fails: str against int
    'ticket.tags[0] == "vip"',
    "account.mrr / account.seats > 10",  # fails when seats is 0
    "True",
]
ENVS = [
    {"ticket": {"priority": "urgent", "subject": "x", "tags": []}, "account": {}},
    {"ticket": {"priority": "low", "subject": "all down", "tags": []}, "account": {"mrr": 5}},
    {"ticket": {"priority": "low", "subject": "fine", "tags": ["vip"]}, "account": {"mrr": 5}},
    {"ticket": {"priority": "low", "subject": 1, "tags": ["vip"]}, "account": {"mrr": 5, "seats": 0}},
    {"ticket": {"priority": "low", "subject": 9, "tags": []}, "account": {"mrr": 5, "seats": 0}},
    {"ticket": None, "account": {"mrr": 5000}},
    {},
]


def _reference(conditions: list[str], env: dict[str, object], start: int) -> int:
    for index in range(start, len(conditions)):
        hit, error = compile_expression(conditions[index]).evaluate_bool_safe(env)
        if error is not None:
            return -1 - index
        if hit:
            return index
    return len(conditions)


@pytest.mark.parametrize("env", ENVS)
def test_a_compiled_walk_stops_where_the_conditions_one_by_one_stop(env: dict[str, object]) -> None:
    walk = compile_walk([compile_expression(c) for c in CONDITIONS])
    for start in range(len(CONDITIONS) + 1):
        assert walk(env, start) == _reference(CONDITIONS, env, start), start
    assert compile_walk([])(env, 0) == 0


def test_a_walk_reports_a_failed_rule_with_its_own_message() -> None:
    walk = Walk(
        names=tuple(f"r{i}" for i in range(len(CONDITIONS))),
        conditions=tuple(compile_expression(c, where=f"rule r{i}") for i, c in enumerate(CONDITIONS)),
        paths=((),) * len(CONDITIONS),
    )
    index, error = walk.first(ENVS[4], 1)
    assert index == 2 and error is not None and error.startswith("rule r2:1:")  # contains_any of 9


def test_prepared_walks_follow_the_policys_rules(policy: Policy) -> None:
    assert routing(policy) is routing(policy)
    fewer = replace(policy, routing=policy.routing[:-1])  # shares the `prepared` dict
    assert fewer.prepared is policy.prepared
    assert routing(fewer).routes == tuple(r for r in policy.routing[:-1] if r.enabled)
    assert routing(policy).routes == tuple(r for r in policy.routing if r.enabled)
    off = dataclasses.replace(
        policy, escalations=tuple(replace(r, enabled=False) for r in policy.escalations)
    )
    assert listening(off, "ticket.created").rules == ()


def _ticket() -> Ticket:
    return Ticket(
        id="T-1",
        created_at=START,
        updated_at=START,
        subject="Hello",
        tags=("a",),
        owner=Owner(role="l1", person="al"),
        stage=Stage.OPEN,
        stage_since=START,
        brief={"summary": "s"},
        external_links=(ExternalLink(system="zendesk", id="1"),),
    )


def test_the_view_changes_with_every_viewed_field_and_no_other() -> None:
    t = _ticket()
    changed = {
        "sla": (SlaClock(name="resolution", started_at=START, due_at=START, policy_version="v"),),
        "sla_policy": "standard",
        "sla_held_by": "al",
        "solved_at": START,
        "policy_version": "v2",
        "version": 7,
        "participants": ("x",),
        "artifacts": ("y",),
        "id": "T-2",
        "subject": "Other",
        "body": "b",
        "channel": "email",
        "requester": "r",
        "account_id": "acme",
        "category": "c",
        "severity": "s",
        "priority": Priority.HIGH,
        "tier": "L2",
        "stage": Stage.PENDING,
        "stage_since": START + timedelta(1),
        "queue": "q",
        "team": "t",
        "owner": Owner(role="l2", person=None),
        "communication_owner": Owner(role="l1", person="al"),
        "tags": ("b",),
        "created_at": START + timedelta(2),
        "updated_at": START + timedelta(3),
        "first_response_at": START,
        "reopen_count": 1,
        "customer_replies": 2,
        "agent_replies": 3,
        "escalations": (_record(),),
        "external_links": (),
        "brief": {"summary": "other"},
    }
    assert set(changed) == {f.name for f in dataclasses.fields(Ticket)}
    before = ticket_view(t)
    for name, value in changed.items():
        after = ticket_view(replace(t, **{name: value}))
        assert (after != before) == (name in VIEWED_FIELDS), name


def _record() -> EscalationRecord:
    return EscalationRecord(
        at=START,
        rule="escalation.x",
        kind="functional",
        mode="assist",
        from_tier=None,
        to_tier=None,
        from_owner=None,
        to_owner=None,
        policy_version="v",
    )
