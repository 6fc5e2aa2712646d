"""A ticket keeps one external link per (system, id): the connector that made the item records its
id, the vendor's webhook later brings the same id with its web address."""

from __future__ import annotations

from baton.engine.decide import with_link
from baton.model import ExternalLink

BARE = ExternalLink(system="pagerduty", id="k-1")
WITH_URL = ExternalLink(system="pagerduty", id="k-1", url="https://acme.pagerduty.com/incidents/P1")
OTHER = ExternalLink(system="jira", id="10042", url="https://acme.atlassian.net/browse/OPS-1")


def test_a_new_link_is_added_at_the_end() -> None:
    assert with_link((OTHER,), BARE) == (OTHER, BARE)


def test_the_same_link_again_changes_nothing_and_says_so_by_identity() -> None:
    links = (OTHER, BARE)
    assert with_link(links, BARE) is links
    assert with_link(links, ExternalLink(system="pagerduty", id="k-1")) is links


def test_a_web_address_fills_in_a_link_that_had_none_in_its_place() -> None:
    assert with_link((BARE, OTHER), WITH_URL) == (WITH_URL, OTHER)


def test_a_link_keeps_its_first_address() -> None:
    links = (WITH_URL,)
    moved = ExternalLink(system="pagerduty", id="k-1", url="https://elsewhere.example/P1")
    assert with_link(links, moved) is links
    assert with_link(links, BARE) is links


def test_the_same_id_in_another_system_is_another_link() -> None:
    incident = ExternalLink(system="pagerduty.incident", id="k-1")
    assert with_link((BARE,), incident) == (BARE, incident)
