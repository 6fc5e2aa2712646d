"""Vendor rules that need no network: Slack names, escaping and error classes; PagerDuty events."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from baton.clock import FakeClock
from baton.connectors.base import OutboundAction
from baton.connectors.config import PagerDutyConfig
from baton.connectors.pagerduty import PagerDutyConnector, dedup_key, severity
from baton.connectors.slack import TRANSIENT_ERRORS, channel_name, escape
from baton.errors import PermanentConnectorError
from tests.conftest import START


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("inc-T-42", "inc-t-42"),
        ("Payment outage: EU!", "payment-outage-eu"),
        ("inc-" + "x" * 100, "inc-" + "x" * 76),
        ("__under_score__", "__under_score__"),
    ],
)
def test_channel_names_follow_slacks_rules(raw: str, name: str) -> None:
    assert channel_name(raw) == name


def test_a_name_with_nothing_usable_is_refused() -> None:
    with pytest.raises(PermanentConnectorError):
        channel_name("!!!")


def test_customer_text_cannot_ping_or_link() -> None:
    assert (
        escape("<!channel> see <https://evil|bank> & co")
        == "&lt;!channel&gt; see &lt;https://evil|bank&gt; &amp; co"
    )


def test_only_server_side_slack_errors_are_retried() -> None:
    assert {"ratelimited", "internal_error", "fatal_error", "service_unavailable"} <= TRANSIENT_ERRORS
    assert (
        not {"invalid_auth", "channel_not_found", "not_in_channel", "is_archived", "missing_scope"}
        & TRANSIENT_ERRORS
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("critical", "critical"),
        ("ERROR", "error"),
        ("urgent", "critical"),
        ("high", "error"),
        ("low", "info"),
    ],
)
def test_severities_map_onto_pagerdutys_four(value: str, expected: str) -> None:
    assert severity(value) == expected


def test_unknown_severities_are_refused_not_guessed() -> None:
    with pytest.raises(PermanentConnectorError, match="severity 'sev1'"):
        severity("sev1")


def _action(kind: str = "page", **params: object) -> OutboundAction:
    return OutboundAction(
        key="k" * 64, ticket_id="T-9", connector="pagerduty", kind=kind, params=params, attempt=1
    )


def test_a_trigger_and_its_resolve_share_the_tickets_dedup_key() -> None:
    connector = PagerDutyConnector(
        PagerDutyConfig(
            routing_key=SecretStr("DEFAULTKEY"), service_keys={"platform": SecretStr("PLATFORMKEY")}
        ),
        clock=FakeClock(START),
    )
    trigger = connector.event(
        _action(service="platform", severity="urgent", subject="API down", text="5xx spike")
    )
    resolve = connector.event(_action(service="platform", event_action="resolve"))
    assert (
        trigger["dedup_key"] == resolve["dedup_key"] == dedup_key("T-9", "platform") == "baton/T-9/platform"
    )
    assert trigger["routing_key"] == resolve["routing_key"] == "PLATFORMKEY"
    assert trigger["payload"] == {
        "summary": "API down",
        "source": "baton",
        "severity": "critical",
        "timestamp": START.isoformat(),
        "component": "platform",
        "custom_details": {"ticket": "T-9", "baton_key": "k" * 64, "text": "5xx spike"},
    }
    assert resolve == {
        "routing_key": "PLATFORMKEY",
        "event_action": "resolve",
        "dedup_key": "baton/T-9/platform",
    }
    assert connector.event(_action(kind="notify", text="x"))["routing_key"] == "DEFAULTKEY"
    assert connector.event(_action(summary="s" * 2_000))["payload"]["summary"] == "s" * 1024
    with pytest.raises(PermanentConnectorError, match="event_action 'snooze'"):
        connector.event(_action(event_action="snooze"))
    connector.close()
