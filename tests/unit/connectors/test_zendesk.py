"""Zendesk rules that need no network: which ticket an action names, tags, the comment marker."""

from __future__ import annotations

from typing import Any

import pytest

from baton.connectors.zendesk import STATUSES, marker, normal_tag, ticket_ref
from baton.errors import PermanentConnectorError
from baton.model import Stage


@pytest.mark.parametrize(
    ("params", "ticket"),
    [
        ({"ticket_id": "123"}, "123"),
        ({"ticket_id": 123, "external_id": "456"}, "123"),
        ({"external_id": "0042"}, "42"),
        ({"ticket_id": "", "links": {"zendesk": "77", "jira": "OPS-1"}}, "77"),
        ({"external_id": " 9 "}, "9"),
    ],
)
def test_the_ticket_comes_from_ticket_id_then_external_id_then_links(
    params: dict[str, Any], ticket: str
) -> None:
    assert ticket_ref(params) == ticket


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"links": {"jira": "OPS-1"}},
        {"links": ["zendesk", "1"]},
        {"ticket_id": True},
        {"ticket_id": "1 OR 1=1"},
        {"ticket_id": "12?role=admin"},
        {"ticket_id": "-5"},
        {"ticket_id": "0"},
        {"ticket_id": "1" * 20},
    ],
)
def test_anything_but_a_ticket_number_is_refused(params: dict[str, Any]) -> None:
    with pytest.raises(PermanentConnectorError, match="zendesk: "):
        ticket_ref(params)


def test_tags_are_kept_as_zendesk_keeps_them() -> None:
    assert normal_tag("  P1 Outage\tEU ") == "p1_outage_eu"
    with pytest.raises(PermanentConnectorError, match="empty tag"):
        normal_tag("   ")


def test_the_marker_is_the_keys_first_eight_characters() -> None:
    assert marker("0123456789abcdef" * 4) == "baton:01234567"


def test_every_baton_stage_has_a_zendesk_status_an_agent_can_set() -> None:
    assert {s.value for s in Stage} <= set(STATUSES)
    assert set(STATUSES.values()) == {"new", "open", "pending", "hold", "solved"}  # never "closed"
