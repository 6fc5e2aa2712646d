"""Loop protection: mail that must never open a ticket or count as a customer reply.

Each rule has a name (shown as the ``reason`` of the :class:`Ignored` verdict and counted), and
the table is walked in order; the first rule that matches decides. The rules follow RFC 3834
("Recommendations for Automatic Responses to Electronic Mail") and what auto-responders, list
servers and bounce generators actually send:

=================  ==========================================================================
reason             matches
=================  ==========================================================================
``baton``          Baton's own outbound mail (``X-Baton-Origin`` or ``X-Baton-Ticket`` header)
``bounce``         a null envelope or Return-Path sender (``<>``), a ``mailer-daemon`` or
                   ``postmaster`` sender, or a ``multipart/report`` delivery report
``auto-submitted`` ``Auto-Submitted`` with any value but ``no`` (RFC 3834)
``auto-reply``     ``X-Autoreply``, ``X-Autorespond``, ``X-Autoresponder``, ``X-Autoreply-From``,
                   ``X-Mail-Autoreply``, ``X-FC-MachineGenerated`` or ``Delivered-To: autoresponder``
``bulk``           ``Precedence: bulk | junk | list | auto_reply``
``mailing-list``   ``List-Id`` or ``List-Unsubscribe``, unless the List-Id is allowed
                   (``BATON_EMAIL_ALLOWED_LISTS``: a customer's own group address, say)
``out-of-office``  a subject that starts like an out-of-office notice in one of a dozen languages
=================  ==========================================================================

``X-Auto-Response-Suppress`` is deliberately not a rule: Outlook sets it on ordinary mail (meeting
responses, messages sent through some add-ins), and Exchange's real auto-replies also carry
``Auto-Submitted``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

__all__ = ["BATON_ORIGIN_HEADER", "BATON_TICKET_HEADER", "RULES", "Ignored", "MailFacts", "check_loops"]

BATON_ORIGIN_HEADER = "X-Baton-Origin"
BATON_TICKET_HEADER = "X-Baton-Ticket"


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message deliberately not ingested: ``reason`` is the rule's name, ``detail`` what it saw."""

    reason: str
    detail: str
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class MailFacts:
    """What the rules look at, already decoded: header names in lower case, each with its values."""

    headers: dict[str, tuple[str, ...]]
    sender: str | None
    envelope_sender: str | None
    subject: str
    content_type: str
    allowed_lists: Collection[str] = ()

    def first(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0].strip() if values else None


Rule = Callable[[MailFacts], str | None]  # the detail when the rule matches, else None


def _baton(m: MailFacts) -> str | None:
    for name in (BATON_ORIGIN_HEADER, BATON_TICKET_HEADER):
        value = m.first(name.lower())
        if value is not None:
            return f"{name}: {value[:100]}"
    return None


# MAILER-DAEMON or postmaster as the mailbox, with or without a domain, in the raw From header.
_DAEMON = re.compile(r"(?<![\w.-])(?:mailer[-_]?daemon|postmaster)(?=@|>|\s|$)", re.IGNORECASE)


def _bounce(m: MailFacts) -> str | None:
    if m.envelope_sender == "":
        return "null envelope sender"
    return_path = m.first("return-path")
    if return_path is not None and return_path.replace(" ", "") == "<>":
        return "Return-Path: <>"
    sender = m.first("from") or m.sender or ""
    if _DAEMON.search(sender):
        return f"sender {sender[:100]}"
    if m.content_type == "multipart/report":
        return "multipart/report (delivery or disposition report)"
    return None


def _auto_submitted(m: MailFacts) -> str | None:
    value = m.first("auto-submitted")
    if value is None:
        return None
    keyword = value.split(";", 1)[0].strip().lower()
    return None if keyword == "no" else f"Auto-Submitted: {value[:100]}"


_AUTOREPLY_HEADERS = (
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-autoreply-from",
    "x-mail-autoreply",
    "x-fc-machinegenerated",
)


def _auto_reply(m: MailFacts) -> str | None:
    for name in _AUTOREPLY_HEADERS:
        value = m.first(name)
        if value is not None and value.lower() not in ("no", "false", "0"):
            return f"{name}: {value[:100]}"
    for value in m.headers.get("delivered-to", ()):
        if value.strip().lower() == "autoresponder":
            return "Delivered-To: autoresponder"
    return None


def _bulk(m: MailFacts) -> str | None:
    value = m.first("precedence")
    if value is not None and value.lower() in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {value}"
    return None


_LIST_ID = re.compile(r"<([^<>]+)>")


def _list_id(value: str) -> str:
    """The identifier of ``List-Id: Display name <list.example.com>``."""
    found = _LIST_ID.search(value)
    return (found.group(1) if found else value).strip().lower()


def _mailing_list(m: MailFacts) -> str | None:
    list_id = m.first("list-id")
    allowed = {item.strip().lower() for item in m.allowed_lists if item.strip()}
    if list_id is not None and _list_id(list_id) in allowed:
        return None
    if list_id is not None:
        return f"List-Id: {list_id[:100]}"
    if m.first("list-unsubscribe") is not None:
        return "List-Unsubscribe"
    return None


# Anchored at the start of the subject and followed by a colon (either width) or the end, so a
# customer writing "Out of office replies from your app are broken" still opens a ticket.
_OOO_PHRASES = (
    r"auto(?:matic)?[- ]?(?:reply|response)",
    r"autoreply",
    r"auto",
    r"out of (?:the )?office(?: auto[- ]?reply)?",
    r"abwesenheitsnotiz",
    r"automatische antwort",
    r"abwesend",
    r"r[ée]ponse automatique",
    r"absence du bureau",
    r"respuesta autom[áa]tica",
    r"fuera de la oficina",
    r"risposta automatica",
    r"fuori sede",
    r"fuori ufficio",
    r"automatisch antwoord",
    r"afwezig",
    r"resposta autom[áa]tica",
    r"autosvar",
    r"automatisk svar",
    r"fr[åa]nvaro",
    r"automatyczna odpowied[źz]",
    r"poza biurem",
    r"автоматический ответ",
    r"автоответ",
    r"自動応答",
    r"自動返信",
    r"不在",
    r"自动回复",
)
# r"[:\uff1a]": an ASCII or a full-width colon.
_OOO = re.compile(r"^\s*(?:" + "|".join(_OOO_PHRASES) + r")\s*(?:[:\uff1a]|$)", re.IGNORECASE)


def _out_of_office(m: MailFacts) -> str | None:
    return f"subject {m.subject[:100]!r}" if _OOO.match(m.subject) else None


RULES: tuple[tuple[str, Rule], ...] = (
    ("baton", _baton),
    ("bounce", _bounce),
    ("auto-submitted", _auto_submitted),
    ("auto-reply", _auto_reply),
    ("bulk", _bulk),
    ("mailing-list", _mailing_list),
    ("out-of-office", _out_of_office),
)
"""The loop-protection table, in the order it is walked."""


def check_loops(facts: MailFacts, *, message_id: str | None = None) -> Ignored | None:
    """The first rule that says this mail is automatic, or None for mail a person wrote."""
    for reason, rule in RULES:
        detail = rule(facts)
        if detail is not None:
            return Ignored(reason=reason, detail=detail, message_id=message_id)
    return None
