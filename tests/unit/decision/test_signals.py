"""Signals (src/baton/enrich/signals.py): what ``signals`` holds for a policy expression, derived
from the ticket before the event and the event itself, a source's own values, and a case's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from baton.enrich.signals import build_context, derive_signals, text_signals
from baton.model import Account, Stage, Ticket
from tests.conftest import START
from tests.helpers import event


@pytest.mark.parametrize(
    ("subject", "body", "keywords", "sentiment"),
    [
        ("How do I export?", "Thanks for the help", [], 1.0),
        ("Export broken", "This is unacceptable and I am furious", [], -1.0),
        ("Login", "I am not happy", [], -1.0),  # a negation turns the word around
        ("Login", "Never been so glad, but the page is broken", [], -1.0),  # negated glad, and broken
        ("Great product", "but the export is terrible", [], 0.0),  # one each way
        ("We want to cancel", "and get a refund, our lawyer says", ["cancel", "legal", "refund"], 0.0),
        ("API is down", "URGENT: outage since 9:00", ["outage", "urgent"], 0.0),
        ("Download", "the download button", [], 0.0),  # whole words only: no "down" in Download
        ("Cancellation", "CANCELLATION please", ["cancel"], 0.0),  # any case
    ],
)
def test_text_signals_of_a_new_ticket(subject: str, body: str, keywords: list[str], sentiment: float) -> None:
    signals = derive_signals(None, event(1, subject=subject, body=body))
    assert signals == {
        "keywords": keywords,
        "sentiment": sentiment,
        "repeat_contacts": 0,
        "failed_attempts": 0,
    }


def ticket(**fields: object) -> Ticket:
    base: dict[str, object] = {"id": "T-1", "created_at": START, "updated_at": START, "stage": Stage.OPEN}
    return Ticket(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("before", "kind", "fields", "repeat", "failed"),
    [
        (ticket(), "customer.replied", {"body": "any news?"}, 1, 0),  # this reply counts
        (ticket(customer_replies=2), "customer.replied", {}, 3, 0),
        (ticket(customer_replies=2), "agent.replied", {}, 2, 0),
        (ticket(stage=Stage.SOLVED), "ticket.reopened", {}, 0, 1),  # this reopening counts
        (ticket(stage=Stage.SOLVED, reopen_count=1), "status.changed", {"status": "open"}, 0, 2),
        (ticket(stage=Stage.CLOSED), "alert.fired", {}, 0, 1),  # the alert came back
        (ticket(stage=Stage.OPEN), "alert.fired", {}, 0, 0),  # nothing to reopen
        (ticket(stage=Stage.SOLVED), "status.changed", {"status": "closed"}, 0, 0),
        (ticket(stage=Stage.SOLVED), "customer.replied", {}, 1, 0),  # a reply does not reopen
    ],
)
def test_conversation_signals_count_this_event(
    before: Ticket, kind: str, fields: dict[str, object], repeat: int, failed: int
) -> None:
    signals = derive_signals(before, event(2, kind, at=START + timedelta(hours=1), **fields))
    assert (signals["repeat_contacts"], signals["failed_attempts"]) == (repeat, failed)


def test_a_customer_reply_adds_its_words_and_other_events_do_not() -> None:
    before = ticket(subject="Export", body="It is slow")
    angry = "This is ridiculous, I want a refund"
    reply = derive_signals(before, event(2, "customer.replied", body=angry))
    note = derive_signals(before, event(3, "note.added", body=angry))
    assert (reply["keywords"], reply["sentiment"]) == (["refund"], -1.0)
    assert (note["keywords"], note["sentiment"]) == ([], 0.0)


def test_a_source_may_send_signals_and_a_case_gives_the_last_word() -> None:
    sent = event(1, subject="Thanks", data={"signals": {"sentiment": -0.9, "churn_risk": 0.7}})
    assert derive_signals(None, sent)["sentiment"] == -0.9
    assert derive_signals(None, sent)["churn_risk"] == 0.7
    given = derive_signals(None, sent, {"churn_risk": 0.1})
    assert (given["sentiment"], given["churn_risk"]) == (-0.9, 0.1)
    ignored = derive_signals(None, event(1, subject="Thanks", data={"signals": "not a mapping"}))
    assert ignored["sentiment"] == 1.0


def test_the_context_names_what_is_missing_and_carries_the_signals() -> None:
    opening = event(1, subject="Outage", body="is down")
    acme = Account(id="acme")
    known = build_context(account=acme, account_id="acme", loads={}, ticket=None, event=opening)
    unknown = build_context(account=None, account_id="acme", loads={}, ticket=None, event=opening)
    none = build_context(account=None, account_id=None, loads={}, ticket=None, event=opening)
    assert (known.account, known.gaps, unknown.gaps, none.gaps) == (acme, (), ("account",), ("account_id",))
    assert known.signals["keywords"] == unknown.signals["keywords"] == ["outage"]


@pytest.mark.parametrize(
    ("text", "positive", "negative"),
    [
        ("not happy, terrible.", 0, 2),  # the comma ends the negation: terrible stays negative
        ("It isn\u2019t great", 0, 1),  # a typographic apostrophe
        ("No. Great work", 1, 0),  # a sentence apart
        ("not so very happy", 0, 1),  # three words on: still in reach
        ("not at all so happy", 1, 0),  # four words on: out of reach
    ],
)
def test_a_negation_reaches_three_words_within_its_sentence(text: str, positive: int, negative: int) -> None:
    _, pos, neg = text_signals(text)
    assert (pos, neg) == (positive, negative)


@pytest.mark.parametrize(
    ("text", "keywords", "positive", "negative"),
    [
        ("This is “urgent”", {"urgent"}, 0, 0),
        ("We have an outage—please help", {"outage"}, 0, 0),
        ("refund…", {"refund"}, 0, 0),
        ("I am «unhappy»", set(), 0, 1),
        ("not “happy”… great", set(), 1, 1),  # the ellipsis ends the negation's sentence
        ("¡thanks!", set(), 1, 0),
    ],
)
def test_typographic_punctuation_separates_words_as_ascii_does(
    text: str, keywords: set[str], positive: int, negative: int
) -> None:
    assert text_signals(text) == (frozenset(keywords), positive, negative)
