"""The e-mail signal (capability S2): inbound mail to canonical events on canonical tickets.

::

    bytes ──parse_message──▶ Event | Ignored | InputError       message.py (parts.py, text.py)
                 │                                               loops.py: never ticket automatic mail
                 └─ attachments ──▶ AttachmentStore              attachments.py (content-addressed)
    Events ──resolve_threads──▶ Engine.ingest_in (one transaction)   threads.py, intake.py
    .eml / mbox files ──read_eml / read_mbox──▶ bytes            mbox.py

The SMTP receiver (:mod:`baton.signals.smtp`) and ``baton ingest`` both go through
:class:`MailIntake`. Threading, the loop-protection table, the flags of degraded messages and the
headers Baton's own outbound mail carries are documented in the modules that implement them.
"""

from __future__ import annotations

from baton.signals.email.attachments import AttachmentStore
from baton.signals.email.intake import MailIntake, Outcome, mail_options
from baton.signals.email.loops import BATON_ORIGIN_HEADER, BATON_TICKET_HEADER, Ignored
from baton.signals.email.mbox import MailItem, read_eml, read_mbox, sniff
from baton.signals.email.message import MailOptions, parse_message
from baton.signals.email.threads import (
    EMAIL_SYSTEM,
    find_token,
    outbound_headers,
    resolve_threads,
    subject_token,
    with_token,
)

__all__ = [
    "BATON_ORIGIN_HEADER",
    "BATON_TICKET_HEADER",
    "EMAIL_SYSTEM",
    "AttachmentStore",
    "Ignored",
    "MailIntake",
    "MailItem",
    "MailOptions",
    "Outcome",
    "find_token",
    "mail_options",
    "outbound_headers",
    "parse_message",
    "read_eml",
    "read_mbox",
    "resolve_threads",
    "sniff",
    "subject_token",
    "with_token",
]
