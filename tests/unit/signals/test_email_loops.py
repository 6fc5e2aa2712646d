"""Loop protection: the table in tests/fixtures/email/loops.yaml, and Baton's own outbound mail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from baton.model import Event
from baton.signals.email import Ignored, MailOptions, outbound_headers, parse_message
from baton.signals.email.loops import RULES

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"
CASES: list[dict[str, Any]] = yaml.safe_load((FIXTURES / "loops.yaml").read_text(encoding="utf-8"))
RECEIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def build(headers: dict[str, str]) -> bytes:
    values = {"From": "alice@customer.example", "Message-ID": "<loop-case@customer.example>", **headers}
    head = "\r\n".join(f"{k}: {v}" for k, v in values.items())
    return (head + "\r\n\r\nHello.\r\n").encode()


def test_every_rule_has_a_case_and_every_case_names_a_rule() -> None:
    names = {name for name, _ in RULES}
    expected = {case["expect"] for case in CASES}
    assert expected - {"ticket"} == names


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_loop_protection(case: dict[str, Any]) -> None:
    result = parse_message(
        build(case["headers"]),
        received_at=RECEIVED,
        envelope_sender=case.get("envelope_sender"),
        options=MailOptions(allowed_lists=tuple(case.get("allowed_lists", ()))),
    )
    if case["expect"] == "ticket":
        assert isinstance(result, Event), result
    else:
        assert isinstance(result, Ignored), f"expected {case['expect']}, got an event"
        assert result.reason == case["expect"]
        assert result.detail
        assert result.message_id == "loop-case@customer.example"


@pytest.mark.parametrize(
    ("fixture", "reason"), [("out_of_office.eml", "auto-submitted"), ("bounce.eml", "bounce")]
)
def test_real_auto_replies_and_bounces_are_ignored(fixture: str, reason: str) -> None:
    result = parse_message((FIXTURES / fixture).read_bytes(), received_at=RECEIVED)
    assert isinstance(result, Ignored) and result.reason == reason


def test_mail_built_with_the_outbound_contract_is_never_ingested() -> None:
    headers = outbound_headers(
        "T-0123456789abcdef", subject="We received your request", domain="acme.example", nonce="n1"
    )
    assert headers["Subject"] == "We received your request [T-0123456789abcdef]"
    assert headers["Message-ID"] == "<baton.T-0123456789abcdef.n1@acme.example>"
    result = parse_message(build({"From": "support@acme.example", **headers}), received_at=RECEIVED)
    assert isinstance(result, Ignored) and result.reason == "baton"


def test_a_customer_reply_to_baton_mail_is_not_ignored() -> None:
    """What a client copies into a reply (subject, In-Reply-To) is not what marks Baton's mail."""
    sent = outbound_headers("T-0123456789abcdef", subject="Update", domain="acme.example", nonce="n2")
    reply = build({"Subject": "Re: " + sent["Subject"], "In-Reply-To": sent["Message-ID"]})
    result = parse_message(reply, received_at=RECEIVED)
    assert isinstance(result, Event)
    assert result.ticket_id == "T-0123456789abcdef"
