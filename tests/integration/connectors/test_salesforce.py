"""The Salesforce connector against the REST API stand-in, over real HTTP on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from baton.clock import FakeClock
from baton.connectors.base import OutboundAction
from baton.connectors.config import HttpConfig
from baton.connectors.salesforce import SalesforceConfig, SalesforceConnector, reading
from baton.errors import ConfigError, ConnectorError, PermanentConnectorError, TransientConnectorError
from baton.model import ExternalLink
from baton.settings import load_settings
from tests.conftest import START
from tests.standins.fixtures import LOOPBACK
from tests.standins.salesforce import SalesforceStandIn, Task
from tests.standins.server import Fault

TOKEN = "00DSTANDIN!AQ0AQsalesforce.access.token.SECRET"
API = "/services/data/v61.0/sobjects"


@pytest.fixture
def org() -> Iterator[SalesforceStandIn]:
    with SalesforceStandIn(TOKEN) as standin:
        yield standin


def _connector(standin: SalesforceStandIn, **overrides: Any) -> SalesforceConnector:
    config = SalesforceConfig(
        **{"url": standin.url, "access_token": SecretStr(TOKEN), "http": LOOPBACK, **overrides}
    )
    return SalesforceConnector(config, clock=FakeClock(START))


@pytest.fixture
def salesforce(org: SalesforceStandIn) -> Iterator[SalesforceConnector]:
    connector = _connector(org)
    yield connector
    connector.close()


def action(kind: str, n: int = 1, attempt: int = 1, **params: Any) -> OutboundAction:
    return OutboundAction(f"{n:064x}", "T-0123456789abcdef", "salesforce", kind, params, attempt)


def sync(case: str, n: int = 1, attempt: int = 1, **changes: str) -> OutboundAction:
    return action("sync", n, attempt, external_id=case, changes=changes, note="Baton: escalated by rule")


# -- sync / status ---------------------------------------------------------------------------------


def test_a_sync_writes_status_priority_and_owner_to_the_case(
    salesforce: SalesforceConnector, org: SalesforceStandIn
) -> None:
    case, owner = org.add_case(), org.add_owner()
    delivery = salesforce.send(sync(case, status="escalated", priority="urgent", assignee=owner))
    (call,) = org.requests
    assert (call.method, call.path) == ("PATCH", f"{API}/Case/{case}")
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["content-type"] == "application/json"
    assert call.json() == {"Status": "Escalated", "Priority": "High", "OwnerId": owner}
    assert org.org.cases[case] == {"Status": "Escalated", "Priority": "High", "OwnerId": owner}
    assert delivery.external_id == case
    assert delivery.link == ExternalLink(
        system="salesforce", id=case, url=f"{org.url}/lightning/r/Case/{case}/view"
    )
    # urgent is written as High, which reads back as high: that is what the Case's echo will say
    assert delivery.wrote == {"status": "escalated", "priority": "high", "assignee": owner}
    assert delivery.detail == {
        "case": case,
        "fields": {"Status": "Escalated", "Priority": "High", "OwnerId": owner},
        "api_usage": "1/15000",
    }
    assert org.tasks == []  # nothing the Case cannot hold, so no activity


MAPPING = [
    ({"status": "new"}, {"Status": "New"}, {"status": "new"}),
    ({"status": "open"}, {"Status": "Working"}, {"status": "open"}),
    ({"status": "pending"}, {"Status": "On Hold"}, {"status": "pending"}),
    ({"status": "solved"}, {"Status": "Closed"}, {"status": "closed"}),
    ({"status": "closed"}, {"Status": "Closed"}, {"status": "closed"}),
    ({"priority": "low"}, {"Priority": "Low"}, {"priority": "low"}),
    ({"priority": "normal"}, {"Priority": "Medium"}, {"priority": "normal"}),
    ({"priority": "high"}, {"Priority": "High"}, {"priority": "high"}),
    ({"priority": "URGENT"}, {"Priority": "High"}, {"priority": "high"}),
]


@pytest.mark.parametrize(("changes", "fields", "wrote"), MAPPING)
def test_baton_values_map_onto_the_case_picklists(
    salesforce: SalesforceConnector,
    org: SalesforceStandIn,
    changes: dict[str, str],
    fields: dict[str, str],
    wrote: dict[str, str],
) -> None:
    case = org.add_case()
    delivery = salesforce.send(sync(case, **changes))
    assert org.requests[0].json() == fields and delivery.wrote == wrote


def test_reading_prefers_the_word_that_names_a_shared_value() -> None:
    values = {"solved": "Resolved", "closed": "Resolved", "open": "Working"}
    assert reading(values, "Working", "open") == "open"
    assert reading(values, "Resolved", "closed") == "closed"  # no name matches: as requested
    assert reading(values, "Resolved", "solved") == "solved"


def test_the_status_kind_reads_its_params_and_finds_the_case_by_link(
    salesforce: SalesforceConnector, org: SalesforceStandIn
) -> None:
    case = org.add_case()
    sent = action("status", status="pending", priority="low", links={"salesforce": case, "jira": "ABC-1"})
    delivery = salesforce.send(sent)
    assert org.org.cases[case]["Status"] == "On Hold" and org.org.cases[case]["Priority"] == "Low"
    assert delivery.wrote == {"status": "pending", "priority": "low"}
    other = org.add_case()
    salesforce.send(action("status", 2, status="open", case_id=other, links={"salesforce": case}))
    assert org.org.cases[other]["Status"] == "Working"  # case_id wins over the link


def test_team_and_tier_go_to_one_task_on_the_case_even_when_retried(
    salesforce: SalesforceConnector, org: SalesforceStandIn
) -> None:
    case = org.add_case()
    org.inject(SalesforceStandIn.lost_response(path=f"/Task/Baton_Key__c/{1:064x}"))
    with pytest.raises(TransientConnectorError, match="salesforce upsert Task"):
        salesforce.send(sync(case, status="open", team="billing", tier="2"))
    delivery = salesforce.send(sync(case, attempt=2, status="open", team="billing", tier="2"))
    (task,) = org.tasks
    assert task.updates == 1 and task.key == f"{1:064x}"
    assert task.fields == {
        "Subject": "Baton: escalated by rule",
        "Description": "Baton: escalated by rule\nteam: billing\ntier: 2\nBaton ticket T-0123456789abcdef",
        "Status": "Completed",
        "ActivityDate": "2026-03-02",
        "WhatId": case,
    }
    assert delivery.detail["task"] == task.id and delivery.detail["task_created"] is False
    assert delivery.wrote == {"status": "open"}  # team and tier were not set on the Case


def test_a_case_update_whose_answer_was_lost_is_simply_sent_again(
    salesforce: SalesforceConnector, org: SalesforceStandIn
) -> None:
    case = org.add_case()
    org.inject(SalesforceStandIn.lost_response(path=f"/Case/{case}"))
    with pytest.raises(TransientConnectorError, match="salesforce update Case"):
        salesforce.send(sync(case, status="solved"))
    assert org.org.cases[case]["Status"] == "Closed"  # applied; the answer was lost
    assert salesforce.send(sync(case, attempt=2, status="solved")).wrote == {"status": "closed"}


# -- activity ----------------------------------------------------------------------------------------


def test_an_activity_is_a_completed_task_on_the_account(
    salesforce: SalesforceConnector, org: SalesforceStandIn
) -> None:
    account, case = org.add_account(), org.add_case()
    sent = action(
        "activity",
        subject="Escalated to L2",
        text="Checkout fails",
        account_id=account,
        links={"salesforce": case},
    )
    delivery = salesforce.send(sent)
    (call,) = org.requests
    assert (call.method, call.path) == ("PATCH", f"{API}/Task/Baton_Key__c/{sent.key}")
    assert call.json() == {
        "Subject": "Escalated to L2",
        "Description": "Checkout fails\n\nBaton ticket T-0123456789abcdef",
        "Status": "Completed",
        "ActivityDate": "2026-03-02",
        "WhatId": account,
    }
    (task,) = org.tasks
    assert delivery.external_id == task.id
    assert delivery.detail == {"task": task.id, "what": account, "created": True}
    # the link is the Case the activity concerns, never the Task: it stays the ticket's salesforce link
    assert delivery.link is not None and delivery.link.id == case and delivery.wrote == {}


def test_an_activity_without_an_account_goes_on_the_case(
    salesforce: SalesforceConnector, org: SalesforceStandIn
) -> None:
    case = org.add_case()
    salesforce.send(action("activity", case_id=case, text="note", date="2026-02-27"))
    (task,) = org.tasks
    assert task.fields["WhatId"] == case and task.fields["ActivityDate"] == "2026-02-27"
    assert task.fields["Subject"] == "Baton: ticket T-0123456789abcdef"


def test_a_retry_after_a_lost_response_updates_the_same_task(
    salesforce: SalesforceConnector, org: SalesforceStandIn
) -> None:
    account = org.add_account()
    org.inject(SalesforceStandIn.lost_response())
    with pytest.raises(TransientConnectorError, match="salesforce upsert Task"):
        salesforce.send(action("activity", account_id=account, text="first try"))
    assert len(org.tasks) == 1  # Salesforce created it; the answer was lost
    again = salesforce.send(action("activity", attempt=2, account_id=account, text="first try"))
    (task,) = org.tasks
    assert again.external_id == task.id and again.detail["created"] is False and task.updates == 1


def test_before_api_46_an_update_has_no_body_and_the_task_is_read_back(org: SalesforceStandIn) -> None:
    connector = _connector(org, api_version="v45.0")
    try:
        account = org.add_account()
        first = connector.send(action("activity", account_id=account))
        second = connector.send(action("activity", attempt=2, account_id=account))
    finally:
        connector.close()
    assert first.external_id == second.external_id == org.tasks[0].id
    assert (first.detail["created"], second.detail["created"]) == (True, False)
    read = org.requests[-1]
    assert (read.method, read.query) == ("GET", {"fields": "Id"})


def test_without_an_external_id_field_tasks_are_created_and_a_lost_answer_duplicates() -> None:
    with SalesforceStandIn(TOKEN, external_id_field=None) as org:
        connector = _connector(org, task_external_id_field=None)
        try:
            account = org.add_account()
            delivery = connector.send(action("activity", account_id=account))
            assert (org.requests[0].method, org.requests[0].path) == ("POST", f"{API}/Task")
            assert delivery.external_id == org.tasks[0].id
            org.inject(SalesforceStandIn.lost_response())
            with pytest.raises(TransientConnectorError):
                connector.send(action("activity", 2, account_id=account))
            connector.send(action("activity", 2, attempt=2, account_id=account))
        finally:
            connector.close()
        assert len(org.tasks) == 3  # the documented window: the retried action made a second Task


def test_a_missing_external_id_field_is_permanent_and_says_which(
    org: SalesforceStandIn,
) -> None:
    org.external_id_field = None
    connector = _connector(org)
    try:
        with pytest.raises(
            PermanentConnectorError, match=r"NOT_FOUND: Provided external ID field.*Baton_Key__c"
        ):
            connector.send(action("activity", account_id=org.add_account()))
    finally:
        connector.close()


def test_duplicate_keys_in_the_org_are_permanent(
    salesforce: SalesforceConnector, org: SalesforceStandIn
) -> None:
    account = org.add_account()
    salesforce.send(action("activity", account_id=account))
    twin = org.add_account()  # a second Task with the same key: only possible when the field is not Unique
    org.org.tasks["00T000000000999AAA"] = Task("00T000000000999AAA", {"WhatId": twin}, key=f"{1:064x}")
    with pytest.raises(PermanentConnectorError, match="matches several records; mark the field Unique"):
        salesforce.send(action("activity", attempt=2, account_id=account))


# -- errors --------------------------------------------------------------------------------------


def _sf(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Fault:
    return Fault.json(status, [{"message": message, "errorCode": code, "fields": []}], headers)


FAULTS: list[tuple[Fault, type[ConnectorError], float | None, str]] = [
    (
        _sf(400, "MALFORMED_ID", "Case ID: id value of incorrect type"),
        PermanentConnectorError,
        None,
        "MALFORMED",
    ),
    (
        _sf(400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access"),
        TransientConnectorError,
        None,
        "LOCK",
    ),
    (_sf(403, "INSUFFICIENT_ACCESS", "insufficient access rights"), PermanentConnectorError, None, "ACCESS"),
    (
        _sf(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
        TransientConnectorError,
        3600.0,
        "LIMIT",
    ),
    (
        _sf(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
        TransientConnectorError,
        None,
        "Concurrent",
    ),
    (
        _sf(404, "NOT_FOUND", "The requested resource does not exist"),
        PermanentConnectorError,
        None,
        "NOT_FOUND",
    ),
    (_sf(409, "CONFLICT", "conflict"), TransientConnectorError, None, "409"),
    (_sf(422, "UNPROCESSABLE", "unprocessable"), PermanentConnectorError, None, "422"),
    (_sf(429, "TOO_MANY", "slow down", {"retry-after": "20"}), TransientConnectorError, 20.0, "429"),
    (Fault.status(500, b"<html>oops</html>"), TransientConnectorError, None, "500"),
    (
        _sf(503, "SERVER_UNAVAILABLE", "Server unavailable"),
        TransientConnectorError,
        None,
        "SERVER_UNAVAILABLE",
    ),
    (Fault.hang(5), TransientConnectorError, None, "timed out"),
    (Fault.reset(), TransientConnectorError, None, "failed"),
    (Fault.redirect("https://elsewhere.example/"), PermanentConnectorError, None, "redirects"),
]


@pytest.mark.parametrize(("fault", "error", "retry_after", "message"), FAULTS)
def test_salesforce_answers_map_to_retry_or_dead_letter(
    salesforce: SalesforceConnector,
    org: SalesforceStandIn,
    fault: Fault,
    error: type[ConnectorError],
    retry_after: float | None,
    message: str,
) -> None:
    case = org.add_case()
    org.inject(fault)
    with pytest.raises(ConnectorError, match=message) as caught:
        salesforce.send(sync(case, status="escalated"))
    assert type(caught.value) is error
    if isinstance(caught.value, TransientConnectorError):
        assert caught.value.retry_after == retry_after
    assert TOKEN not in str(caught.value)
    salesforce.send(sync(case, status="escalated"))
    assert org.org.cases[case]["Status"] == "Escalated"


def test_the_org_limit_is_transient_with_the_configured_wait(org: SalesforceStandIn) -> None:
    org.api_limit = 1
    connector = _connector(org, limit_retry_after=900)
    try:
        case = org.add_case()
        connector.send(sync(case, status="open"))
        with pytest.raises(TransientConnectorError, match="REQUEST_LIMIT_EXCEEDED: TotalRequests") as caught:
            connector.send(sync(case, status="escalated"))
    finally:
        connector.close()
    assert caught.value.retry_after == 900


def test_an_expired_token_is_permanent_and_says_so_without_the_token(
    org: SalesforceStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "00DSTANDIN!AQ0AQexpired.token.SECRET"
    connector = _connector(org, access_token=SecretStr(wrong))
    try:
        with pytest.raises(
            PermanentConnectorError, match=r"INVALID_SESSION_ID.*expired or was revoked"
        ) as caught:
            connector.send(sync(org.add_case(), status="open"))
        org.inject(_sf(400, "INVALID_FIELD", f"token {wrong} not allowed here"))
        with pytest.raises(PermanentConnectorError) as echoed:  # a vendor echoing the token back
            connector.send(sync(org.add_case(), status="open"))
    finally:
        connector.close()
    assert "[secret]" in str(echoed.value)
    for text in (str(caught.value), str(echoed.value), caplog.text):
        assert wrong not in text and TOKEN not in text


def test_picklist_values_the_org_lacks_are_permanent_with_a_hint(org: SalesforceStandIn) -> None:
    connector = _connector(org, status_values={"pending": "Waiting on Customer"})
    try:
        with pytest.raises(PermanentConnectorError, match=r"RESTRICTED_PICKLIST.*status_values"):
            connector.send(sync(org.add_case(), status="pending"))
        with pytest.raises(PermanentConnectorError, match="no Case Status for status 'open'"):
            connector.send(sync(org.add_case(), status="open"))
    finally:
        connector.close()


def test_an_unknown_owner_and_case_are_permanent(
    salesforce: SalesforceConnector, org: SalesforceStandIn
) -> None:
    with pytest.raises(PermanentConnectorError, match=r"INVALID_CROSS_REFERENCE_KEY.*OwnerId"):
        salesforce.send(sync(org.add_case(), assignee="005000000000999AAA"))
    with pytest.raises(PermanentConnectorError, match="NOT_FOUND"):
        salesforce.send(sync("500000000000999AAA", status="open"))


HOSTILE = [
    Fault.status(201, b"<html>not json</html>"),
    Fault.status(201, b"{" * 2_000_000),  # over max_response_bytes: cut, then unreadable
    Fault.status(201, b"[" * 100_000),  # nested past the json module's recursion limit
    Fault.json(201, {"id": 12345, "success": True}),
    Fault.json(201, {"id": "../../sobjects/User", "success": True}),
    Fault.json(201, ["not", "an", "object"]),
]


@pytest.mark.parametrize("fault", HOSTILE)
def test_an_unreadable_upsert_answer_is_transient_and_the_retry_is_safe(
    salesforce: SalesforceConnector, org: SalesforceStandIn, fault: Fault
) -> None:
    account = org.add_account()
    org.inject(fault)
    with pytest.raises(TransientConnectorError, match="names no record id"):
        salesforce.send(action("activity", account_id=account))
    delivery = salesforce.send(action("activity", attempt=2, account_id=account))
    assert delivery.external_id is not None and delivery.external_id.startswith("00T")


def test_an_unreadable_create_answer_is_not_retried() -> None:
    with SalesforceStandIn(TOKEN, external_id_field=None) as org:
        connector = _connector(org, task_external_id_field=None)
        try:
            org.inject(Fault.status(201, b"garbage"))
            with pytest.raises(PermanentConnectorError, match="not retried, to avoid a duplicate"):
                connector.send(action("activity", account_id=org.add_account()))
        finally:
            connector.close()


INVALID = [
    (action("sync", changes={"status": "open"}), "no Case for ticket T-0123456789abcdef"),
    (action("sync", external_id="500' OR 1=1", changes={"status": "open"}), "not a Salesforce record id"),
    (action("sync", external_id="500000000000001AAA", changes="status=open"), "changes is not a mapping"),
    (action("sync", external_id="500000000000001AAA", changes={"status": "later"}), "no Case Status"),
    (
        action("sync", external_id="500000000000001AAA", changes={"assignee": "ann@example.com"}),
        "User or Queue",
    ),
    (action("sync", external_id="500000000000001AAA", changes={}), "nothing to write"),
    (action("activity", text="x"), "no account_id and no Case"),
    (action("activity", account_id="001000000000001AAA", date="yesterday"), "not YYYY-MM-DD"),
    (action("page"), "cannot perform 'page'"),
]


@pytest.mark.parametrize(("sent", "message"), INVALID)
def test_what_the_connector_can_tell_is_wrong_never_leaves(
    salesforce: SalesforceConnector, org: SalesforceStandIn, sent: OutboundAction, message: str
) -> None:
    with pytest.raises(PermanentConnectorError, match=message):
        salesforce.send(sent)
    assert org.requests == []


# -- configuration and where requests may go -----------------------------------------------------------

ENV = {
    "BATON_CONNECTORS": "salesforce",
    "BATON_SALESFORCE_URL": "https://acme.my.salesforce.com",
    "BATON_SALESFORCE_ACCESS_TOKEN": TOKEN,
}

CONFIG_ERRORS = [
    ({"BATON_SALESFORCE_ACCESS_TOKEN": TOKEN}, "needs BATON_SALESFORCE_URL"),
    ({"BATON_SALESFORCE_URL": "https://acme.my.salesforce.com"}, "BATON_SALESFORCE_ACCESS_TOKEN"),
    ({**ENV, "BATON_SALESFORCE_ACCESS_TOKEN": "  "}, "access_token: Value error, must not be empty"),
    ({**ENV, "BATON_SALESFORCE_API_VERSION": "61"}, "api_version"),
    ({**ENV, "BATON_SALESFORCE_URL": "ftp://acme.example"}, "http:// or https://"),
    ({**ENV, "BATON_SALESFORCE_URL": f"https://u:{TOKEN}@acme.example"}, "credentials"),
    ({**ENV, "BATON_SALESFORCE_URL": "http://acme.my.salesforce.com"}, "plain http"),
    ({**ENV, "BATON_SALESFORCE_URL": "https://10.1.2.3"}, "private"),
]


@pytest.mark.parametrize(("env", "problem"), CONFIG_ERRORS)
def test_bad_settings_are_config_errors_without_the_token(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        SalesforceConnector.from_settings(load_settings(env))
    assert TOKEN not in str(caught.value)


def test_settings_build_a_connector() -> None:
    connector = SalesforceConnector.from_settings(
        load_settings({**ENV, "BATON_SALESFORCE_API_VERSION": "v60.0"})
    )
    try:
        assert connector.config.api_version == "v60.0" and connector.name == "salesforce"
        assert connector.config.task_external_id_field == "Baton_Key__c"
        assert TOKEN not in repr(connector.config)
    finally:
        connector.close()


def test_mapping_config_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown Baton values"):
        SalesforceConfig(
            url="https://x.example", access_token=SecretStr(TOKEN), status_values={"done": "Closed"}
        )
    with pytest.raises(ValueError, match="task_external_id_field"):
        SalesforceConfig(url="https://x.example", access_token=SecretStr(TOKEN), task_external_id_field="Key")


def test_a_private_address_not_allowed_is_refused(org: SalesforceStandIn) -> None:
    closed = HttpConfig(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)
    with pytest.raises(PermanentConnectorError, match="loopback"):
        _connector(org, http=closed)
    answers = {"acme.my.salesforce.com": ["10.20.30.40"]}
    config = SalesforceConfig(
        url="https://acme.my.salesforce.com", access_token=SecretStr(TOKEN), http=closed
    )
    connector = SalesforceConnector(config, resolver=lambda host, port: answers[host])
    try:
        with pytest.raises(PermanentConnectorError, match=r"10\.20\.30\.40 \(private\)") as caught:
            connector.send(sync("500000000000001AAA", status="open"))
    finally:
        connector.close()
    assert TOKEN not in str(caught.value) and org.requests == []
