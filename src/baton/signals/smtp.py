"""The SMTP receiver (``baton smtp``): inbound mail straight into the engine, nothing lost.

The reply to ``DATA`` is the contract with the sending server:

=========  ==========================================================================
reply      when
=========  ==========================================================================
``250``    the event is committed (or was already: a redelivery), or the message was
           deliberately ignored by loop protection (answering anything else to an
           auto-reply or a bounce invites another one)
``451``    the store or the disk failed, or anything unexpected: the sender keeps the
           message and retries, and a retry of a message that did commit is a duplicate
``552``    over ``BATON_EMAIL_MAX_MESSAGE_BYTES`` (also announced as the ``SIZE`` extension)
``554``    malformed beyond use (no sender address, not an e-mail at all): retrying will
           not help
``550``    ``RCPT`` to an address outside ``BATON_SMTP_RECIPIENTS``, when that is set
=========  ==========================================================================

Parsing and the transaction run in a worker thread, so a large message or a slow commit never
stalls the other connections. The listener binds to ``127.0.0.1`` unless configured otherwise:
it accepts mail for ticketing, it never relays, and it does no authentication of its own, so
expose it only behind the organisation's mail server.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import weakref
from collections.abc import Collection

from aiosmtpd.smtp import SMTP, Envelope, Session

from baton.clock import Clock
from baton.settings import Settings
from baton.signals.email.intake import MailIntake, Outcome

__all__ = ["MailHandler", "SmtpServer", "build_smtp_server", "smtp_reply"]

_log = logging.getLogger("baton.signals.smtp")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


def smtp_reply(outcome: Outcome) -> str:
    """The SMTP reply line for what became of a message (see the module docstring)."""
    match outcome.status:
        case "accepted" | "duplicate":
            return "250 2.0.0 Ok"
        case "ignored":
            return f"250 2.0.0 Ok: not ticketed ({outcome.reason})"
        case "rejected" if outcome.too_large:
            return "552 5.3.4 Message too big"
        case "rejected":
            reason = _UNPRINTABLE.sub(" ", outcome.reason or "malformed message")[:200]
            return f"554 5.6.0 Message refused: {reason}"
        case _:
            return "451 4.3.0 Temporary failure, please try again later"


class MailHandler:
    """aiosmtpd handler: ``RCPT`` checks the recipient, ``DATA`` ingests through a :class:`MailIntake`."""

    def __init__(self, intake: MailIntake, *, clock: Clock, recipients: Collection[str] = ()) -> None:
        self.intake = intake
        self.clock = clock
        self.recipients = frozenset(r.strip().lower() for r in recipients if r.strip())
        self.in_flight = 0

    def accepts(self, address: str) -> bool:
        """Any address when no recipients are configured; else listed addresses and @domains."""
        if not self.recipients:
            return True
        address = address.strip().lower()
        return address in self.recipients or "@" + address.rpartition("@")[2] in self.recipients

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.accepts(address):
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.in_flight += 1
        try:
            outcome = await asyncio.to_thread(
                self.intake.receive,
                raw,
                received_at=self.clock.now(),
                envelope_sender=envelope.mail_from,
                recipients=tuple(envelope.rcpt_tos),
            )
        except Exception:  # the sender must hear "try again", never a dropped connection
            _log.exception("mail from %s not ingested", envelope.mail_from)
            return smtp_reply(Outcome("failed", "internal error"))
        finally:
            self.in_flight -= 1
        if outcome.status in ("rejected", "failed"):
            _log.warning("mail from %s %s: %s", envelope.mail_from, outcome.status, outcome.reason)
        elif outcome.status != "ignored":  # ignored mail is logged where the rule matched
            _log.info("mail %s %s (ticket %s)", outcome.event_id, outcome.status, outcome.ticket_id)
        return smtp_reply(outcome)


class SmtpServer:
    """The listener, on an event loop in its own thread. Port 0 binds any free port."""

    def __init__(
        self,
        handler: MailHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 2525,
        max_message_bytes: int = 26_214_400,
        hostname: str | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.hostname = hostname or socket.gethostname()  # not getfqdn(): no DNS lookup at start
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def _protocol(self) -> SMTP:
        assert self._loop is not None
        session = SMTP(
            self.handler,
            data_size_limit=self.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=self.hostname,
            ident="Baton",
            loop=self._loop,
        )
        self._sessions.add(session)
        return session

    def start(self) -> tuple[str, int]:
        """Bind and serve in a background thread; returns the bound ``(host, port)``."""
        if self._thread is not None:
            raise RuntimeError("SMTP server already running")
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(loop.create_server(self._protocol, self.host, self.port))
        except BaseException:
            loop.close()
            self._loop = None
            raise
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._thread = threading.Thread(target=loop.run_forever, name="baton-smtp", daemon=True)
        self._thread.start()
        _log.info("receiving e-mail on %s:%d", self.host, self.port)
        return self.host, self.port

    def stop(self, *, grace_seconds: float = 10.0) -> None:
        """Stop accepting, let messages being ingested finish (up to ``grace_seconds``), close."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(grace_seconds), loop)
        try:
            future.result(timeout=grace_seconds + 5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            self._loop, self._thread, self._server = None, None, None

    async def _shutdown(self, grace_seconds: float) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        while self.handler.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def build_smtp_server(settings: Settings, intake: MailIntake, *, clock: Clock) -> SmtpServer:
    """The receiver as configured: ``BATON_SMTP_HOST``, ``_PORT``, ``_RECIPIENTS``, message size."""
    recipients = [r for r in settings.smtp_recipients.split(",") if r.strip()]
    if settings.log_level.upper() != "DEBUG":
        # aiosmtpd logs every SMTP command (and each peer) at INFO; that is debugging detail here.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    return SmtpServer(
        MailHandler(intake, clock=clock, recipients=recipients),
        host=settings.smtp_host,
        port=settings.smtp_port,
        max_message_bytes=settings.email_max_message_bytes,
    )
