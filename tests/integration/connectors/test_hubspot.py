"""The HubSpot connector against the CRM v3 stand-in, over real HTTP on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from baton.clock import FakeClock
from baton.connectors.base import OutboundAction
from baton.connectors.config import HttpConfig
from baton.connectors.hubspot import HubSpotConfig, HubSpotConnector, marker
from baton.errors import (
    ConfigError,
    ConnectorError,
    DeferredDelivery,
    PermanentConnectorError,
    TransientConnectorError,
)
from baton.model import ExternalLink
from baton.settings import load_settings
from tests.conftest import START
from tests.standins.fixtures import LOOPBACK
from tests.standins.hubspot import HubSpotStandIn
from tests.standins.server import Fault

TOKEN = "pat-na1-00000000-standin-hubspot-token-SECRET"
NOTES = "/crm/v3/objects/notes"


@pytest.fixture
def account() -> Iterator[HubSpotStandIn]:
    with HubSpotStandIn(TOKEN) as standin:
        yield standin


def _connector(standin: HubSpotStandIn, **overrides: Any) -> HubSpotConnector:
    config = HubSpotConfig(
        **{"access_token": SecretStr(TOKEN), "api_url": standin.url, "http": LOOPBACK, **overrides}
    )
    return HubSpotConnector(config, clock=FakeClock(START))


@pytest.fixture
def hubspot(account: HubSpotStandIn) -> Iterator[HubSpotConnector]:
    connector = _connector(account)
    yield connector
    connector.close()


def action(kind: str, n: int = 1, attempt: int = 1, **params: Any) -> OutboundAction:
    return OutboundAction(f"{n:064x}", "T-0123456789abcdef", "hubspot", kind, params, attempt)


def sync(ticket: str, n: int = 1, attempt: int = 1, **changes: str) -> OutboundAction:
    return action("sync", n, attempt, external_id=ticket, changes=changes, note="Baton: escalated by rule")


# -- sync / status ---------------------------------------------------------------------------------


def test_a_sync_writes_stage_priority_and_owner_to_the_ticket(
    hubspot: HubSpotConnector, account: HubSpotStandIn
) -> None:
    ticket, owner = account.add_ticket(), account.add_owner()
    delivery = hubspot.send(sync(ticket, status="pending", priority="urgent", assignee=owner))
    call, details = account.requests
    assert (call.method, call.path) == ("PATCH", f"/crm/v3/objects/tickets/{ticket}")
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["content-type"] == "application/json"
    properties = {"hs_pipeline_stage": "2", "hs_ticket_priority": "HIGH", "hubspot_owner_id": owner}
    assert call.json() == {"properties": properties}
    assert account.tickets[ticket] == {"hs_pipeline": "0", **properties}
    assert details.path == "/account-info/v3/details"  # once, for the record URL
    assert delivery.external_id == ticket
    assert delivery.link == ExternalLink(
        system="hubspot", id=ticket, url=f"https://app.hubspot.com/contacts/4242/record/0-5/{ticket}"
    )
    # urgent is written as HIGH, which reads back as high: that is what the ticket's echo will say
    assert delivery.wrote == {"status": "pending", "priority": "high", "assignee": owner}
    assert delivery.detail == {"ticket": ticket, "properties": properties}
    hubspot.send(sync(ticket, 2, status="open"))
    assert len(account.calls("GET", "/account-info/v3/details")) == 1
    assert account.notes == {}


MAPPING = [
    ({"status": "new"}, {"hs_pipeline_stage": "1"}, {"status": "new"}),
    ({"status": "open"}, {"hs_pipeline_stage": "3"}, {"status": "open"}),
    ({"status": "escalated"}, {"hs_pipeline_stage": "3"}, {"status": "open"}),  # Waiting on us reads as open
    ({"status": "pending"}, {"hs_pipeline_stage": "2"}, {"status": "pending"}),
    ({"status": "solved"}, {"hs_pipeline_stage": "4"}, {"status": "closed"}),
    ({"status": "Closed"}, {"hs_pipeline_stage": "4"}, {"status": "closed"}),
    ({"priority": "low"}, {"hs_ticket_priority": "LOW"}, {"priority": "low"}),
    ({"priority": "normal"}, {"hs_ticket_priority": "MEDIUM"}, {"priority": "normal"}),
    ({"priority": "high"}, {"hs_ticket_priority": "HIGH"}, {"priority": "high"}),
]


@pytest.mark.parametrize(("changes", "properties", "wrote"), MAPPING)
def test_baton_values_map_onto_the_default_pipeline_and_priorities(
    hubspot: HubSpotConnector,
    account: HubSpotStandIn,
    changes: dict[str, str],
    properties: dict[str, str],
    wrote: dict[str, str],
) -> None:
    ticket = account.add_ticket()
    delivery = hubspot.send(sync(ticket, **changes))
    assert account.requests[0].json() == {"properties": properties} and delivery.wrote == wrote


def test_a_configured_pipeline_is_sent_with_its_stage(account: HubSpotStandIn) -> None:
    account.pipelines["escalations"] = {"esc-new", "esc-work", "esc-done"}
    account.priorities.add("URGENT")
    connector = _connector(
        account,
        pipeline="escalations",
        stages={"open": "esc-work", "escalated": "esc-work", "closed": "esc-done"},
        stage_readings={"esc-work": "escalated"},
        priorities={"high": "HIGH", "urgent": "URGENT"},
        portal_id=77,
        ui_domain="app-eu1.hubspot.com",
    )
    try:
        ticket = account.add_ticket()
        delivery = connector.send(sync(ticket, status="escalated", priority="urgent"))
        with pytest.raises(PermanentConnectorError, match="no pipeline stage for status 'pending'"):
            connector.send(sync(ticket, status="pending"))
    finally:
        connector.close()
    assert account.tickets[ticket]["hs_pipeline"] == "escalations"
    assert account.tickets[ticket]["hs_pipeline_stage"] == "esc-work"
    assert delivery.wrote == {"status": "escalated", "priority": "urgent"}
    assert (
        delivery.link is not None
        and delivery.link.url == f"https://app-eu1.hubspot.com/contacts/77/record/0-5/{ticket}"
    )
    assert account.calls("GET", "/account-info/v3/details") == []


def test_the_status_kind_reads_its_params_and_finds_the_ticket_by_link(
    hubspot: HubSpotConnector, account: HubSpotStandIn
) -> None:
    ticket, other = account.add_ticket(), account.add_ticket()
    hubspot.send(action("status", status="solved", links={"hubspot": ticket, "salesforce": "500x"}))
    hubspot.send(action("status", 2, priority="low", hubspot_ticket_id=other, links={"hubspot": ticket}))
    assert account.tickets[ticket]["hs_pipeline_stage"] == "4"
    assert account.tickets[other]["hs_ticket_priority"] == "LOW"  # hubspot_ticket_id wins over the link


def test_team_and_tier_go_to_one_note_on_the_ticket_even_when_retried(
    hubspot: HubSpotConnector, account: HubSpotStandIn
) -> None:
    ticket = account.add_ticket()
    account.inject(HubSpotStandIn.lost_response(path=NOTES))
    with pytest.raises(TransientConnectorError, match="hubspot create note"):
        hubspot.send(sync(ticket, status="open", team="billing", tier="2"))
    delivery = hubspot.send(sync(ticket, attempt=2, status="open", team="billing", tier="2"))
    (note,) = account.notes.values()
    assert note.associations == [(228, ticket)]
    assert note.body == (
        "<p><strong>Baton: escalated by rule</strong></p><p>team: billing<br>tier: 2</p>"
        f"<p>Baton ticket T-0123456789abcdef</p><p>ref {marker(f'{1:064x}')}</p>"
    )
    assert delivery.detail["note"] == note.id and delivery.detail["note_created"] is False
    assert delivery.wrote == {"status": "open"}


# -- activity ----------------------------------------------------------------------------------------


def test_an_activity_is_a_note_on_the_company_and_the_ticket(
    hubspot: HubSpotConnector, account: HubSpotStandIn
) -> None:
    company, ticket = account.add_company(), account.add_ticket()
    sent = action(
        "activity",
        subject="Escalated <to> L2",
        text="Checkout fails & <script>x</script>\nsince 9:00\n\nsecond paragraph",
        company_id=company,
        links={"hubspot": ticket},
    )
    delivery = hubspot.send(sent)
    call = account.requests[0]
    assert (call.method, call.path) == ("POST", NOTES)
    token = marker(sent.key)
    assert token == "baton" + "0" * 63 + "1"
    assert call.json() == {
        "properties": {
            "hs_note_body": "<p><strong>Escalated &lt;to&gt; L2</strong></p>"
            "<p>Checkout fails &amp; &lt;script&gt;x&lt;/script&gt;<br>since 9:00</p><p>second paragraph</p>"
            f"<p>Baton ticket T-0123456789abcdef</p><p>ref {token}</p>",
            "hs_timestamp": "2026-03-02T09:00:00.000Z",
        },
        "associations": [
            {
                "to": {"id": company},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 190}],
            },
            {
                "to": {"id": ticket},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 228}],
            },
        ],
    }
    (note,) = account.notes.values()
    assert note.associations == [(190, company), (228, ticket)]
    assert delivery.external_id == note.id
    assert delivery.detail == {"note": note.id, "company": company, "ticket": ticket, "created": True}
    # the link is the ticket the activity concerns, never the note: it stays the ticket's hubspot link
    assert delivery.link is not None and delivery.link.id == ticket and delivery.wrote == {}
    assert account.calls("POST", f"{NOTES}/search") == []  # a first attempt does not search


def test_an_activity_on_a_company_alone_has_no_link(
    hubspot: HubSpotConnector, account: HubSpotStandIn
) -> None:
    delivery = hubspot.send(action("activity", company_id=account.add_company(), text="hello"))
    assert delivery.link is None and delivery.detail["ticket"] is None
    assert account.calls("GET", "/account-info/v3/details") == []


def test_a_retry_after_a_lost_response_finds_the_note_instead_of_making_another(
    hubspot: HubSpotConnector, account: HubSpotStandIn
) -> None:
    company = account.add_company()
    account.inject(HubSpotStandIn.lost_response(path=NOTES))
    with pytest.raises(TransientConnectorError, match="hubspot create note"):
        hubspot.send(action("activity", company_id=company, text="first"))
    delivery = hubspot.send(action("activity", attempt=2, company_id=company, text="first"))
    (note,) = account.notes.values()
    assert delivery.external_id == note.id and delivery.detail["created"] is False
    (search,) = account.calls("POST", f"{NOTES}/search")
    assert search.json()["filterGroups"] == [
        {
            "filters": [
                {"propertyName": "hs_note_body", "operator": "CONTAINS_TOKEN", "value": marker(f"{1:064x}")}
            ]
        }
    ]
    with pytest.raises(DeferredDelivery, match="searching again in 30 s"):  # searched, not found: waits
        hubspot.send(action("activity", 2, attempt=2, company_id=company, text="another action"))
    other = hubspot.send(action("activity", 2, attempt=3, company_id=company, text="another action"))
    assert other.detail["created"] is True and len(account.notes) == 2  # searched again, created


def test_a_retry_before_search_indexes_the_note_waits_instead_of_duplicating_it(
    hubspot: HubSpotConnector, account: HubSpotStandIn
) -> None:
    account.index_lag = True
    company = account.add_company()
    account.inject(HubSpotStandIn.lost_response(path=NOTES))
    with pytest.raises(TransientConnectorError):
        hubspot.send(action("activity", company_id=company))
    with pytest.raises(DeferredDelivery) as wait:
        hubspot.send(action("activity", attempt=2, company_id=company))
    assert wait.value.retry_after == 30.0 and len(account.notes) == 1
    account.reindex()  # indexed while the action waited
    assert hubspot.send(action("activity", attempt=3, company_id=company)).detail["created"] is False
    assert len(account.notes) == 1


def test_the_remaining_window_an_index_lagging_longer_than_the_wait(account: HubSpotStandIn) -> None:
    account.index_lag = True
    company = account.add_company()
    account.inject(HubSpotStandIn.lost_response(path=NOTES))
    connector = _connector(account, search_settle_seconds=0)  # no wait at all: the old behaviour
    try:
        with pytest.raises(TransientConnectorError):
            connector.send(action("activity", company_id=company))
        connector.send(action("activity", attempt=2, company_id=company))
        assert len(account.notes) == 2  # search had not seen the first note yet
    finally:
        connector.close()


# -- errors --------------------------------------------------------------------------------------


def _hs(status: int, category: str, message: str, headers: dict[str, str] | None = None) -> Fault:
    body = {"status": "error", "message": message, "correlationId": "c0ffee00-1111", "category": category}
    return Fault.json(status, body, headers)


FAULTS: list[tuple[Fault, type[ConnectorError], float | None, str]] = [
    (
        _hs(400, "VALIDATION_ERROR", "Property values were not valid"),
        PermanentConnectorError,
        None,
        "VALIDATION",
    ),
    (_hs(404, "OBJECT_NOT_FOUND", "resource not found"), PermanentConnectorError, None, "c0ffee00-1111"),
    (_hs(409, "CONFLICT", "conflict"), TransientConnectorError, None, "CONFLICT"),
    (_hs(422, "VALIDATION_ERROR", "unprocessable"), PermanentConnectorError, None, "422"),
    (_hs(423, "LOCKED", "locked by a sync"), TransientConnectorError, 2.0, "423"),
    (_hs(429, "RATE_LIMITS", "slow down", {"retry-after": "7"}), TransientConnectorError, 7.0, "429"),
    (
        Fault.json(
            429, {"status": "error", "errorType": "RATE_LIMIT", "policyName": "DAILY", "message": "daily"}
        ),
        TransientConnectorError,
        3600.0,
        "daily",
    ),
    (_hs(429, "RATE_LIMITS", "no hint at all"), TransientConnectorError, 10.0, "no hint"),
    (Fault.status(500, b"<html>oops</html>"), TransientConnectorError, None, "500"),
    (_hs(502, "BAD_GATEWAY", "timeout"), TransientConnectorError, None, "502"),
    (Fault.status(503), TransientConnectorError, None, "503"),
    (Fault.hang(5), TransientConnectorError, None, "timed out"),
    (Fault.reset(), TransientConnectorError, None, "failed"),
]


@pytest.mark.parametrize(("fault", "error", "retry_after", "message"), FAULTS)
def test_hubspot_answers_map_to_retry_or_dead_letter(
    hubspot: HubSpotConnector,
    account: HubSpotStandIn,
    fault: Fault,
    error: type[ConnectorError],
    retry_after: float | None,
    message: str,
) -> None:
    ticket = account.add_ticket()
    account.inject(fault)
    with pytest.raises(ConnectorError, match=message) as caught:
        hubspot.send(sync(ticket, status="escalated"))
    assert type(caught.value) is error
    if isinstance(caught.value, TransientConnectorError):
        assert caught.value.retry_after == retry_after
    assert TOKEN not in str(caught.value)
    hubspot.send(sync(ticket, status="escalated"))
    assert account.tickets[ticket]["hs_pipeline_stage"] == "3"


def test_the_rolling_limit_waits_as_long_as_its_window(account: HubSpotStandIn) -> None:
    account.window_limit, account.window_ms = 2, 30_000
    connector = _connector(account, portal_id=1)
    try:
        ticket = account.add_ticket()
        connector.send(sync(ticket, status="open"))
        connector.send(sync(ticket, status="pending"))
        with pytest.raises(TransientConnectorError, match="ten_secondly_rolling") as caught:
            connector.send(sync(ticket, status="closed"))
    finally:
        connector.close()
    assert caught.value.retry_after == 30.0  # from X-HubSpot-RateLimit-Interval-Milliseconds


def test_search_has_its_own_limit(account: HubSpotStandIn, hubspot: HubSpotConnector) -> None:
    account.search_per_second = 0
    with pytest.raises(TransientConnectorError, match="secondly limit") as caught:
        hubspot.send(action("activity", attempt=2, company_id=account.add_company()))
    assert caught.value.retry_after == 1.0 and account.notes == {}


def test_a_bad_token_is_permanent_and_never_repeated(
    account: HubSpotStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "pat-na1-99999999-revoked-token-SECRET"
    connector = _connector(account, access_token=SecretStr(wrong), portal_id=1)
    try:
        with pytest.raises(
            PermanentConnectorError, match=r"INVALID_AUTHENTICATION.*revoked or rotated"
        ) as caught:
            connector.send(sync(account.add_ticket(), status="open"))
        account.inject(_hs(400, "VALIDATION_ERROR", f"token {wrong} is not allowed here"))
        with pytest.raises(PermanentConnectorError) as echoed:  # a vendor echoing the token back
            connector.send(sync(account.add_ticket(), status="open"))
    finally:
        connector.close()
    assert "[secret]" in str(echoed.value)
    for text in (str(caught.value), str(echoed.value), caplog.text):
        assert wrong not in text and TOKEN not in text


def test_missing_scopes_are_permanent_and_named() -> None:
    with HubSpotStandIn(TOKEN, scopes={"crm.objects.contacts.write"}) as account:
        connector = _connector(account)
        try:
            with pytest.raises(PermanentConnectorError, match=r"MISSING_SCOPES.*needs scope tickets"):
                connector.send(sync(account.add_ticket(), status="open"))
        finally:
            connector.close()


def test_values_the_account_refuses_are_permanent(hubspot: HubSpotConnector, account: HubSpotStandIn) -> None:
    with pytest.raises(PermanentConnectorError, match="INVALID_OWNER_ID"):
        hubspot.send(sync(account.add_ticket(), assignee="999"))
    with pytest.raises(PermanentConnectorError, match="OBJECT_NOT_FOUND"):
        hubspot.send(sync("987654", status="open"))
    with pytest.raises(PermanentConnectorError, match="associations are invalid"):
        hubspot.send(action("activity", company_id="31337"))
    assert account.notes == {}


def test_a_failed_portal_lookup_costs_the_url_not_the_action(account: HubSpotStandIn) -> None:
    connector = _connector(account)
    try:
        body = {"status": "error", "message": "scopes", "category": "MISSING_SCOPES"}
        account.inject(Fault.json(403, body, path="/account-info/v3/details"))
        first = connector.send(sync(account.add_ticket(), status="open"))
        second = connector.send(sync(account.add_ticket(), status="open"))
    finally:
        connector.close()
    assert first.link is not None and first.link.url is None and second.link is not None
    assert len(account.calls("GET", "/account-info/v3/details")) == 1  # a permanent failure is not retried


HOSTILE = [
    Fault.status(201, b"<html>not json</html>", path=NOTES),
    Fault.status(201, b"{" * 2_000_000, path=NOTES),  # over max_response_bytes: cut, then unreadable
    Fault.status(201, b"[" * 100_000, path=NOTES),  # nested past the json module's recursion limit
    Fault.json(201, {"id": {"nested": 1}}, path=NOTES),
    Fault.json(201, {"id": "../tickets/1"}, path=NOTES),
    Fault.json(201, ["an", "array"], path=NOTES),
]


@pytest.mark.parametrize("fault", HOSTILE)
def test_an_unreadable_create_answer_is_transient_and_the_retry_is_safe(
    hubspot: HubSpotConnector, account: HubSpotStandIn, fault: Fault
) -> None:
    company = account.add_company()
    account.inject(fault)
    with pytest.raises(TransientConnectorError, match="names no note id"):
        hubspot.send(action("activity", company_id=company))
    with pytest.raises(DeferredDelivery):  # searches first, finds nothing, waits
        hubspot.send(action("activity", attempt=2, company_id=company))
    hubspot.send(action("activity", attempt=3, company_id=company))  # searches again, then creates
    assert len(account.notes) == 1 and len(account.calls("POST", f"{NOTES}/search")) == 2


@pytest.mark.parametrize(
    "answer",
    [b"not json", b'{"results": "nope"}', b'{"total": 1}', b"[]"],
    ids=["text", "str", "none", "list"],
)
def test_an_unreadable_search_answer_creates_nothing(
    hubspot: HubSpotConnector, account: HubSpotStandIn, answer: bytes
) -> None:
    account.inject(Fault.status(200, answer, {"content-type": "application/json"}, path="/search"))
    with pytest.raises(TransientConnectorError, match="no list of results"):
        hubspot.send(action("activity", attempt=2, company_id=account.add_company()))
    assert account.notes == {}


INVALID = [
    (action("sync", changes={"status": "open"}), "no HubSpot ticket for ticket T-0123456789abcdef"),
    (action("sync", external_id="12/../../owners", changes={"status": "open"}), "not a HubSpot object id"),
    (action("sync", external_id="1001", changes=["status"]), "changes is not a mapping"),
    (action("sync", external_id="1001", changes={"status": "later"}), "no pipeline stage"),
    (action("sync", external_id="1001", changes={"priority": "p1"}), "no ticket priority"),
    (action("sync", external_id="1001", changes={"assignee": "ann@example.com"}), "owner id"),
    (action("sync", external_id="1001", changes={}), "nothing to write"),
    (action("activity", text="x"), "no company_id and no HubSpot ticket"),
    (action("activity", company_id="acme"), "company_id 'acme' is not a HubSpot object id"),
    (action("page"), "cannot perform 'page'"),
]


@pytest.mark.parametrize(("sent", "message"), INVALID)
def test_what_the_connector_can_tell_is_wrong_never_leaves(
    hubspot: HubSpotConnector, account: HubSpotStandIn, sent: OutboundAction, message: str
) -> None:
    with pytest.raises(PermanentConnectorError, match=message):
        hubspot.send(sent)
    assert account.requests == []


# -- configuration and where requests may go -----------------------------------------------------------

ENV = {"BATON_CONNECTORS": "hubspot", "BATON_HUBSPOT_ACCESS_TOKEN": TOKEN}

CONFIG_ERRORS = [
    ({}, "needs BATON_HUBSPOT_ACCESS_TOKEN"),
    ({**ENV, "BATON_HUBSPOT_ACCESS_TOKEN": " "}, "access_token: Value error, must not be empty"),
    ({**ENV, "BATON_HUBSPOT_API_URL": "api.hubapi.com"}, "http:// or https://"),
    ({**ENV, "BATON_HUBSPOT_API_URL": f"https://x:{TOKEN}@api.hubapi.com"}, "credentials"),
    ({**ENV, "BATON_HUBSPOT_API_URL": "http://api.hubapi.com"}, "plain http"),
    ({**ENV, "BATON_HUBSPOT_API_URL": "https://192.168.1.10"}, "private"),
    ({**ENV, "BATON_LEASE_SECONDS": "5"}, "shorter than lease_seconds"),
]


@pytest.mark.parametrize(("env", "problem"), CONFIG_ERRORS)
def test_bad_settings_are_config_errors_without_the_token(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        HubSpotConnector.from_settings(load_settings(env))
    assert TOKEN not in str(caught.value)


def test_settings_build_a_connector() -> None:
    connector = HubSpotConnector.from_settings(load_settings(ENV))
    try:
        assert connector.name == "hubspot" and connector.config.api_url == "https://api.hubapi.com"
        assert connector.config.company_association_type == 190
        assert TOKEN not in repr(connector.config)
    finally:
        connector.close()


def test_mapping_config_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown Baton values"):
        HubSpotConfig(access_token=SecretStr(TOKEN), stages={"waiting": "2"})
    with pytest.raises(ValueError, match="stages must be among"):
        HubSpotConfig(access_token=SecretStr(TOKEN), stage_readings={"2": "waiting"})
    with pytest.raises(ValueError, match="ui_domain"):
        HubSpotConfig(access_token=SecretStr(TOKEN), ui_domain="evil.example/path")


def test_a_private_address_not_allowed_is_refused(account: HubSpotStandIn) -> None:
    closed = HttpConfig(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)
    with pytest.raises(PermanentConnectorError, match="loopback"):
        _connector(account, http=closed)
    answers = {"api.hubapi.com": ["169.254.169.254"]}
    config = HubSpotConfig(access_token=SecretStr(TOKEN), http=closed, portal_id=1)
    connector = HubSpotConnector(config, resolver=lambda host, port: answers[host])
    try:
        with pytest.raises(PermanentConnectorError, match="cloud metadata") as caught:
            connector.send(sync("1001", status="open"))
    finally:
        connector.close()
    assert TOKEN not in str(caught.value) and account.requests == []
