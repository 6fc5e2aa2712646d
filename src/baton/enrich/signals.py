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
                    (``not``, ``never``...) counts the other way. A lexicon, not a trained
                    model: it reads words, not tone
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

import re
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
_TRIGGER = re.compile(
    "|".join(
        f"(?P<{name}>" + "|".join(rf"\b{re.escape(word)}\b" for word in words) + ")"
        for name, words in TRIGGERS.items()
    ),
    re.IGNORECASE,
)
_NEGATION_REACH = 3
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_MAX_TEXT = 20_000  # characters read per text; a pasted log says nothing more about tone


@lru_cache(maxsize=4_096)
def text_signals(text: str) -> tuple[frozenset[str], int, int]:
    """(trigger names, positive words, negative words) in ``text``."""
    text = text[:_MAX_TEXT]
    found = frozenset(match.lastgroup for match in _TRIGGER.finditer(text) if match.lastgroup)
    positive = negative = 0
    negated = 0  # words left that a negation before them turns around ("not so happy")
    for word in _WORD.findall(text.lower()):
        tone = (word in POSITIVE) - (word in NEGATIVE)
        if tone and negated:
            tone = -tone
        positive += tone > 0
        negative += tone < 0
        negated = _NEGATION_REACH if word in _NEGATIONS else max(negated - 1, 0)
    return found, positive, negative


def derive_signals(
    ticket: Ticket | None, event: Event, given: Mapping[str, JsonValue] | None = None
) -> dict[str, JsonValue]:
    """The signals of the ticket ``event`` is about (``ticket`` as it was before the event; None
    when the event opens it); see the module docstring."""
    f = event.fields
    subject = ticket.subject if ticket is not None else (f.subject or "")
    report = ticket.body if ticket is not None else (f.body or "")
    keywords, positive, negative = text_signals(f"{subject}\n{report}")
    customer_text = f.body if event.type == EventType.CUSTOMER_REPLIED else None
    if customer_text:
        more, pos, neg = text_signals(customer_text)
        keywords, positive, negative = keywords | more, positive + pos, negative + neg
    replies = ticket.customer_replies if ticket is not None else 0
    reopens = ticket.reopen_count if ticket is not None else 0
    if event.type == EventType.CUSTOMER_REPLIED:
        replies += 1
    if ticket is not None and ticket.stage in (Stage.SOLVED, Stage.CLOSED) and _reopens(event):
        reopens += 1
    tone = positive + negative
    signals: dict[str, JsonValue] = {
        "keywords": list[JsonValue](sorted(keywords)),
        "sentiment": round((positive - negative) / tone, 2) if tone else 0.0,
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
