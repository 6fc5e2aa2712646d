"""Signals: what enrichment knows about a ticket besides its account (capability E2, first part).

Policy expressions read them as ``signals`` (docs/policy.md section 12). One function,
:func:`build_context`, makes the decision's :class:`~baton.model.Context` (account, signals,
loads and gaps) for the live runtime, the replay simulator and ``baton policy test`` alike, from
the ticket as it stands before the event and the event itself:

==================  ================================================================================
``keywords``        trigger words found (sorted names: ``cancel``, ``refund``, ``legal``, ``outage``,
                    ``security``, ``urgent``) in the ticket's subject and first report, and in the
                    text of the event being decided when a customer wrote it
``sentiment``       -1 (only negative words) to 1 (only positive), 0 when neither, from a word list
                    over the same customer text; a word up to three words after a negation
                    (``not``, ``never``...) in the same sentence counts the other way. A
                    lexicon, not a trained model: it reads words, not tone
``repeat_contacts`` how often the customer has written again on this ticket (replies after the
                    opening message), this event included
``failed_attempts`` answers that did not hold: each reopening of a solved or closed ticket, this
                    event included
==================  ================================================================================

A source that knows better may send its own values in the event's ``data.signals`` (a mapping:
a helpdesk's sentiment score, a CRM's churn risk); they are added, and replace the derived value
of the same name. ``given`` (a policy test case's ``signals:``) is applied last.

Everything here is pure; the text work is cached per text, since most events of a ticket see the
same subject and report.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from pydantic import JsonValue

from baton.model import Account, Context, Event, EventType, Stage, Ticket

__all__ = ["NEGATIVE", "POSITIVE", "TRIGGERS", "build_context", "derive_signals", "text_signals"]

TRIGGERS: dict[str, tuple[str, ...]] = {
    "cancel": ("cancel", "cancellation", "cancelling", "canceling", "terminate", "termination"),
    "refund": ("refund", "refunds", "chargeback", "charged twice", "double charged", "money back"),
    "legal": ("legal", "lawyer", "lawyers", "lawsuit", "attorney", "gdpr", "breach of contract"),
    "outage": ("outage", "is down", "are down", "went down", "unavailable", "not loading", "503"),
    "security": ("hacked", "vulnerability", "phishing", "data leak", "compromised", "security breach"),
    "urgent": ("urgent", "asap", "emergency", "critical", "immediately"),
}
NEGATIVE = frozenset(
    {
        "angry", "annoyed", "annoying", "awful", "bad", "broken", "disappointed", "disappointing",
        "disgusted", "frustrated", "frustrating", "furious", "horrible", "hate", "incompetent",
        "joke", "ridiculous", "terrible", "unacceptable", "unhappy", "upset", "useless", "waste",
        "worst",
    }
)  # fmt: skip
POSITIVE = frozenset(
    {
        "appreciate", "appreciated", "awesome", "excellent", "fantastic", "glad", "great", "happy",
        "helpful", "love", "perfect", "pleased", "resolved", "thank", "thanks", "wonderful",
    }
)  # fmt: skip
_NEGATIONS = frozenset({"not", "never", "no", "isn't", "wasn't", "don't", "didn't", "doesn't", "hardly"})
_NEGATION_REACH = 3
# Everything but letters, digits and apostrophes separates words, and a sentence's punctuation is
# a word of its own, ".", that ends a negation's reach (str.translate and str.split run in C: a
# regular expression over the text costs several times as much).
_SEPARATORS = (
    {c: " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "'")}
    | {ord(c): " . " for c in ".,;:!?"}
    | {0x2019: "'"}  # the typographic apostrophe
    # Typographic quotes, dashes and spaces separate words as their ASCII forms do; an ellipsis
    # and the Spanish opening marks end a sentence.
    | {c: " " for c in (0x2018, 0x201A, 0x201B, 0x201C, 0x201D, 0x201E, 0x201F, 0xAB, 0xBB, 0x2039, 0x203A)}
    | {c: " " for c in (*range(0x2010, 0x2016), 0x2212, 0xA0, 0x2009, 0x202F, 0x2007, 0x3000)}
    | {c: " . " for c in (0x2026, 0xA1, 0xBF, 0x3002, 0xFF01, 0xFF1F)}
)
_TRIGGER_WORDS = {word: name for name, words in TRIGGERS.items() for word in words if " " not in word}
_TRIGGER_PHRASES = tuple(
    (f" {phrase} ", name) for name, words in TRIGGERS.items() for phrase in words if " " in phrase
)
_TONED = POSITIVE | NEGATIVE | _NEGATIONS
_CLOSED = (Stage.SOLVED, Stage.CLOSED)
_MAX_TEXT = 20_000  # characters read per text; a pasted log says nothing more about tone


@lru_cache(maxsize=4_096)
def text_signals(text: str) -> tuple[frozenset[str], int, int]:
    """(trigger names, positive words, negative words) in ``text``: set lookups for single words,
    substring tests for the few phrases, and a look at the words around each toned one only."""
    words = text[:_MAX_TEXT].lower().translate(_SEPARATORS).split()
    found = {_TRIGGER_WORDS[word] for word in _TRIGGER_WORDS.keys() & words}
    joined = f" {' '.join(words)} "
    found.update(name for phrase, name in _TRIGGER_PHRASES if name not in found and phrase in joined)
    positive = negative = 0
    if not _TONED.isdisjoint(words):
        for i in [i for i, word in enumerate(words) if word in _TONED]:
            word = words[i]
            if word in _NEGATIONS:
                continue
            tone = 1 if word in POSITIVE else -1
            before = words[max(0, i - _NEGATION_REACH) : i]
            if "." in before:
                before = before[len(before) - before[::-1].index(".") :]
            if not _NEGATIONS.isdisjoint(before):
                tone = -tone  # "not happy", "never been so glad"
            positive += tone > 0
            negative += tone < 0
    return frozenset(found), positive, negative


@lru_cache(maxsize=4_096)
def _opening_signals(subject: str, report: str) -> tuple[frozenset[str], int, int]:
    # Keyed by the two strings, whose hashes Python keeps: the same ticket's subject and report
    # come back on every event, and joining them first would hash the whole text each time.
    return text_signals(f"{subject}\n{report}")


@lru_cache(maxsize=4_096)
def _opening_summary(subject: str, report: str) -> tuple[tuple[str, ...], float]:
    """The keywords (sorted) and sentiment of the opening text alone: what most events see."""
    keywords, positive, negative = _opening_signals(subject, report)
    return tuple(sorted(keywords)), _sentiment(positive, negative)


def _sentiment(positive: int, negative: int) -> float:
    tone = positive + negative
    return round((positive - negative) / tone, 2) if tone else 0.0


def derive_signals(
    ticket: Ticket | None, event: Event, given: Mapping[str, JsonValue] | None = None
) -> dict[str, JsonValue]:
    """The signals of the ticket ``event`` is about (``ticket`` as it was before the event; None
    when the event opens it); see the module docstring."""
    f = event.fields
    if ticket is not None:
        subject, report = ticket.subject, ticket.body
        replies, reopens = ticket.customer_replies, ticket.reopen_count
        if ticket.stage in _CLOSED and _reopens(event):
            reopens += 1
    else:
        subject, report, replies, reopens = f.subject or "", f.body or "", 0, 0
    customer_text: str | None = None
    if event.type == EventType.CUSTOMER_REPLIED:
        replies += 1
        customer_text = f.body
    if customer_text:
        keywords, positive, negative = _opening_signals(subject, report)
        more, pos, neg = text_signals(customer_text)
        words: tuple[str, ...] | list[str] = sorted(keywords | more)
        sentiment = _sentiment(positive + pos, negative + neg)
    else:
        words, sentiment = _opening_summary(subject, report)
    keyword_list: list[JsonValue] = [*words]
    signals: dict[str, JsonValue] = {
        "keywords": keyword_list,
        "sentiment": sentiment,
        "repeat_contacts": replies,
        "failed_attempts": reopens,
    }
    sent = event.data.get("signals")
    if isinstance(sent, dict):
        signals.update(sent)
    if given:
        signals.update(given)
    return signals


def _reopens(event: Event) -> bool:
    """Whether ``event`` reopens a solved or closed ticket, as ``decide`` applies it."""
    if event.type in (EventType.REOPENED, EventType.ALERT_FIRED):
        return True
    status = event.fields.status
    return event.type == EventType.STATUS_CHANGED and status not in (None, Stage.SOLVED, Stage.CLOSED)


def build_context(
    *,
    account: Account | None,
    account_id: str | None,
    loads: dict[str, int],
    ticket: Ticket | None,
    event: Event,
    given: Mapping[str, JsonValue] | None = None,
) -> Context:
    """The decision's context: the account (or the gap where it should be), the signals, and the
    open tickets per person."""
    signals = derive_signals(ticket, event, given)
    if account is not None:
        return Context(account=account, signals=signals, loads=loads)
    return Context(gaps=("account",) if account_id else ("account_id",), signals=signals, loads=loads)
