"""The Zendesk connector against the Zendesk Support stand-in, over real HTTP on loopback."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from baton.clock import FakeClock
from baton.connectors.base import OutboundAction
from baton.connectors.config import HttpConfig
from baton.connectors.registry import build_connectors
from baton.connectors.zendesk import ZendeskConfig, ZendeskConnector, marker
from baton.errors import ConfigError, ConnectorError, PermanentConnectorError, TransientConnectorError
from baton.model import ExternalLink, Stage
from baton.settings import load_settings
from baton.signals.adapters.zendesk import ZendeskAdapter
from tests.conftest import START
from tests.standins.fixtures import LOOPBACK
from tests.standins.server import Fault
from tests.standins.zendesk import SELF, Comment, Ticket, ZendeskStandIn

EMAIL = "baton@acme.example"
TOKEN = "zdtok-0000000000000000000000SECRET"
CREDENTIAL = base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()


@pytest.fixture
def zendesk_standin() -> Iterator[ZendeskStandIn]:
    with ZendeskStandIn(EMAIL, TOKEN) as standin:
        yield standin


def _connector(standin: ZendeskStandIn, *, token: str = TOKEN, **config: Any) -> ZendeskConnector:
    settings: dict[str, Any] = {"groups": {"billing": 20}, "http": LOOPBACK, **config}
    return ZendeskConnector(
        ZendeskConfig(url=standin.url, email=EMAIL, api_token=SecretStr(token), **settings),
        clock=FakeClock(START),
    )


@pytest.fixture
def zendesk(zendesk_standin: ZendeskStandIn) -> Iterator[ZendeskConnector]:
    connector = _connector(zendesk_standin)
    yield connector
    connector.close()


@pytest.fixture
def ticket(zendesk_standin: ZendeskStandIn) -> Ticket:
    return zendesk_standin.add_ticket(status="new", priority="normal", tags=["vip", "old"])


def act(kind: str, n: int = 1, *, attempt: int = 1, **params: Any) -> OutboundAction:
    key = hashlib.sha256(f"action-{n}".encode()).hexdigest()
    return OutboundAction(key, "T-1", "zendesk", kind, {"ticket": "T-1", **params}, attempt)


def sync(ticket: Ticket, n: int = 1, *, attempt: int = 1, note: str = "", **changes: Any) -> OutboundAction:
    """A sync action as the engine makes it (``decide_sync.sync_actions``)."""
    params = {"system": "zendesk", "external_id": str(ticket.id), "changes": changes, "note": note}
    return act("sync", n, attempt=attempt, **params)


def puts(standin: ZendeskStandIn, ticket: Ticket) -> list[dict[str, Any]]:
    return [r.json() for r in standin.calls("PUT", f"/tickets/{ticket.id}")]


# -- update ---------------------------------------------------------------------------------


def test_an_update_writes_only_the_fields_with_safe_update(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    stamp = ticket.updated_at
    delivery = zendesk.send(
        act(
            "update",
            ticket_id=str(ticket.id),
            assignee="1001",
            group="20",
            priority="high",
            status="escalated",
            tags=["Needs Eng", "vip"],
            remove_tags="old, absent",
        )
    )
    get, put = zendesk_standin.requests
    assert (get.method, get.path, put.method, put.path) == (
        "GET",
        f"/api/v2/tickets/{ticket.id}",
        "PUT",
        f"/api/v2/tickets/{ticket.id}",
    )
    assert put.json() == {
        "ticket": {
            "assignee_id": 1001,
            "group_id": 20,
            "priority": "high",
            "status": "open",
            "additional_tags": ["needs_eng"],
            "remove_tags": ["old"],
            "safe_update": True,
            "updated_stamp": stamp,
        }
    }
    assert put.headers["authorization"] == f"Basic {CREDENTIAL}"
    assert put.headers["content-type"] == "application/json"
    assert (ticket.assignee_id, ticket.group_id, ticket.priority, ticket.status) == (1001, 20, "high", "open")
    assert ticket.tags == ["vip", "needs_eng"] and ticket.comments == []
    assert delivery.wrote == {"assignee": "1001", "team": "billing", "priority": "high", "status": "open"}
    assert delivery.external_id == str(ticket.id)
    assert delivery.link == ExternalLink(
        system="zendesk", id=str(ticket.id), url=f"{zendesk_standin.url}/agent/tickets/{ticket.id}"
    )
    assert delivery.detail["fields"] == [
        "additional_tags",
        "assignee_id",
        "group_id",
        "priority",
        "remove_tags",
        "status",
    ]


def test_an_update_already_applied_sends_nothing_and_reports_what_the_ticket_holds(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    update = act("update", ticket_id=ticket.id, assignee=1001, priority="urgent", status="pending")
    first = zendesk.send(update)
    again = zendesk.send(update)  # e.g. the first answer was lost
    assert len(puts(zendesk_standin, ticket)) == 1
    assert again.wrote == first.wrote == {"assignee": "1001", "priority": "urgent", "status": "pending"}
    assert again.detail == {"ticket": str(ticket.id), "unchanged": True}


def test_an_update_by_email_and_team_with_a_note(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    action = act(
        "update",
        links={"zendesk": str(ticket.id)},
        assignee="bob@acme.example",
        team="billing",
        note="Over to billing",
    )
    delivery = zendesk.send(action)
    (body,) = puts(zendesk_standin, ticket)
    assert body["ticket"]["assignee_email"] == "bob@acme.example" and body["ticket"]["group_id"] == 20
    assert body["ticket"]["comment"] == {
        "body": f"Over to billing\n\n— {marker(action.key)}",
        "public": False,
    }
    assert ticket.assignee_id == 1002 and ticket.comments[0].public is False
    assert delivery.wrote == {"assignee": "bob@acme.example", "team": "billing"}
    assert delivery.detail["comment_id"] == ticket.comments[0].id


REFUSED = [
    ({"team": "legal"}, "team 'legal' has no Zendesk group"),
    ({"assignee": "ann"}, "assignee 'ann' is not a Zendesk user id"),
    ({"group": "billing"}, "group 'billing' is not a Zendesk group id"),
    ({"priority": "p1"}, "priority 'p1' is not one of low, normal, high, urgent"),
    ({"status": "triaged"}, "status 'triaged' is not one of"),
    ({"tier": "2"}, "Zendesk has no tier field"),
]


@pytest.mark.parametrize(("params", "message"), REFUSED)
def test_an_update_zendesk_cannot_hold_is_refused_before_writing(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, params: dict[str, Any], message: str
) -> None:
    ticket = zendesk_standin.add_ticket()
    with pytest.raises(PermanentConnectorError, match=message):
        zendesk.send(act("update", ticket_id=ticket.id, **params))
    assert puts(zendesk_standin, ticket) == []


def test_a_ticket_cannot_go_back_to_new(zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn) -> None:
    ticket = zendesk_standin.add_ticket(status="open")
    with pytest.raises(PermanentConnectorError, match="cannot go back to New"):
        zendesk.send(act("update", ticket_id=ticket.id, status="new"))
    fresh = zendesk_standin.add_ticket(status="new")
    assert zendesk.send(act("update", ticket_id=fresh.id, status="new")).wrote == {"status": "new"}
    assert puts(zendesk_standin, ticket) == puts(zendesk_standin, fresh) == []


def test_a_change_made_in_zendesk_meanwhile_is_not_overwritten(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    # An agent saves the ticket between the connector's read and its write.
    zendesk_standin.touch(ticket.id, priority="low", assignee_id=1001)
    with pytest.raises(TransientConnectorError, match=r"HTTP 409.*UpdateConflict"):
        zendesk.send(act("update", ticket_id=ticket.id, priority="urgent"))
    assert ticket.priority == "low"
    delivery = zendesk.send(act("update", attempt=2, ticket_id=ticket.id, priority="urgent"))
    assert (ticket.priority, ticket.assignee_id) == ("urgent", 1001)
    assert delivery.wrote == {"priority": "urgent"}
    refused, accepted = (body["ticket"]["updated_stamp"] for body in puts(zendesk_standin, ticket))
    assert refused < accepted  # the retry read the agent's change and wrote on top of it


def test_a_closed_ticket_is_refused(zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn) -> None:
    ticket = zendesk_standin.add_ticket(status="closed")
    with pytest.raises(PermanentConnectorError, match="is closed"):
        zendesk.send(act("update", ticket_id=ticket.id, priority="high"))
    assert puts(zendesk_standin, ticket) == []
    with pytest.raises(
        PermanentConnectorError, match=r"HTTP 422 .*status: Status: closed prevents ticket update"
    ):
        zendesk.send(act("note", ticket_id=ticket.id, text="too late"))
    assert ticket.comments == []


# -- comments -------------------------------------------------------------------------------


def test_note_reply_and_notify_post_comments_with_the_marker(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    note = act("note", 1, ticket_id=ticket.id, subject="Escalated", text="Refund over limit")
    reply = act("reply", 2, ticket_id=ticket.id, text="We are on it.")
    notify = act(
        "notify",
        3,
        external_id=ticket.id,
        to="ann",
        address="1001",
        subject="Escalated",
        text="T-1 needs you",
    )
    html = act("reply", 4, ticket_id=ticket.id, html="<p>Fixed in <b>v2</b></p>")
    for action in (note, reply, notify, html):
        delivery = zendesk.send(action)
        assert delivery.link is not None and delivery.link.id == str(ticket.id) and delivery.wrote == {}
    comments = [body["ticket"]["comment"] for body in puts(zendesk_standin, ticket)]
    assert comments == [
        {"body": f"Escalated\n\nRefund over limit\n\n— {marker(note.key)}", "public": False},
        {"body": f"We are on it.\n\n— {marker(reply.key)}", "public": True},
        {
            "body": f"For ann (Zendesk user 1001):\n\nEscalated\n\nT-1 needs you\n\n— {marker(notify.key)}",
            "public": False,
        },
        {"html_body": f"<p>Fixed in <b>v2</b></p><p>— {marker(html.key)}</p>", "public": True},
    ]
    assert [(c.public, c.author_id) for c in ticket.comments] == [
        (False, SELF),
        (True, SELF),
        (False, SELF),
        (True, SELF),
    ]
    assert delivery.detail["comment_id"] == ticket.comments[-1].id
    assert len(zendesk_standin.calls("GET")) == 0  # first attempts post without looking


def test_a_note_whose_answer_was_lost_is_not_posted_again(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    zendesk_standin.lose_response(f"/tickets/{ticket.id}")  # Zendesk adds the note, the answer never arrives
    with pytest.raises(TransientConnectorError):
        zendesk.send(act("note", ticket_id=ticket.id, text="Paged the on-call"))
    assert len(ticket.comments) == 1
    delivery = zendesk.send(act("note", attempt=2, ticket_id=ticket.id, text="Paged the on-call"))
    assert len(ticket.comments) == 1 and len(puts(zendesk_standin, ticket)) == 1
    assert delivery.detail == {
        "ticket": str(ticket.id),
        "comment_id": ticket.comments[0].id,
        "recovered": True,
    }
    (lookup,) = zendesk_standin.calls("GET", "/comments")
    assert lookup.query == {"sort_order": "desc", "page[size]": "50"}
    zendesk.send(act("note", 2, attempt=2, ticket_id=ticket.id, text="Paged the on-call"))  # another action
    assert len(ticket.comments) == 2


def test_a_retry_after_a_failure_before_zendesk_acted_posts_once(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    zendesk_standin.inject(Fault.status(502, path=f"/tickets/{ticket.id}"))
    with pytest.raises(TransientConnectorError):
        zendesk.send(act("reply", ticket_id=ticket.id, text="Hello"))
    zendesk.send(act("reply", attempt=2, ticket_id=ticket.id, text="Hello"))
    assert [c.body for c in ticket.comments] == [f"Hello\n\n— {marker(act('reply').key)}"]


def test_the_duplicate_window_is_the_newest_comment_lookback_comments(
    zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    connector = _connector(zendesk_standin, comment_lookback=60)
    try:
        zendesk_standin.lose_response(f"/tickets/{ticket.id}")
        with pytest.raises(TransientConnectorError):
            connector.send(act("note", ticket_id=ticket.id, text="first"))
        for n in range(59):  # the conversation goes on before the retry
            ticket.comments.append(Comment(9_000 + n, 1001, True, f"reply {n}", "", ""))
        connector.send(act("note", attempt=2, ticket_id=ticket.id, text="first"))
        assert len(ticket.comments) == 60  # found on the second page
        assert [r.query.get("page[size]") for r in zendesk_standin.calls("GET", "/comments")] == ["50", "10"]
        ticket.comments.append(Comment(9_999, 1001, True, "one more", "", ""))
        connector.send(act("note", attempt=3, ticket_id=ticket.id, text="first"))
        assert len(ticket.comments) == 62  # beyond the window: posted again, as documented
    finally:
        connector.close()


def test_a_comment_needs_text(zendesk: ZendeskConnector, ticket: Ticket) -> None:
    with pytest.raises(PermanentConnectorError, match="nothing to post"):
        zendesk.send(act("notify", ticket_id=ticket.id, to="ann", address="1001"))


# -- tags -----------------------------------------------------------------------------------


def test_tags_are_added_through_the_tags_endpoint(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    action = act("tag", ticket_id=ticket.id, tags=["P1 Outage", "vip", "p1 outage"])
    delivery = zendesk.send(action)
    zendesk.send(action)
    calls = zendesk_standin.calls("PUT", f"/tickets/{ticket.id}/tags")
    assert [c.json() for c in calls] == [{"tags": ["p1_outage", "vip"]}] * 2
    assert ticket.tags == ["vip", "old", "p1_outage"]
    assert (
        delivery.detail == {"ticket": str(ticket.id), "tags": ["p1_outage", "vip"]} and delivery.wrote == {}
    )
    with pytest.raises(PermanentConnectorError, match="names no tag"):
        zendesk.send(act("tag", ticket_id=ticket.id, tags=[]))


# -- sync -----------------------------------------------------------------------------------


def test_sync_maps_baton_fields_and_notes_what_zendesk_cannot_hold(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    stamp = ticket.updated_at
    action = sync(
        ticket,
        assignee="1002",
        team="billing",
        tier="2",
        priority="urgent",
        status="closed",
        note="Escalated to billing: refund over limit",
    )
    delivery = zendesk.send(action)
    (body,) = puts(zendesk_standin, ticket)
    assert body == {
        "ticket": {
            "assignee_id": 1002,
            "group_id": 20,
            "priority": "urgent",
            "status": "solved",
            "safe_update": True,
            "updated_stamp": stamp,
            "comment": {
                "body": "Escalated to billing: refund over limit\n"
                "Baton: tier 2 (Zendesk has no tier field)\n"
                "Baton: closed; set to solved, Zendesk closes solved tickets itself\n\n"
                f"— {marker(action.key)}",
                "public": False,
            },
        }
    }
    assert delivery.wrote == {"assignee": "1002", "team": "billing", "priority": "urgent", "status": "solved"}
    assert (ticket.status, ticket.assignee_id, ticket.comments[0].public) == ("solved", 1002, False)


def test_sync_escalated_is_open_and_an_unmapped_team_goes_into_the_note(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    action = sync(ticket, status="escalated", team="Legal", assignee=None)
    delivery = zendesk.send(action)
    (body,) = puts(zendesk_standin, ticket)
    assert body["ticket"]["status"] == "open" and "group_id" not in body["ticket"]
    assert body["ticket"]["comment"]["body"] == (
        "Baton: the assignee has no Zendesk id\n"
        "Baton: team 'Legal' has no Zendesk group (configure groups)\n\n"
        f"— {marker(action.key)}"
    )
    assert delivery.wrote == {"status": "open"}


def test_a_sync_retried_after_a_lost_answer_changes_and_posts_nothing_more(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    changes: dict[str, Any] = {"priority": "high", "status": "pending", "note": "Waiting on the customer"}
    zendesk_standin.lose_response(f"/tickets/{ticket.id}")
    with pytest.raises(TransientConnectorError):
        zendesk.send(sync(ticket, **changes))
    delivery = zendesk.send(sync(ticket, attempt=2, **changes))
    assert len(puts(zendesk_standin, ticket)) == 1 and len(ticket.comments) == 1
    assert delivery.wrote == {"priority": "high", "status": "pending"}
    assert delivery.detail == {
        "ticket": str(ticket.id),
        "unchanged": True,
        "comment_id": ticket.comments[0].id,
    }


@pytest.mark.parametrize("stage", [s.value for s in Stage])
def test_wrote_is_what_zendesks_webhook_will_report(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket, stage: str
) -> None:
    delivery = zendesk.send(sync(ticket, status=stage))
    assert delivery.wrote == {"status": ZendeskAdapter.statuses[ticket.status].value}


def test_a_note_inside_changes_is_used_too(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, ticket: Ticket
) -> None:
    action = act("sync", external_id=ticket.id, changes={"priority": "low", "note": "Quieter now"})
    assert zendesk.send(action).wrote == {"priority": "low"}
    (body,) = puts(zendesk_standin, ticket)
    assert body["ticket"]["comment"]["body"] == f"Quieter now\n\n— {marker(action.key)}"


def test_sync_needs_changes(zendesk: ZendeskConnector, ticket: Ticket) -> None:
    with pytest.raises(PermanentConnectorError, match="changes is not a mapping"):
        zendesk.send(act("sync", external_id=ticket.id, changes="priority=high"))


# -- which ticket ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "names no Zendesk ticket"),
        ({"links": {"jira": "OPS-1"}}, "names no Zendesk ticket"),
        ({"ticket_id": "12/../../users/me"}, "is not a Zendesk ticket id"),
        ({"external_id": "0"}, "is not a Zendesk ticket id"),
        ({"ticket_id": "١٢٣"}, "is not a Zendesk ticket id"),  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_an_action_must_name_a_zendesk_ticket(
    zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(PermanentConnectorError, match=message):
        zendesk.send(act("note", text="x", **params))
    assert zendesk_standin.requests == []


def test_unknown_kinds_and_tickets(zendesk: ZendeskConnector, zendesk_standin: ZendeskStandIn) -> None:
    with pytest.raises(PermanentConnectorError, match="cannot perform 'page'"):
        zendesk.send(act("page", ticket_id="1"))
    assert zendesk_standin.requests == []
    with pytest.raises(PermanentConnectorError, match=r"HTTP 404 .*RecordNotFound; Not found"):
        zendesk.send(act("update", ticket_id="424242", priority="high"))


# -- errors ---------------------------------------------------------------------------------

FAULTS = [
    (
        Fault.json(400, {"error": "InvalidJSON", "description": "bad"}),
        PermanentConnectorError,
        None,
        "InvalidJSON",
    ),
    (
        Fault.json(403, {"error": "Forbidden", "description": "You do not have access to this page."}),
        PermanentConnectorError,
        None,
        "HTTP 403.*Forbidden",
    ),
    (
        Fault.json(
            422,
            {
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": {
                    "base": [
                        {
                            "description": "Status: closed prevents ticket update",
                            "error": "ClosedPreventsUpdate",
                        }
                    ]
                },
            },
        ),
        PermanentConnectorError,
        None,
        "RecordInvalid; Record validation errors; base: Status: closed prevents ticket update",
    ),
    (Fault.json(409, {"error": "UpdateConflict"}), TransientConnectorError, None, "UpdateConflict"),
    (
        Fault.rate_limited("7", {"error": "APIRateLimitExceeded", "description": "Rate limit exceeded"}),
        TransientConnectorError,
        7.0,
        "HTTP 429.*APIRateLimitExceeded",
    ),
    (Fault.status(500), TransientConnectorError, None, "HTTP 500"),
    (Fault.status(503, headers={"retry-after": "30"}), TransientConnectorError, 30.0, "HTTP 503"),
    (Fault.hang(5), TransientConnectorError, None, "timed out"),
    (Fault.reset(), TransientConnectorError, None, "failed"),
    (Fault.status(200, b"<html>maintenance</html>"), TransientConnectorError, None, "not a JSON object"),
    (Fault.json(200, ["not", "an", "object"]), TransientConnectorError, None, "not a JSON object"),
    (
        Fault.json(200, {"ticket": {"id": "10001", "status": 5, "tags": "vip"}}),
        TransientConnectorError,
        None,
        r"not a Zendesk ticket \(id: Input should be a valid integer",
    ),
    (
        Fault.json(200, {"ticket": "x" * 2_000_000}),
        TransientConnectorError,
        None,
        "larger than max_response_bytes",
    ),
]


@pytest.mark.parametrize(("fault", "error", "retry_after", "message"), FAULTS)
def test_zendesks_answers_map_to_retry_or_dead_letter(
    zendesk: ZendeskConnector,
    zendesk_standin: ZendeskStandIn,
    ticket: Ticket,
    fault: Fault,
    error: type[ConnectorError],
    retry_after: float | None,
    message: str,
) -> None:
    zendesk_standin.inject(fault)
    with pytest.raises(ConnectorError, match=message) as caught:
        zendesk.send(act("update", ticket_id=ticket.id, priority="high"))
    assert type(caught.value) is error
    if isinstance(caught.value, TransientConnectorError):
        assert caught.value.retry_after == retry_after
    assert ticket.priority == "normal"
    zendesk.send(act("update", attempt=2, ticket_id=ticket.id, priority="high"))
    assert ticket.priority == "high"


def test_zendesks_own_refusals_are_permanent_with_its_details(
    zendesk: ZendeskConnector, ticket: Ticket
) -> None:
    with pytest.raises(
        PermanentConnectorError,
        match=r"HTTP 422 .*RecordInvalid; Record validation errors; assignee: Assignee: is not an agent",
    ):
        zendesk.send(act("update", ticket_id=ticket.id, assignee="4242"))


def test_the_per_ticket_update_limit_is_transient_with_retry_after(zendesk_standin: ZendeskStandIn) -> None:
    zendesk_standin.update_limit = 1
    connector = _connector(zendesk_standin)
    ticket = zendesk_standin.add_ticket()
    try:
        connector.send(act("note", 1, ticket_id=ticket.id, text="one"))
        with pytest.raises(TransientConnectorError, match="HTTP 429") as caught:
            connector.send(act("note", 2, ticket_id=ticket.id, text="two"))
    finally:
        connector.close()
    assert caught.value.retry_after == 120.0 and len(ticket.comments) == 1


def test_a_nearly_spent_rate_limit_is_logged(
    zendesk: ZendeskConnector,
    zendesk_standin: ZendeskStandIn,
    ticket: Ticket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    zendesk_standin.budget = 50
    with caplog.at_level(logging.WARNING, logger="baton.connectors.zendesk"):
        zendesk.send(act("note", ticket_id=ticket.id, text="x"))
    assert "49 of 700 API requests left this minute" in caplog.text


def test_a_bad_token_is_permanent_and_never_repeated(
    zendesk_standin: ZendeskStandIn, ticket: Ticket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "zdtok-WRONG-000000000000000SECRET"
    credential = base64.b64encode(f"{EMAIL}/token:{wrong}".encode()).decode()
    connector = _connector(zendesk_standin, token=wrong)
    try:
        with pytest.raises(PermanentConnectorError, match=r"HTTP 401 .*Couldn't authenticate you") as caught:
            connector.send(act("note", ticket_id=ticket.id, text="x"))
        zendesk_standin.inject(
            Fault.json(401, {"error": f"token {wrong} revoked", "description": credential})
        )
        with pytest.raises(PermanentConnectorError) as echoed:  # a vendor echoing the secret back
            connector.send(act("note", ticket_id=ticket.id, text="x"))
    finally:
        connector.close()
    assert str(echoed.value).count("[secret]") == 2
    for text in (str(caught.value), str(echoed.value), caplog.text):
        assert wrong not in text and credential not in text and TOKEN not in text


# -- configuration and SSRF -----------------------------------------------------------------

ENV = {"BATON_ZENDESK_EMAIL": EMAIL, "BATON_ZENDESK_API_TOKEN": TOKEN}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "needs BATON_ZENDESK_URL, BATON_ZENDESK_EMAIL, BATON_ZENDESK_API_TOKEN"),
        (
            {"BATON_ZENDESK_URL": "https://acme.zendesk.com", "BATON_ZENDESK_EMAIL": EMAIL},
            "needs BATON_ZENDESK_API_TOKEN",
        ),
        ({**ENV, "BATON_ZENDESK_URL": "https://acme.zendesk.com/agent"}, "without a path"),
        ({**ENV, "BATON_ZENDESK_URL": "ftp://acme.zendesk.com"}, "http:// or https://"),
        (
            {**ENV, "BATON_ZENDESK_URL": "https://acme.zendesk.com", "BATON_ZENDESK_EMAIL": "baton"},
            "email: .*e-mail",
        ),
        (
            {
                **ENV,
                "BATON_ZENDESK_URL": "https://acme.zendesk.com",
                "BATON_ZENDESK_API_TOKEN": "has spaces SECRET",
            },
            "api_token: .*no spaces",
        ),
        ({**ENV, "BATON_ZENDESK_URL": "http://10.1.2.3"}, "10.1.2.3"),
        (
            {**ENV, "BATON_ZENDESK_URL": "https://acme.zendesk.com", "BATON_ZENDESK_GROUPS": "billing=1,l2"},
            "BATON_ZENDESK_GROUPS: entry 2 is not team=group-id",
        ),
        (
            {**ENV, "BATON_ZENDESK_URL": "https://acme.zendesk.com", "BATON_ZENDESK_GROUPS": "billing=abc"},
            "groups",
        ),
    ],
)
def test_settings_are_checked_without_repeating_the_token(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        ZendeskConnector.from_settings(load_settings(env))
    assert "SECRET" not in str(caught.value)


def test_from_settings_reaches_an_allowed_site(zendesk_standin: ZendeskStandIn, ticket: Ticket) -> None:
    env = {
        **ENV,
        "BATON_ZENDESK_URL": zendesk_standin.url + "/",
        "BATON_OUTBOUND_ALLOW": "127.0.0.1",
        "BATON_ZENDESK_GROUPS": " billing = 360001, l2=360002 ,",
    }
    connector = build_connectors(load_settings({**env, "BATON_CONNECTORS": "zendesk"}))["zendesk"]
    assert isinstance(connector, ZendeskConnector)  # through the entry point
    try:
        assert connector.config.url == zendesk_standin.url
        assert connector.config.groups == {"billing": 360001, "l2": 360002}
        delivery = connector.send(act("note", ticket_id=ticket.id, text="hello"))
    finally:
        connector.close()
    assert (
        delivery.link is not None and delivery.link.url == f"{zendesk_standin.url}/agent/tickets/{ticket.id}"
    )


def test_a_private_site_that_is_not_allowed_is_refused(zendesk_standin: ZendeskStandIn) -> None:
    closed = HttpConfig(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)
    config = ZendeskConfig(url=zendesk_standin.url, email=EMAIL, api_token=SecretStr(TOKEN), http=closed)
    with pytest.raises(PermanentConnectorError, match="loopback"):
        ZendeskConnector(config)
    named = config.model_copy(update={"url": f"https://acme.zendesk.com:{zendesk_standin.port}"})
    connector = ZendeskConnector(named, resolver=lambda host, port: ["127.0.0.1"])  # a hostile DNS answer
    try:
        with pytest.raises(
            PermanentConnectorError, match=r"acme\.zendesk\.com is at 127\.0\.0\.1 \(loopback\)"
        ):
            connector.send(act("note", ticket_id="1", text="x"))
    finally:
        connector.close()
    assert zendesk_standin.requests == []
