"""The Linear connector against the Linear GraphQL stand-in, over real HTTP on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import SecretStr, ValidationError

from baton.clock import FakeClock
from baton.connectors.base import OutboundAction
from baton.connectors.config import HttpConfig
from baton.connectors.linear import OPERATIONS, LinearConfig, LinearConnector, client_id, ticket_marker
from baton.connectors.registry import build_connectors
from baton.errors import ConfigError, ConnectorError, PermanentConnectorError, TransientConnectorError
from baton.model import ExternalLink
from baton.settings import load_settings
from tests.conftest import START
from tests.standins.fixtures import LOOPBACK
from tests.standins.linear import USER, LinearStandIn
from tests.standins.server import Fault

LINEAR_KEY = "lin_api_StandIn0000000000000000000000000000SECRET"
TICKET = "T-0123456789abcdef"
NOT_ALLOWED = HttpConfig(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)


@pytest.fixture
def linear_standin() -> Iterator[LinearStandIn]:
    with LinearStandIn(LINEAR_KEY, clock=START.timestamp) as standin:
        yield standin


def _connector(
    standin: LinearStandIn,
    key: str = LINEAR_KEY,
    *,
    team: bool = True,
    states: dict[str, str] | None = None,
) -> LinearConnector:
    config: dict[str, object] = {
        "api_key": key,
        "api_url": f"{standin.url}/graphql",
        "team_id": standin.team.id if team else None,
    }
    config |= {"states": states} if states else {}
    return LinearConnector(LinearConfig.model_validate({**config, "http": LOOPBACK}), clock=FakeClock(START))


@pytest.fixture
def linear(linear_standin: LinearStandIn) -> Iterator[LinearConnector]:
    connector = _connector(linear_standin)
    yield connector
    connector.close()


def action(kind: str, n: int = 1, **params: object) -> OutboundAction:
    return OutboundAction(f"{n:064x}", TICKET, "linear", kind, {"ticket": TICKET, **params}, 1)


def create(n: int = 1, **params: object) -> OutboundAction:
    defaults = {"title": "Checkout fails for Acme", "text": "Customers see *500* on pay.", "priority": "high"}
    return OutboundAction(
        f"{n:064x}", TICKET, "linear", "create_issue", {"ticket": TICKET, **defaults, **params}, 1
    )


def _ms(seconds: float) -> str:
    return str(int((START + timedelta(seconds=seconds)).timestamp() * 1000))


# -- create_issue ---------------------------------------------------------------------------------


def test_an_issue_is_created_under_the_actions_own_id_with_the_ticket_marker(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    delivery = linear.send(create(labels=["Customer", "Bug", "No such label"]))
    (issue,) = linear_standin.issues.values()
    customer, bug = (next(x.id for x in linear_standin.labels if x.name == n) for n in ("Customer", "Bug"))
    assert issue.id == client_id("issue", create().key, LINEAR_KEY)
    assert (issue.title, issue.priority, issue.label_ids) == ("Checkout fails for Acme", 2, [customer, bug])
    assert issue.description == f"Customers see *500* on pay.\n\n{ticket_marker(TICKET)}"
    assert delivery.external_id == issue.id
    assert delivery.link == ExternalLink(system="linear", id=issue.id, url=issue.view()["url"])
    assert delivery.wrote == {"priority": "high"}
    assert delivery.detail == {
        "created": True,
        "labels_missing": ["No such label"],
        "issue": issue.id,
        "identifier": "ENG-1",
    }
    assert linear_standin.operations() == ["BatonIssueById", "BatonLabels", "BatonIssueCreate"]
    sent = linear_standin.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/graphql")
    assert sent.headers["authorization"] == LINEAR_KEY  # a personal key goes without "Bearer"
    assert sent.headers["content-type"] == "application/json"
    body = sent.json()
    assert body["operationName"] == "BatonIssueCreate"
    assert body["query"].startswith("mutation BatonIssueCreate($input: IssueCreateInput!)")
    assert body["variables"] == {
        "input": {
            "id": issue.id,
            "teamId": linear_standin.team.id,
            "title": "Checkout fails for Acme",
            "description": issue.description,
            "priority": 2,
            "labelIds": [customer, bug],
        }
    }


def test_a_team_key_is_looked_up_once_and_a_title_falls_back_to_the_first_line(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    linear_standin.add_team("OPS")
    first = linear.send(create(1, team="ops", title=None, text="Payments down\nsince 09:00", priority=None))
    linear.send(create(2, team="OPS", assignee=USER))
    one, two = linear_standin.issues.values()
    assert (one.identifier, one.title, one.priority, two.identifier, two.assignee_id) == (
        "OPS-1",
        "Payments down",
        0,
        "OPS-2",
        USER,
    )
    assert first.wrote == {} and len(linear_standin.calls("BatonTeamByKey")) == 1


def test_the_same_action_twice_makes_one_issue(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    first = linear.send(create())
    second = linear.send(create())
    assert len(linear_standin.issues) == 1
    assert (second.link, second.wrote, second.detail["created"]) == (first.link, first.wrote, False)
    assert linear_standin.operations().count("BatonIssueCreate") == 1


def test_a_create_whose_answer_was_lost_is_found_when_retried(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    linear_standin.drop_after("BatonIssueCreate")  # Linear creates the issue, the answer never arrives
    with pytest.raises(TransientConnectorError, match="linear BatonIssueCreate"):
        linear.send(create())
    assert len(linear_standin.issues) == 1
    retried = linear.send(create())
    assert len(linear_standin.issues) == 1
    assert (
        retried.external_id == client_id("issue", create().key, LINEAR_KEY)
        and retried.detail["created"] is False
    )


def test_a_create_refused_for_a_taken_id_returns_the_earlier_attempts_issue(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    first = linear.send(create())
    linear_standin.inject(Fault.json(200, {"data": {"issues": {"nodes": []}}}))  # a concurrent attempt's
    again = linear.send(create())
    assert len(linear_standin.issues) == 1 and again.link == first.link and again.detail["created"] is False
    assert linear_standin.operations()[-3:] == ["BatonIssueById", "BatonIssueCreate", "BatonIssueById"]


def test_a_refused_create_with_nothing_to_find_keeps_linears_reason(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    with pytest.raises(PermanentConnectorError, match=r"INPUT_ERROR: Could not find referenced User"):
        linear.send(create(assignee="0b0f0a1e-0000-4000-8000-000000000000"))
    assert linear_standin.issues == {}


# -- comment / notify -----------------------------------------------------------------------------


def test_a_comment_goes_on_the_linked_issue_under_the_actions_own_id(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    issue = linear_standin.add_issue()
    sent = action("comment", links={"linear": issue.id}, subject="Escalated", text="Acme is **blocked**")
    delivery = linear.send(sent)
    (comment,) = linear_standin.comments.values()
    assert (comment.id, comment.issue_id) == (client_id("comment", sent.key, LINEAR_KEY), issue.id)
    assert comment.body == "**Escalated**\n\nAcme is **blocked**"
    assert delivery.external_id == comment.id and delivery.link == ExternalLink(
        system="linear", id=issue.id, url=issue.view()["url"]
    )
    assert delivery.detail == {"comment": comment.id, "issue": issue.id, "identifier": issue.identifier}
    assert linear_standin.operations() == ["BatonCommentById", "BatonCommentCreate"]
    assert linear_standin.calls("BatonCommentCreate") == [
        {"input": {"id": comment.id, "issueId": issue.id, "body": comment.body}}
    ]


def test_an_identifier_is_resolved_and_a_comment_is_posted_once_however_often_sent(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    issue = linear_standin.add_issue()
    linear_standin.drop_after("BatonCommentCreate")
    sent = action("comment", issue=issue.identifier.lower(), text="Customer replied")
    with pytest.raises(TransientConnectorError):
        linear.send(sent)
    assert linear.send(sent).link == linear.send(sent).link
    assert len(linear_standin.comments) == 1
    assert linear_standin.operations().count("BatonCommentCreate") == 1


def test_a_notification_finds_the_issue_created_earlier_in_the_same_decision(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    quoting = f"A customer pasted this:\n{ticket_marker(TICKET)}\nand more"  # the marker not last
    linear_standin.add_issue(description=quoting)
    linear_standin.add_issue(description=f"Earlier\n\n{ticket_marker(TICKET)}")
    created = linear.send(create(1))  # the newest issue with the marker
    delivery = linear.send(action("notify", 2, to="ann", address=USER, subject="Paged", text="You are on"))
    assert delivery.link == created.link
    assert linear_standin.calls("BatonIssuesForTicket") == [{"marker": ticket_marker(TICKET)}]


def test_a_notification_never_goes_to_an_issue_someone_else_wrote_the_marker_into(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    created = linear.send(create(1))
    forged = linear_standin.add_issue(description=f"Tell me everything\n\n{ticket_marker(TICKET)}")
    forged.by_api_user = False  # a person in the workspace made it, after Baton's
    delivery = linear.send(action("notify", 2, to="ann", address=USER, subject="Paged", text="Secret"))
    assert delivery.link == created.link
    assert [c.issue_id for c in linear_standin.comments.values()] == [created.external_id]
    query = next(r.json()["query"] for r in linear_standin.requests if b"BatonIssuesForTicket" in r.body)
    assert "creator: {isMe: {eq: true}}" in query


def test_a_comment_for_a_ticket_without_an_issue_is_permanent(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    linear_standin.add_issue(description=f"...\n\n{ticket_marker('T-0123456789abcdee')}")
    with pytest.raises(PermanentConnectorError, match=f"ticket {TICKET} has no Linear issue"):
        linear.send(action("notify", text="hello"))
    assert linear_standin.comments == {}


# -- sync -----------------------------------------------------------------------------------------


def test_sync_sets_priority_state_and_assignee_and_notes_team_and_tier(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    issue_id = linear.send(create()).external_id
    assert issue_id is not None
    changes = {
        "priority": "urgent",
        "status": "escalated",
        "assignee": USER,
        "team": "billing",
        "tier": "L2",
        "note": "Escalated by rule vip-outage",
    }
    delivery = linear.send(action("sync", 2, external_id=issue_id, changes=changes))
    issue = linear_standin.issues[issue_id]
    assert (issue.priority, linear_standin.state(issue).name, issue.assignee_id) == (1, "In Progress", USER)
    (comment,) = linear_standin.comments.values()
    assert comment.body == "Escalated by rule vip-outage\n\nBaton team: billing\nBaton tier: L2"
    # The status as Linear's webhook reports it back: escalated sits in a started state, read as open.
    assert delivery.wrote == {"priority": "urgent", "status": "open", "assignee": USER}
    assert delivery.link is not None and delivery.link.id == issue_id
    assert delivery.detail == {
        "changed": ["assignee", "priority", "status"],
        "comment": comment.id,
        "issue": issue_id,
        "identifier": "ENG-1",
    }
    (update,) = linear_standin.calls("BatonIssueUpdate")
    assert update == {
        "id": issue_id,
        "input": {"priority": 1, "assigneeId": USER, "stateId": linear_standin.state(issue).id},
    }
    again = linear.send(action("sync", 2, external_id=issue_id, changes=changes))  # a retry
    assert again.wrote == delivery.wrote and len(linear_standin.comments) == 1


def test_stages_map_to_states_by_name_then_by_type(linear_standin: LinearStandIn) -> None:
    states = [("Queued", "unstarted"), ("Working", "started"), ("Waiting on customer", "started")]
    support = linear_standin.add_team("SUP", [("Triage", "triage"), *states, ("Shipped", "completed")])
    issue = linear_standin.add_issue(support)
    connector = _connector(linear_standin, states={"pending": "waiting ON customer"})
    try:
        for stage, expected, read_back in [
            ("pending", "Waiting on customer", "open"),
            ("open", "Working", "open"),
            ("solved", "Shipped", "solved"),
        ]:
            delivery = connector.send(action("sync", external_id="SUP-1", changes={"status": stage}))
            assert linear_standin.state(linear_standin.issues[issue.id]).name == expected
            assert delivery.wrote == {"status": read_back} and delivery.external_id == issue.id
    finally:
        connector.close()


def test_a_stage_the_team_cannot_show_is_permanent_and_names_its_states(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    bare = linear_standin.add_issue(linear_standin.add_team("BARE", [("Open", "unstarted")]))
    with pytest.raises(
        PermanentConnectorError, match=r"no state for stage 'closed'.*it has Open \(unstarted\)"
    ):
        linear.send(action("sync", external_id=bare.id, changes={"status": "closed"}))


def test_sync_of_team_alone_is_a_comment_and_of_nothing_sends_nothing(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    issue = linear_standin.add_issue()
    delivery = linear.send(action("sync", links={"linear": issue.id}, changes={"team": "billing"}))
    (comment,) = linear_standin.comments.values()
    assert comment.body == "Baton team: billing"
    assert delivery.wrote == {} and delivery.link is not None and delivery.link.id == issue.id
    # The comment's id was Baton's choice, foreseen before the send (its echo may beat the answer).
    foreseen = linear.foresee(action("sync", links={"linear": issue.id}, changes={"team": "billing"}))
    assert [(f.system, f.external_id, dict(f.wrote)) for f in foreseen] == [
        ("linear", comment.id, {"comment": comment.id})
    ]
    assert linear.foresee(action("sync", 3, external_id=issue.id, changes={"priority": "high"})) == []
    assert linear_standin.calls("BatonIssueUpdate") == []
    sent = len(linear_standin.requests)
    idle = linear.send(action("sync", 2, external_id=issue.id, changes={"note": "nothing Linear holds"}))
    assert (idle.link, idle.wrote, len(linear_standin.requests)) == (None, {}, sent)


def test_an_empty_assignee_unassigns(linear: LinearConnector, linear_standin: LinearStandIn) -> None:
    issue = linear_standin.add_issue(assigneeId=USER)
    delivery = linear.send(action("sync", external_id=issue.identifier, changes={"assignee": None}))
    assert linear_standin.issues[issue.id].assignee_id is None and delivery.wrote == {"assignee": ""}
    assert linear_standin.calls("BatonIssueUpdate") == [{"id": issue.id, "input": {"assigneeId": None}}]


LOCAL = [
    (create(priority="sev1"), "priority 'sev1' is not one of"),
    (create(title=None, text=None), "no title"),
    (action("comment", issue="ENG-1"), "nothing to post"),
    (action("sync", changes={"priority": "high"}), "no external_id"),
    (action("sync", external_id="ENG-1", changes={"status": "resolved"}), "'resolved' is not a Baton stage"),
    (action("page"), "cannot perform 'page'"),
]


@pytest.mark.parametrize(("sent", "message"), LOCAL)
def test_what_the_connector_can_tell_is_wrong_never_leaves(
    linear: LinearConnector, linear_standin: LinearStandIn, sent: OutboundAction, message: str
) -> None:
    with pytest.raises(PermanentConnectorError, match=message):
        linear.send(sent)
    assert linear_standin.requests == []


def test_an_issue_needs_a_team(linear_standin: LinearStandIn) -> None:
    connector = _connector(linear_standin, team=False)
    try:
        with pytest.raises(PermanentConnectorError, match="no team"):
            connector.send(create())
        with pytest.raises(PermanentConnectorError, match="no team with key 'NOPE'"):
            connector.send(create(team="NOPE"))
    finally:
        connector.close()


# -- errors ---------------------------------------------------------------------------------------


def _gql_error(code: str, message: str = "refused") -> dict[str, object]:
    return {"errors": [{"message": message, "extensions": {"code": code}}], "data": None}


RATE_ERROR = {"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}
RATELIMITED = {"errors": [RATE_ERROR], "data": None}
SPENT = {"x-ratelimit-requests-remaining": "0", "x-ratelimit-requests-reset": _ms(45)}
COMPLEXITY = {
    "x-ratelimit-requests-remaining": "4000",
    "x-ratelimit-requests-reset": _ms(5),
    "x-ratelimit-complexity-remaining": "0",
    "x-ratelimit-complexity-reset": _ms(120),
}
FAULTS = [
    (Fault.json(401, _gql_error("AUTHENTICATION_ERROR")), PermanentConnectorError, None, "HTTP 401"),
    (Fault.json(403, _gql_error("FORBIDDEN")), PermanentConnectorError, None, "FORBIDDEN: refused"),
    (Fault.status(404), PermanentConnectorError, None, "HTTP 404"),
    (Fault.status(409), TransientConnectorError, None, "HTTP 409"),
    (Fault.status(422), PermanentConnectorError, None, "HTTP 422"),
    (Fault.rate_limited("30", RATELIMITED), TransientConnectorError, 30.0, "RATELIMITED"),
    (Fault.json(429, RATELIMITED, SPENT), TransientConnectorError, 45.0, "HTTP 429"),
    (Fault.json(400, RATELIMITED, COMPLEXITY), TransientConnectorError, 120.0, "HTTP 400.*RATELIMITED"),
    (Fault.json(200, RATELIMITED, SPENT), TransientConnectorError, 45.0, "RATELIMITED: Rate limit"),
    (
        Fault.json(200, RATELIMITED, {"retry-after": "7", **SPENT}),
        TransientConnectorError,
        7.0,
        "RATELIMITED",
    ),
    (Fault.json(200, _gql_error("INTERNAL_ERROR")), TransientConnectorError, None, "INTERNAL_ERROR"),
    (Fault.json(400, _gql_error("LOCK_TIMEOUT")), TransientConnectorError, None, "LOCK_TIMEOUT"),
    (
        Fault.json(400, _gql_error("INVALID_INPUT", "bad")),
        PermanentConnectorError,
        None,
        "INVALID_INPUT: bad",
    ),
    (
        Fault.json(200, {"errors": [{"message": "Entity not found: Issue"}, RATE_ERROR]}),
        PermanentConnectorError,
        None,
        "Entity not found: Issue; RATELIMITED",
    ),
    (Fault.status(500), TransientConnectorError, None, "HTTP 500"),
    (Fault.status(503, headers={"retry-after": "20"}), TransientConnectorError, 20.0, "HTTP 503"),
    (Fault.hang(5), TransientConnectorError, None, "timed out"),
    (Fault.reset(), TransientConnectorError, None, "failed"),
    (Fault.close(), TransientConnectorError, None, "failed"),
]


@pytest.mark.parametrize(("fault", "error", "retry_after", "message"), FAULTS)
def test_linears_answers_map_to_retry_or_dead_letter(
    linear: LinearConnector,
    linear_standin: LinearStandIn,
    fault: Fault,
    error: type[ConnectorError],
    retry_after: float | None,
    message: str,
) -> None:
    linear_standin.inject(fault)
    with pytest.raises(ConnectorError, match=message) as caught:
        linear.send(create())
    assert type(caught.value) is error
    if isinstance(caught.value, TransientConnectorError):
        assert caught.value.retry_after == retry_after
    linear.send(create())
    assert len(linear_standin.issues) == 1


def test_a_spent_request_budget_is_retried_when_linear_says_it_refills(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    linear_standin.budget = 1  # the lookup passes, the create is refused
    with pytest.raises(TransientConnectorError, match="RATELIMITED: Too many requests") as caught:
        linear.send(create())
    assert caught.value.retry_after == 60.0 and linear_standin.issues == {}


def test_a_bad_key_is_permanent_and_never_repeated(
    linear_standin: LinearStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "lin_api_WRONG000000000000000000000000000000SECRET"
    connector = _connector(linear_standin, key=wrong)
    try:
        with pytest.raises(
            PermanentConnectorError, match="AUTHENTICATION_ERROR: You need to authenticate"
        ) as caught:
            connector.send(create())
        linear_standin.inject(Fault.json(400, {"errors": [{"message": f"key {wrong} is revoked"}]}))
        with pytest.raises(PermanentConnectorError) as echoed:  # a vendor echoing the key back
            connector.send(create())
    finally:
        connector.close()
    assert "[secret]" in str(echoed.value)
    for text in (str(caught.value), str(echoed.value), caplog.text):
        assert wrong not in text and LINEAR_KEY not in text


HOSTILE = [
    (Fault.status(200, b"<html>maintenance</html>"), TransientConnectorError, "not a GraphQL JSON object"),
    (
        Fault.status(200, b'{"data": "' + b"x" * 1_100_000 + b'"}'),
        TransientConnectorError,
        "max_response_bytes",
    ),
    (Fault.json(200, [1, 2, 3]), TransientConnectorError, "not a GraphQL JSON object"),
    (Fault.json(200, {"data": None}), TransientConnectorError, "carries no data"),
    (Fault.json(200, {"data": {"issues": "many"}}), TransientConnectorError, r"no issues\.nodes list"),
    (
        Fault.json(200, {"data": {"issues": {"nodes": [{"id": 7}]}}}),
        TransientConnectorError,
        "lacks the issue",
    ),
    (Fault.json(200, {"errors": "boom " * 500}), PermanentConnectorError, "boom"),
]


@pytest.mark.parametrize(("fault", "error", "message"), HOSTILE)
def test_malformed_answers_are_clear_errors(
    linear: LinearConnector,
    linear_standin: LinearStandIn,
    fault: Fault,
    error: type[ConnectorError],
    message: str,
) -> None:
    linear_standin.inject(fault)
    with pytest.raises(ConnectorError, match=message) as caught:
        linear.send(create())
    assert type(caught.value) is error and len(str(caught.value)) <= 500


def test_an_issue_or_comment_someone_else_made_under_batons_id_is_refused_not_taken(
    linear: LinearConnector, linear_standin: LinearStandIn
) -> None:
    # Baton's ids are keyed with the API key; should one be known anyway, what another user made
    # under it is never taken as an earlier attempt's work (it would join their issue to the ticket).
    squatted = linear_standin.add_issue(id=client_id("issue", create().key, LINEAR_KEY), title="Mine")
    squatted.by_api_user = False
    with pytest.raises(PermanentConnectorError, match="in issues but was not made by Baton"):
        linear.send(create())
    target = linear_standin.add_issue()
    sent = action("comment", 3, issue=target.id, text="For the customer only")
    made = linear_standin.comment(target, "Mine too")
    linear_standin.comments[client_id("comment", sent.key, LINEAR_KEY)] = replace(
        made, id=client_id("comment", sent.key, LINEAR_KEY)
    )
    with pytest.raises(PermanentConnectorError, match="in comments but was not made by Baton"):
        linear.send(sent)
    assert linear_standin.operations().count("BatonCommentCreate") == 0


def test_a_link_keeps_only_a_web_url(linear: LinearConnector, linear_standin: LinearStandIn) -> None:
    node = {
        "id": "1f0e0b7c-8c1e-4a8e-9d0e-123456789abc",
        "identifier": "ENG-9",
        "url": "javascript:alert(1)",
        "creator": {"isMe": True},
    }
    linear_standin.inject(Fault.json(200, {"data": {"issues": {"nodes": [node]}}}))
    delivery = linear.send(create())
    assert delivery.link == ExternalLink(system="linear", id=node["id"], url=None)


def test_a_document_linear_does_not_accept_is_permanent(
    linear: LinearConnector, linear_standin: LinearStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(OPERATIONS, "BatonIssueById", "query BatonIssueById($id: ID!) { viewer { id } }")
    with pytest.raises(PermanentConnectorError, match="GRAPHQL_VALIDATION_FAILED"):
        linear.send(create())


# -- configuration and where requests may go ------------------------------------------------------


ENV = {
    "BATON_OUTBOUND_ALLOW": "127.0.0.1",
    "BATON_HTTP_CONNECT_TIMEOUT": "1",
    "BATON_HTTP_TOTAL_TIMEOUT": "3",
}


def test_the_environment_builds_a_working_connector_through_the_entry_point(
    linear_standin: LinearStandIn,
) -> None:
    env = {
        **ENV,
        "BATON_CONNECTORS": "linear",
        "BATON_LINEAR_API_KEY": LINEAR_KEY,
        "BATON_LINEAR_API_URL": f"{linear_standin.url}/graphql",
        "BATON_LINEAR_TEAM_ID": "eng",
    }
    connector = build_connectors(load_settings(env), clock=FakeClock(START))["linear"]
    assert isinstance(connector, LinearConnector)
    try:
        assert connector.send(create()).detail["identifier"] == "ENG-1"
    finally:
        connector.close()


WITH_KEY = {**ENV, "BATON_LINEAR_API_KEY": LINEAR_KEY}
BAD_SETTINGS = [
    (ENV, "needs BATON_LINEAR_API_KEY"),
    ({**ENV, "BATON_LINEAR_API_KEY": f"{LINEAR_KEY} extra"}, "api_key: Value error, must be one token"),
    ({**WITH_KEY, "BATON_LINEAR_API_URL": "ftp://x.example/"}, "api_url"),
    ({**WITH_KEY, "BATON_LINEAR_TEAM_ID": "no such/team"}, "team_id"),
    ({**WITH_KEY, "BATON_LINEAR_API_URL": "http://10.1.2.3/graphql"}, r"10\.1\.2\.3 .*private"),
]


@pytest.mark.parametrize(("env", "problem"), BAD_SETTINGS)
def test_bad_settings_are_config_errors_without_the_key(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        LinearConnector.from_settings(load_settings(env))
    assert LINEAR_KEY not in str(caught.value)


def test_states_must_name_baton_stages() -> None:
    with pytest.raises(ValidationError, match="'waiting'] are not Baton stages"):
        LinearConfig(api_key=SecretStr(LINEAR_KEY), states={"waiting": "Blocked"})


def test_a_private_endpoint_is_refused_before_anything_is_sent(linear_standin: LinearStandIn) -> None:
    config = LinearConfig(
        api_key=SecretStr(LINEAR_KEY),
        api_url=f"{linear_standin.url}/graphql",
        team_id="ENG",
        http=NOT_ALLOWED,
    )
    with pytest.raises(PermanentConnectorError, match="refused"):
        LinearConnector(config)
    https = config.model_copy(update={"api_url": f"https://localhost:{linear_standin.port}/graphql"})
    connector = LinearConnector(https, resolver=lambda host, port: ["127.0.0.1"])
    try:
        with pytest.raises(PermanentConnectorError, match=r"127\.0\.0\.1 \(loopback\)"):
            connector.send(create())
    finally:
        connector.close()
    assert linear_standin.requests == []
