"""Jira rules that need no network: labels and Atlassian Document Format."""

from __future__ import annotations

from typing import Any

import pytest

from baton.connectors.jira import adf, dedup_label, ticket_label
from baton.errors import PermanentConnectorError


def doc(*blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": b} for b in blocks]}


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


BREAK = {"type": "hardBreak"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", doc()),
        ("one line", doc([text("one line")])),
        ("a\nb\r\n\n\n c ", doc([text("a"), BREAK, text("b")], [text("c")])),
        ("a\n\nb\n\n", doc([text("a")], [text("b")])),
        ("x\n \ny\x00\x07z", doc([text("x")], [text("yz")])),  # control characters dropped
        ("a\n\n\nb\n", doc([text("a")], [text("b")])),
        ("a\n   \n", doc([text("a")])),
    ],
)
def test_text_becomes_paragraphs_with_hard_breaks_and_no_empty_text_nodes(
    raw: str, expected: dict[str, Any]
) -> None:
    assert adf(raw) == expected


def test_a_heading_and_a_mention_open_the_document() -> None:
    assert adf("body", heading=" Escalated ", mention="5b10ac8d82e05b22cc7d4ef5") == doc(
        [
            {"type": "mention", "attrs": {"id": "5b10ac8d82e05b22cc7d4ef5"}},
            text(" "),
            text("Escalated", marks=[{"type": "strong"}]),
        ],
        [text("body")],
    )


def test_long_text_is_cut_below_jiras_limit() -> None:
    body = adf("x" * 40_000)
    assert len(body["content"][0]["content"][0]["text"]) == 32_000


def test_labels_derive_from_the_key_and_the_ticket() -> None:
    key = "ab" * 32
    assert dedup_label(key) == f"baton-{key}"
    assert dedup_label(f"{1:064x}") != dedup_label(f"{2:064x}")
    assert ticket_label("T-0123456789ABCDEF") == "baton-t-0123456789abcdef"
    assert ticket_label("T 1\t2") == "baton-t-1-2"  # Jira labels hold no spaces
    with pytest.raises(PermanentConnectorError, match="not a usable label"):
        ticket_label("T-" + "9" * 300)
