"""The PagerDuty connector against the Events API v2 stand-in, over real HTTP on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from baton.clock import FakeClock
from baton.connectors.base import OutboundAction
from baton.connectors.config import PagerDutyConfig
from baton.connectors.pagerduty import PagerDutyConnector
from baton.errors import ConnectorError, PermanentConnectorError, TransientConnectorError
from tests.conftest import START
from tests.standins.fixtures import LOOPBACK, PAGERDUTY_KEY, PAGERDUTY_OTHER_KEY
from tests.standins.pagerduty import PagerDutyStandIn
from tests.standins.server import Fault


def _connector(standin: PagerDutyStandIn, **keys: str) -> PagerDutyConnector:
    config = PagerDutyConfig(
        routing_key=SecretStr(keys.pop("default", PAGERDUTY_KEY)),
        service_keys={service: SecretStr(key) for service, key in keys.items()},
        events_url=f"{standin.url}/v2/enqueue",
        http=LOOPBACK,
    )
    return PagerDutyConnector(config, clock=FakeClock(START))


@pytest.fixture
def pagerduty(pagerduty_standin: PagerDutyStandIn) -> Iterator[PagerDutyConnector]:
    connector = _connector(pagerduty_standin, billing=PAGERDUTY_OTHER_KEY)
    yield connector
    connector.close()


def page(n: int = 1, ticket: str = "T-7", **params: object) -> OutboundAction:
    defaults: dict[str, object] = {"service": "platform", "severity": "critical", "subject": "API down"}
    return OutboundAction(f"{n:064x}", ticket, "pagerduty", "page", {**defaults, **params}, 1)


def test_a_page_triggers_an_alert_keyed_by_the_ticket(
    pagerduty: PagerDutyConnector, pagerduty_standin: PagerDutyStandIn
) -> None:
    delivery = pagerduty.send(page())
    assert delivery.external_id == "baton/T-7/platform"
    assert delivery.detail == {"event_action": "trigger", "dedup_key": "baton/T-7/platform"}
    (alert,) = pagerduty_standin.alerts
    assert (alert.summary, alert.severity, alert.routing_key) == ("API down", "critical", PAGERDUTY_KEY)
    event = pagerduty_standin.requests[0].json()
    assert event["payload"]["source"] == "baton" and event["payload"]["component"] == "platform"
    assert event["payload"]["custom_details"]["ticket"] == "T-7"


def test_a_retried_trigger_joins_the_open_alert_and_a_resolve_closes_it(
    pagerduty: PagerDutyConnector, pagerduty_standin: PagerDutyStandIn
) -> None:
    pagerduty.send(page(1))
    pagerduty.send(page(1))  # the same action again, e.g. after a lost response
    pagerduty.send(page(2, event_action="acknowledge"))
    (alert,) = pagerduty_standin.alerts
    assert (alert.triggers, alert.status) == (2, "acknowledged")
    pagerduty.send(page(3, event_action="resolve"))
    assert alert.status == "resolved" and pagerduty_standin.dropped == []
    pagerduty.send(page(4))  # a new problem on the same ticket after the resolve: a new alert
    assert [a.incident for a in pagerduty_standin.alerts] == [1, 2]


def test_services_route_to_their_own_integration_key(
    pagerduty: PagerDutyConnector, pagerduty_standin: PagerDutyStandIn
) -> None:
    pagerduty.send(page(1, service="billing", severity="high"))
    pagerduty.send(page(2, ticket="T-8", service=None, severity="low", subject=None, text="Check invoices"))
    billing, plain = pagerduty_standin.alerts
    assert (billing.dedup_key, billing.routing_key, billing.severity) == (
        "baton/T-7/billing",
        PAGERDUTY_OTHER_KEY,
        "error",
    )
    assert (plain.dedup_key, plain.routing_key, plain.summary) == (
        "baton/T-8",
        PAGERDUTY_KEY,
        "Check invoices",
    )


FAULTS = [
    (Fault.rate_limited("30"), TransientConnectorError, 30.0),
    (
        Fault.json(
            429, {"status": "throttle event", "message": "Requests for this service are arriving too quickly"}
        ),
        TransientConnectorError,
        None,
    ),
    (Fault.status(500), TransientConnectorError, None),
    (Fault.status(503), TransientConnectorError, None),
    (Fault.hang(5), TransientConnectorError, None),
    (Fault.reset(), TransientConnectorError, None),
    (
        Fault.json(400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["x"]}),
        PermanentConnectorError,
        None,
    ),
]


@pytest.mark.parametrize(("fault", "error", "retry_after"), FAULTS)
def test_pagerdutys_answers_map_to_retry_or_dead_letter(
    pagerduty: PagerDutyConnector,
    pagerduty_standin: PagerDutyStandIn,
    fault: Fault,
    error: type[ConnectorError],
    retry_after: float | None,
) -> None:
    pagerduty_standin.inject(fault)
    with pytest.raises(ConnectorError) as caught:
        pagerduty.send(page())
    assert type(caught.value) is error
    if isinstance(caught.value, TransientConnectorError):
        assert caught.value.retry_after == retry_after
    pagerduty.send(page())
    assert len(pagerduty_standin.alerts) == 1


def test_an_invalid_event_is_permanent_with_pagerdutys_reasons(
    pagerduty_standin: PagerDutyStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "WRONGKEY000000000000000000SECRET"
    connector = _connector(pagerduty_standin, default=wrong)
    try:
        with pytest.raises(
            PermanentConnectorError, match=r"HTTP 400.*Event object is invalid; Invalid routing key"
        ) as caught:
            connector.send(page())
    finally:
        connector.close()
    assert wrong not in str(caught.value) and wrong not in caplog.text and PAGERDUTY_KEY not in caplog.text


def test_what_the_connector_can_tell_is_wrong_never_leaves(
    pagerduty: PagerDutyConnector, pagerduty_standin: PagerDutyStandIn
) -> None:
    with pytest.raises(PermanentConnectorError, match="severity 'sev1'"):
        pagerduty.send(page(severity="sev1"))
    with pytest.raises(PermanentConnectorError, match="cannot perform 'incident_channel'"):
        pagerduty.send(OutboundAction("k" * 64, "T-7", "pagerduty", "incident_channel", {}, 1))
    assert pagerduty_standin.requests == []


def test_a_trigger_links_its_alert_and_a_solved_ticket_resolves_it(
    pagerduty: PagerDutyConnector, pagerduty_standin: PagerDutyStandIn
) -> None:
    delivery = pagerduty.send(page(1))
    assert delivery.link is not None and (delivery.link.system, delivery.link.id) == (
        "pagerduty",
        "baton/T-7/platform",
    )
    sync = {"ticket": "T-7", "external_id": "baton/T-7/platform", "note": "Baton: status open -> pending"}
    quiet = pagerduty.send(
        OutboundAction("a" * 64, "T-7", "pagerduty", "sync", {**sync, "changes": {"status": "pending"}}, 1)
    )
    assert quiet.detail == {"skipped": "nothing to resolve"} and len(pagerduty_standin.requests) == 1
    solved = pagerduty.send(
        OutboundAction("b" * 64, "T-7", "pagerduty", "sync", {**sync, "changes": {"status": "solved"}}, 1)
    )
    (alert,) = pagerduty_standin.alerts
    assert alert.status == "resolved" and solved.wrote == {"status": "solved"}
    assert pagerduty.send(page(2, event_action="acknowledge")).link is None


def test_a_solved_ticket_resolves_an_alert_raised_with_a_services_own_key(
    pagerduty: PagerDutyConnector, pagerduty_standin: PagerDutyStandIn
) -> None:
    link = pagerduty.send(page(1, service="billing")).link
    assert link is not None
    params = {"ticket": "T-7", "external_id": link.id, "changes": {"status": "closed"}}
    pagerduty.send(OutboundAction("c" * 64, "T-7", "pagerduty", "sync", params, 1))
    (alert,) = pagerduty_standin.alerts
    assert (alert.routing_key, alert.status) == (PAGERDUTY_OTHER_KEY, "resolved")
    assert pagerduty_standin.dropped == []
