"""The Jira connector against the Jira Cloud stand-in, over real HTTP on loopback."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from baton.clock import FakeClock
from baton.connectors.base import OutboundAction
from baton.connectors.config import HttpConfig
from baton.connectors.jira import JiraConfig, JiraConnector, dedup_label
from baton.errors import (
    ConfigError,
    ConnectorError,
    DeferredDelivery,
    PermanentConnectorError,
    TransientConnectorError,
)
from baton.settings import load_settings
from tests.conftest import START
from tests.standins.fixtures import LOOPBACK
from tests.standins.jira import JIRA_USERS, JiraStandIn
from tests.standins.server import Fault

EMAIL = "baton@acme.example"
TOKEN = "ATATT3xFfGF0-standin-SECRET-token"
TICKET = "T-0123456789ABCDEF"
TICKET_LABEL = "baton-t-0123456789abcdef"
BASIC = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()


@pytest.fixture
def jira_standin() -> Iterator[JiraStandIn]:
    with JiraStandIn(EMAIL, TOKEN, projects=("PROJ", "OPS")) as standin:
        yield standin


def _connector(standin: JiraStandIn, *, token: str = TOKEN, **config: Any) -> JiraConnector:
    settings = JiraConfig(
        url=standin.url, email=EMAIL, api_token=SecretStr(token), project="PROJ", http=LOOPBACK, **config
    )
    return JiraConnector(settings, clock=FakeClock(START))


@pytest.fixture
def jira(jira_standin: JiraStandIn) -> Iterator[JiraConnector]:
    connector = _connector(jira_standin)
    yield connector
    connector.close()


def act(kind: str, n: int = 1, *, attempt: int = 1, ticket: str = TICKET, **params: object) -> OutboundAction:
    return OutboundAction(f"{n:064x}", ticket, "jira", kind, {"ticket": ticket, **params}, attempt)


def create(n: int = 1, *, attempt: int = 1, **params: object) -> OutboundAction:
    merged = {"ticket": TICKET, "subject": "Checkout fails", **params}
    return OutboundAction(f"{n:064x}", TICKET, "jira", "create_issue", merged, attempt)


def paragraph(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(nodes)}


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


# -- create_issue ---------------------------------------------------------------------------


def test_an_issue_is_created_as_jira_documents_it(jira: JiraConnector, jira_standin: JiraStandIn) -> None:
    delivery = jira.send(
        create(
            text="Acme cannot pay.\nSince 09:00.\n\nThree reports.",
            priority="high",
            labels=["vip customer", "billing"],
        )
    )
    search, made = jira_standin.requests
    assert (search.method, search.path) == ("POST", "/rest/api/3/search/jql")
    assert search.json() == {
        "jql": f'labels = "{dedup_label(f"{1:064x}")}" AND creator = currentUser() ORDER BY created ASC',
        "fields": ["key", "labels"],
        "maxResults": 10,
    }
    assert (made.method, made.path) == ("POST", "/rest/api/3/issue")
    assert made.headers["authorization"] == f"Basic {BASIC}"
    assert made.headers["content-type"] == "application/json"
    assert made.json() == {
        "fields": {
            "priority": {"name": "High"},
            "project": {"key": "PROJ"},
            "issuetype": {"name": "Task"},
            "summary": "Checkout fails",
            "labels": [f"baton-{1:064x}", TICKET_LABEL, "vip-customer", "billing"],
            "description": {
                "type": "doc",
                "version": 1,
                "content": [
                    paragraph(text("Acme cannot pay."), {"type": "hardBreak"}, text("Since 09:00.")),
                    paragraph(text("Three reports.")),
                ],
            },
        },
        "properties": [{"key": "baton", "value": {"key": f"{1:064x}", "ticket": TICKET}}],
    }
    (issue,) = jira_standin.issues
    assert (issue.key, issue.priority, issue.text()) == (
        "PROJ-1",
        "High",
        "Acme cannot pay.\nSince 09:00.\nThree reports.",
    )
    assert delivery.external_id == "PROJ-1"
    assert delivery.link is not None
    assert (delivery.link.system, delivery.link.id, delivery.link.url) == (
        "jira",
        "10001",
        f"{jira_standin.url}/browse/PROJ-1",
    )
    assert delivery.wrote == {"priority": "high"}
    assert delivery.detail == {"issue": "PROJ-1", "id": "10001", "created": True}


def test_defaults_and_overrides_of_an_issue(jira: JiraConnector, jira_standin: JiraStandIn) -> None:
    jira.send(create(1, subject=None))
    jira.send(create(2, summary="Line one\nline two", project="OPS", issue_type="Bug", subject="ignored"))
    first, second = jira_standin.issues
    assert (first.key, first.summary, first.issuetype, first.description) == (
        "PROJ-1",
        f"Baton ticket {TICKET}",
        "Task",
        None,
    )
    assert (second.key, second.summary, second.issuetype) == ("OPS-1", "Line one line two", "Bug")


def test_a_create_retried_after_a_lost_response_makes_one_issue(jira_standin: JiraStandIn) -> None:
    jira_standin.lose_response("POST", "/rest/api/3/issue")
    first = _connector(jira_standin)
    with pytest.raises(TransientConnectorError):
        first.send(create())
    first.close()
    assert len(jira_standin.issues) == 1  # Jira made it; the answer never came back
    retry = _connector(jira_standin)  # another worker: nothing remembered, the search finds it
    try:
        delivery = retry.send(create())
    finally:
        retry.close()
    assert len(jira_standin.issues) == 1
    assert delivery.detail["created"] is False and delivery.external_id == "PROJ-1"


def test_a_resent_create_finds_its_issue_before_search_has_indexed_it(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    jira_standin.lagging = True
    jira.send(create())
    again = jira.send(create())  # e.g. the outbox could not record the first success
    assert len(jira_standin.issues) == 1 and again.detail["created"] is False
    assert jira_standin.calls("POST", "/search/jql")[-1].json()["reconcileIssues"] == [10001]


def test_a_retry_after_a_restart_waits_for_search_before_creating(jira_standin: JiraStandIn) -> None:
    """The worker was killed after Jira created the issue: the next process knows nothing of it,
    and search has not indexed it yet. The retry waits instead of creating a second issue."""
    jira_standin.lagging = True
    first = _connector(jira_standin)
    try:
        first.send(create())  # created; the worker dies before recording it
    finally:
        first.close()
    restarted = _connector(jira_standin)
    try:
        with pytest.raises(DeferredDelivery, match="searching again in 30 s") as wait:
            restarted.send(create(attempt=2))
        assert wait.value.retry_after == 30.0
        jira_standin.reindex()  # the index caught up while the action waited
        again = restarted.send(create(attempt=3))
        assert again.external_id == "PROJ-1" and again.detail["created"] is False
    finally:
        restarted.close()
    assert len(jira_standin.issues) == 1


def test_the_remaining_window_an_index_lagging_longer_than_the_wait(jira_standin: JiraStandIn) -> None:
    jira_standin.lagging = True
    jira_standin.lose_response("POST", "/rest/api/3/issue")
    connector = _connector(jira_standin, search_settle_seconds=5)
    try:
        with pytest.raises(TransientConnectorError):
            connector.send(create())  # created, the answer lost: nothing names its id
        with pytest.raises(DeferredDelivery, match="in 5 s"):
            connector.send(create(attempt=2))
        connector.send(create(attempt=3))  # still not indexed after the wait: a second issue
        assert [i.key for i in jira_standin.issues] == ["PROJ-1", "PROJ-2"]
        jira_standin.reindex()
        assert connector.send(create(attempt=4)).external_id == "PROJ-1"  # once indexed: the oldest
    finally:
        connector.close()
    assert len(jira_standin.issues) == 2


def test_a_time_lagged_index_is_outwaited(jira_standin: JiraStandIn) -> None:
    """With the stand-in's index 0.3 s behind, a 0.5 s wait is enough: one issue, found again."""
    jira_standin.index_lag = 0.3
    first = _connector(jira_standin)
    try:
        first.send(create())
    finally:
        first.close()
    restarted = _connector(jira_standin, search_settle_seconds=0.5)
    try:
        with pytest.raises(DeferredDelivery) as wait:
            restarted.send(create(attempt=2))
        time.sleep(wait.value.retry_after)
        assert restarted.send(create(attempt=3)).detail["created"] is False
    finally:
        restarted.close()
    assert len(jira_standin.issues) == 1


def test_a_first_attempt_and_a_settled_retry_create_at_once(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    assert jira.send(create(1)).detail["created"] is True
    assert jira.send(create(2, attempt=3)).detail["created"] is True
    assert len(jira_standin.issues) == 2
    no_wait = _connector(jira_standin, search_settle_seconds=0)
    try:
        assert no_wait.send(create(3, attempt=2)).detail["created"] is True
    finally:
        no_wait.close()


def test_two_actions_on_one_ticket_make_two_issues_and_one_action_one(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    assert jira.send(create(1)).external_id == "PROJ-1"
    assert jira.send(create(2)).external_id == "PROJ-2"
    assert jira.send(create(1)).external_id == "PROJ-1"
    assert [TICKET_LABEL in i.labels for i in jira_standin.issues] == [True, True]


# -- comment / notify -----------------------------------------------------------------------


def test_a_comment_goes_to_the_linked_issue_with_the_action_key_in_a_property(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    jira.send(create())
    delivery = jira.send(act("comment", 2, subject="Update", text="Fixed in 1.2", links={"jira": "10001"}))
    (comment,) = jira_standin.issues[0].comments
    assert comment.body == {"type": "doc", "version": 1, "content": [
        paragraph(text("Update", marks=[{"type": "strong"}])),
        paragraph(text("Fixed in 1.2")),
    ]}  # fmt: skip
    assert comment.properties == {"baton": {"key": f"{2:064x}", "ticket": TICKET}}
    assert delivery.external_id == str(comment.id)
    assert delivery.link is not None and delivery.link.id == "10001"
    assert delivery.detail == {"issue": "PROJ-1", "id": "10001", "comment": str(comment.id), "created": True}
    jira.send(act("comment", 3, text="by key", issue="proj-1"))
    jira.send(act("comment", 4, text="by label"))  # no issue named: the ticket's label finds it
    assert [c.properties["baton"]["key"][-1] for c in jira_standin.issues[0].comments] == ["2", "3", "4"]


def test_a_comment_retried_after_a_lost_response_is_posted_once(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    jira.send(create())
    issue = jira_standin.issues[0]
    for n in range(120):  # others comment meanwhile: the retried comment is on the third page
        jira_standin.add_comment(issue, f"noise {n}", {"baton": {"key": "someone else"}} if n % 2 else None)
    jira_standin.lose_response("POST", "/comment")
    jira_standin.add_comment(issue, "older")
    with pytest.raises(TransientConnectorError):
        jira.send(act("comment", 2, text="Escalated", issue="PROJ-1"))
    for n in range(130):
        jira_standin.add_comment(issue, f"later {n}")
    delivery = jira.send(act("comment", 2, text="Escalated", issue="PROJ-1"))
    mine = [c for c in issue.comments if c.properties.get("baton", {}).get("key") == f"{2:064x}"]
    assert len(mine) == 1 and delivery.detail["created"] is False and delivery.external_id == str(mine[0].id)
    listed = jira_standin.calls("POST", "/comment/list")
    assert all(r.query == {"expand": "properties"} for r in listed)
    gets = jira_standin.calls("GET", "/comment")
    assert gets[-1].query == {"orderBy": "-created", "startAt": "100", "maxResults": "50"}


def test_a_notify_comments_and_mentions_an_account_id(jira: JiraConnector, jira_standin: JiraStandIn) -> None:
    jira.send(create())
    jira.send(act("notify", 2, to="ann", address=JIRA_USERS[1], subject="Escalated", text="Please look"))
    jira.send(act("notify", 3, to="l2", address="ann@acme.example", subject="", text="Role ping"))
    first, second = jira_standin.issues[0].comments
    assert first.body["content"][0] == paragraph(
        {"type": "mention", "attrs": {"id": JIRA_USERS[1]}},
        text(" "),
        text("Escalated", marks=[{"type": "strong"}]),
    )
    assert second.body["content"] == [paragraph(text("Role ping"))]


def test_a_comment_without_an_issue_waits_for_search_then_gives_up(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    with pytest.raises(TransientConnectorError, match=f"none labelled {TICKET_LABEL}") as waiting:
        jira.send(act("comment", text="hello"))
    assert waiting.value.retry_after == 15.0
    with pytest.raises(PermanentConnectorError, match=f"no issue for ticket {TICKET}"):
        jira.send(act("comment", text="hello", attempt=3))


def test_a_comment_never_goes_to_an_issue_someone_else_labelled_with_the_ticket(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    older, mine = jira.send(create(1)), jira.send(create(2))
    jira_standin.issue(older.external_id or "").by_api_user = False  # a person's issue, labelled alike
    jira.send(act("comment", text="For the customer's team only"))
    assert [len(i.comments) for i in jira_standin.issues] == [0, 1]
    assert jira_standin.issues[1].key == mine.external_id


WHAT_IS_REFUSED = [
    (act("comment", text="x", issue="../../rest/api/3/myself"), "is not an issue key or id"),
    (act("comment", text="x", links={"jira": "PROJ-1?x=1"}), "is not an issue key or id"),
    (act("comment", subject="", text=""), "nothing to post"),
    (act("transition", issue="PROJ-1"), "give params.transition or params.status"),
    (create(priority="sev1"), "priority 'sev1' is not one of low, normal, high, urgent"),
    (create(labels=["x" * 300]), "not a usable label"),
    (act("sync", external_id="PROJ-1", changes="priority=high"), "changes is not a mapping"),
    (act("sync", external_id="PROJ-1", changes={"priority": "p1"}), "priority 'p1' is not one of"),
    (act("sync", external_id="", changes={}), "external_id '' is not an issue key or id"),
    (act("page"), "cannot perform 'page'"),
]


@pytest.mark.parametrize(("sent", "message"), WHAT_IS_REFUSED)
def test_what_the_connector_can_tell_is_wrong_never_leaves(
    jira: JiraConnector, jira_standin: JiraStandIn, sent: OutboundAction, message: str
) -> None:
    with pytest.raises(PermanentConnectorError, match=message):
        jira.send(sent)
    assert jira_standin.requests == []


# -- transition -----------------------------------------------------------------------------


def test_a_transition_by_name_happens_once_even_when_retried(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    jira.send(create())
    moved = jira.send(act("transition", 2, transition="Start Progress", issue="PROJ-1"))
    assert jira_standin.issues[0].status == "In Progress"
    assert moved.wrote == {"status": "open"} and moved.detail["transitioned"] is True
    (post,) = jira_standin.calls("POST", "/transitions")
    assert post.json() == {
        "transition": {"id": "11"},
        "properties": [{"key": "baton.transition", "value": {"key": f"{2:064x}", "to": "In Progress"}}],
    }
    again = jira.send(act("transition", 2, transition="Start Progress", issue="PROJ-1"))  # no longer offered
    assert again.detail["transitioned"] is False and again.wrote == {"status": "open"}
    assert len(jira_standin.calls("POST", "/transitions")) == 1


def test_a_transition_to_a_status_is_success_when_already_there(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    jira.send(create())
    done = jira.send(act("transition", 2, status="done"))  # found through the ticket's label
    assert jira_standin.issues[0].status == "Done" and done.wrote == {"status": "solved"}
    assert jira.send(act("transition", 3, status="Done")).detail == {
        "issue": "PROJ-1",
        "id": "10001",
        "status": "Done",
        "transitioned": False,
    }
    assert len(jira_standin.calls("POST", "/transitions")) == 1
    jira.send(act("transition", 4, transition="41", issue="10001"))  # by id: Reopen
    assert jira_standin.issues[0].status == "To Do"


def test_a_transition_retried_after_a_lost_response_is_recognised(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    jira.send(create())
    jira_standin.lose_response("POST", "/transitions")
    with pytest.raises(TransientConnectorError):
        jira.send(act("transition", 2, transition="Resolve", issue="PROJ-1"))
    assert (
        jira.send(act("transition", 2, transition="Resolve", issue="PROJ-1")).detail["transitioned"] is False
    )
    assert jira_standin.issues[0].status == "Done"


def test_a_transition_jira_does_not_offer_is_permanent(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    jira.send(create())
    with pytest.raises(
        PermanentConnectorError,
        match=r"PROJ-1 is in 'To Do'; .* matches 'Reopen' \(available: Start Progress, Resolve\)",
    ):
        jira.send(act("transition", 2, transition="Reopen", issue="PROJ-1"))


# -- sync -----------------------------------------------------------------------------------


def test_a_sync_writes_what_jira_can_hold_and_comments_the_rest(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    jira.send(create())
    changes = {
        "priority": "urgent",
        "assignee": JIRA_USERS[0],
        "status": "solved",
        "team": "billing",
        "tier": "2",
    }
    sync = act("sync", 2, external_id="10001", changes=changes, note="Escalated to billing, tier 2")
    delivery = jira.send(sync)
    issue = jira_standin.issues[0]
    assert (issue.priority, issue.assignee, issue.status) == ("Highest", JIRA_USERS[0], "Done")
    (comment,) = issue.comments
    assert comment.body["content"] == [paragraph(text("Escalated to billing, tier 2"))]
    assert delivery.wrote == {"priority": "urgent", "assignee": JIRA_USERS[0], "status": "solved"}
    assert delivery.external_id == "PROJ-1" and delivery.detail["not_written"] == {}
    assert delivery.link is not None and delivery.link.id == "10001"
    edit, assign = jira_standin.calls("PUT", "/issue/10001"), jira_standin.calls("PUT", "/assignee")
    assert edit[0].json() == {"fields": {"priority": {"name": "Highest"}}}
    assert assign[0].json() == {"accountId": JIRA_USERS[0]}
    assert jira.send(sync).wrote == delivery.wrote  # retried: the same values, nothing twice
    assert len(issue.comments) == 1 and len(jira_standin.calls("POST", "/transitions")) == 1


def test_a_sync_to_a_stage_jira_cannot_reach_says_so_in_a_comment(
    jira: JiraConnector, jira_standin: JiraStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    jira.send(create())
    jira.send(act("transition", 2, status="Done", issue="PROJ-1"))
    delivery = jira.send(act("sync", 3, external_id="PROJ-1", changes={"status": "open", "assignee": None}))
    assert delivery.wrote == {"assignee": ""} and jira_standin.issues[0].status == "Done"
    assert delivery.detail["not_written"] == {"status": "no transition from 'Done' to 'In Progress'"}
    assert jira_standin.calls("PUT", "/assignee")[0].json() == {"accountId": None}
    pending = jira.send(
        act("sync", 4, external_id="PROJ-1", changes={"status": "pending"}, note="Waiting on Acme")
    )
    assert pending.detail["not_written"] == {"status": "no Jira status is configured for stage 'pending'"}
    notes = [c.body["content"][0]["content"] for c in jira_standin.issues[0].comments]
    assert notes[1] == [text("Waiting on Acme"), {"type": "hardBreak"}, text(
        "Not set in Jira: status (no Jira status is configured for stage 'pending')"
    )]  # fmt: skip
    assert notes[0] == [text("Not set in Jira: status (no transition from 'Done' to 'In Progress')")]
    assert "not written" in caplog.text


def test_mappings_are_configurable(jira_standin: JiraStandIn) -> None:
    connector = _connector(
        jira_standin, priorities={"urgent": "High", "low": "Lowest"}, statuses={"escalated": "Done"}
    )
    try:
        connector.send(create(priority="urgent"))
        delivery = connector.send(
            act("sync", 2, external_id="PROJ-1", changes={"priority": "low", "status": "escalated"})
        )
    finally:
        connector.close()
    assert (jira_standin.issues[0].priority, jira_standin.issues[0].status) == ("Lowest", "Done")
    assert delivery.wrote == {"priority": "low", "status": "escalated"}


# -- errors ---------------------------------------------------------------------------------

JIRA_400 = {
    "errorMessages": ["Field errors"],
    "errors": {"summary": "You must specify a summary of the issue."},
}
FAULTS = [
    (
        Fault.json(400, JIRA_400),
        PermanentConnectorError,
        None,
        "Field errors; summary: You must specify a summary",
    ),
    (Fault.status(401), PermanentConnectorError, None, "HTTP 401"),
    (
        Fault.json(403, {"errorMessages": ["You do not have permission."]}),
        PermanentConnectorError,
        None,
        "permission",
    ),
    (
        Fault.json(404, {"errorMessages": ["Not found"], "errors": {}}),
        PermanentConnectorError,
        None,
        "HTTP 404",
    ),
    (Fault.json(409, {"errorMessages": ["Conflict"]}), TransientConnectorError, None, "HTTP 409"),
    (Fault.json(422, {"errorMessages": ["Unprocessable"]}), PermanentConnectorError, None, "HTTP 422"),
    (JiraStandIn.rate_limited("30"), TransientConnectorError, 30.0, "Rate limit exceeded"),
    (Fault.status(500), TransientConnectorError, None, "HTTP 500"),
    (Fault.status(503, headers={"retry-after": "12"}), TransientConnectorError, 12.0, "HTTP 503"),
    (Fault.hang(5), TransientConnectorError, None, "timed out"),
    (Fault.reset(), TransientConnectorError, None, "failed"),
]


@pytest.mark.parametrize(("fault", "error", "retry_after", "message"), FAULTS)
def test_jiras_answers_map_to_retry_or_dead_letter(
    jira: JiraConnector,
    jira_standin: JiraStandIn,
    fault: Fault,
    error: type[ConnectorError],
    retry_after: float | None,
    message: str,
) -> None:
    jira_standin.inject(Fault(fault.kind, fault.reply, fault.seconds, path="/rest/api/3/issue"))
    with pytest.raises(ConnectorError, match=message) as caught:
        jira.send(create())
    assert type(caught.value) is error
    if isinstance(caught.value, TransientConnectorError):
        assert caught.value.retry_after == retry_after
    assert TOKEN not in str(caught.value) and BASIC not in str(caught.value)
    jira.send(create())
    assert len(jira_standin.issues) == 1


def test_jiras_field_errors_are_quoted(jira: JiraConnector, jira_standin: JiraStandIn) -> None:
    with pytest.raises(PermanentConnectorError, match=r"HTTP 400 .*issuetype: Specify a valid issue type"):
        jira.send(create(issue_type="Epic"))
    with pytest.raises(PermanentConnectorError, match=r"HTTP 404 .*Issue does not exist"):
        jira.send(act("comment", text="x", issue="PROJ-99"))
    assert jira_standin.issues == []


def test_a_bad_token_is_permanent_and_never_repeated(
    jira_standin: JiraStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "ATATT-WRONG-SECRET-token"
    connector = _connector(jira_standin, token=wrong)
    try:
        with pytest.raises(PermanentConnectorError, match="HTTP 401") as caught:
            connector.send(create())
        jira_standin.inject(Fault.json(400, {"errorMessages": [f"token {wrong} is revoked"]}))
        with pytest.raises(PermanentConnectorError) as echoed:  # a vendor echoing the token back
            connector.send(create())
    finally:
        connector.close()
    assert "[secret]" in str(echoed.value)
    wrong_basic = base64.b64encode(f"{EMAIL}:{wrong}".encode()).decode()
    for said in (str(caught.value), str(echoed.value), caplog.text):
        assert wrong not in said and wrong_basic not in said and TOKEN not in said


MALFORMED = [
    (
        Fault.status(200, b"<html>maintenance</html>", path="/search/jql"),
        "jira search: the answer is not a Jira JSON",
    ),
    (
        Fault.status(200, b'{"issues": [' + b'{"id": "1"},' * 100_000, path="/search/jql"),
        "cut at the size limit",
    ),
    (Fault.json(200, {"issues": "none"}, path="/search/jql"), "has no issues list"),
    (Fault.json(200, ["issues"], path="/search/jql"), "not a Jira JSON object"),
    (Fault.json(201, {"id": True, "key": 5}, path="/rest/api/3/issue"), "names no issue id and key"),
    (
        Fault.json(201, {"id": "10001", "key": "../x-1"}, path="/rest/api/3/issue"),
        "names no issue id and key",
    ),
]


@pytest.mark.parametrize(("fault", "message"), MALFORMED)
def test_malformed_answers_are_transient_with_a_clear_message(
    jira: JiraConnector, jira_standin: JiraStandIn, fault: Fault, message: str
) -> None:
    jira_standin.inject(fault)
    with pytest.raises(TransientConnectorError, match=message):
        jira.send(create())


def test_hostile_search_results_are_skipped(jira: JiraConnector, jira_standin: JiraStandIn) -> None:
    hostile = {
        "issues": [
            {"id": "1/../../x", "key": "PROJ-1"},
            {"id": "7", "key": "PROJ-7", "fields": {"labels": ["other"]}},
        ]
    }
    jira_standin.inject(Fault.json(200, hostile, path="/search/jql"))
    assert jira.send(create()).external_id == "PROJ-1"  # neither counted as found: created
    jira_standin.inject(
        Fault.json(200, {"transitions": [{"id": 1}, "x", {"id": "31", "to": "Done"}]}, path="/transitions")
    )
    with pytest.raises(PermanentConnectorError, match=r"available: none"):
        jira.send(act("transition", 2, status="Done", issue="PROJ-1"))


def test_a_search_answering_ids_only_is_completed_by_reading_the_issue(
    jira: JiraConnector, jira_standin: JiraStandIn
) -> None:
    jira.send(create())
    jira_standin.inject(Fault.json(200, {"issues": [{"id": "10001"}], "isLast": True}, path="/search/jql"))
    assert jira.send(create()).detail == {"issue": "PROJ-1", "id": "10001", "created": False}
    assert jira_standin.requests[-1].path == "/rest/api/3/issue/10001"


def test_the_standin_refuses_jql_it_does_not_know_like_jira(jira_standin: JiraStandIn) -> None:
    answer = httpx.post(
        f"{jira_standin.url}/rest/api/3/search/jql", json={"jql": "project = PROJ"}, auth=(EMAIL, TOKEN)
    )
    assert answer.status_code == 400 and answer.json()["errorMessages"][0].startswith(
        "Error in the JQL Query"
    )
    assert (
        httpx.post(f"{jira_standin.url}/rest/api/3/search/jql", json={"jql": 'labels = "x"'}).status_code
        == 401
    )


# -- configuration and SSRF -----------------------------------------------------------------

ENV = {"BATON_JIRA_EMAIL": EMAIL, "BATON_JIRA_API_TOKEN": TOKEN}
SITE = {"BATON_JIRA_URL": "https://acme.atlassian.net"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "needs BATON_JIRA_URL, BATON_JIRA_EMAIL, BATON_JIRA_API_TOKEN"),
        ({**SITE, "BATON_JIRA_EMAIL": EMAIL}, "needs BATON_JIRA_API_TOKEN"),
        ({**ENV, "BATON_JIRA_URL": "https://acme.atlassian.net/jira"}, "without a path"),
        ({**ENV, "BATON_JIRA_URL": "ftp://acme.atlassian.net"}, "http:// or https://"),
        ({**ENV, **SITE, "BATON_JIRA_EMAIL": "baton"}, "email: .*e-mail"),
        ({**ENV, **SITE, "BATON_JIRA_API_TOKEN": "has spaces SECRET"}, "api_token: .*no spaces"),
        ({**ENV, **SITE, "BATON_JIRA_PROJECT": "proj"}, "project: String should match"),
        ({**ENV, "BATON_JIRA_URL": "http://10.1.2.3"}, "10.1.2.3"),
    ],
)
def test_settings_are_checked_without_repeating_the_token(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        JiraConnector.from_settings(load_settings(env))
    assert "SECRET" not in str(caught.value)


def test_unknown_mapping_names_are_refused() -> None:
    with pytest.raises(ValueError, match="are not among Baton's"):
        JiraConfig(
            url="https://acme.atlassian.net",
            email=EMAIL,
            api_token=SecretStr(TOKEN),
            statuses={"done": "Done"},
        )


def test_from_settings_reaches_an_allowed_site(jira_standin: JiraStandIn) -> None:
    env = {
        **ENV,
        "BATON_JIRA_URL": jira_standin.url + "/",
        "BATON_JIRA_PROJECT": "OPS",
        "BATON_OUTBOUND_ALLOW": "127.0.0.1",
    }
    connector = JiraConnector.from_settings(load_settings(env))
    try:
        assert connector.config.url == jira_standin.url
        delivery = connector.send(create())
    finally:
        connector.close()
    assert delivery.external_id == "OPS-1"


def test_a_private_site_that_is_not_allowed_is_refused(jira_standin: JiraStandIn) -> None:
    closed = HttpConfig(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)
    config = JiraConfig(
        url=jira_standin.url, email=EMAIL, api_token=SecretStr(TOKEN), project="PROJ", http=closed
    )
    with pytest.raises(PermanentConnectorError, match="loopback"):
        JiraConnector(config)
    named = config.model_copy(update={"url": f"https://acme.atlassian.net:{jira_standin.port}"})
    connector = JiraConnector(named, resolver=lambda host, port: ["127.0.0.1"])  # a hostile DNS answer
    try:
        with pytest.raises(
            PermanentConnectorError, match=r"acme\.atlassian\.net is at 127\.0\.0\.1 \(loopback\)"
        ):
            connector.send(create())
    finally:
        connector.close()
    assert jira_standin.requests == []
