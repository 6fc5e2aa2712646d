"""An SMTP relay stand-in: aiosmtpd on 127.0.0.1, recording what it accepts, with fault injection.

The protocol is aiosmtpd's implementation of RFC 5321 (https://aiosmtpd.aio-libs.org/en/stable/smtp.html):
EHLO lists ``SIZE``, ``8BITMIME``, ``SMTPUTF8``, ``STARTTLS`` (with ``tls=`` and not
``implicit_tls``; then ``require_starttls``, so every command before it is answered
``530 5.7.0 Must issue a STARTTLS command first``) and ``AUTH PLAIN LOGIN`` (with ``users=``;
AUTH is only offered over TLS unless ``auth_over_plain``). Wrong credentials are answered
``535 5.7.8 Authentication credentials invalid`` (RFC 4954 §6). With ``implicit_tls`` the whole
connection is TLS from the first byte (RFC 8314, port 465).

What it accepted is in :attr:`SmtpStandIn.mails` (envelope, bytes as received after
dot-unstuffing, whether TLS was on, who logged in). Faults, queued with :meth:`inject`, each
apply to the next command of their stage (``MAIL``, ``RCPT`` or ``DATA``):

* ``SmtpFault(stage, reply="451 4.3.0 ...")``: answer that instead (RFC 5321 §4.2: 4yz is a
  transient, 5yz a permanent negative completion reply);
* ``SmtpFault(stage, hang=s)``: answer normally after ``s`` seconds: a slow reply (a client with
  a shorter read timeout gives up first);
* ``SmtpFault("DATA", hang=s, keep=True)``: store the message, then wait ``s`` seconds before
  answering: the client's view of a lost "250 OK";
* ``SmtpFault(stage, reset=True)``: reset the connection (TCP RST) instead of answering, after
  ``hang`` seconds; at ``DATA`` with ``keep=True`` the message is stored first (the relay took it
  and the connection died before its "250"), without ``keep`` it is not.

``refuse`` maps recipients to the reply their ``RCPT`` gets (``550 5.1.1 No such user``).
:class:`DripServer` is not SMTP at all: it sends its greeting one byte at a time, a slowloris
peer every single read of which is quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["DripServer", "Mail", "SmtpFault", "SmtpStandIn"]

Stage = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class Mail:
    """One message the stand-in accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    login: str | None

    def message(self) -> EmailMessage:
        """The message as a mail client reads it (line ends as ``\n``)."""
        parsed = BytesParser(policy=policy.default).parsebytes(self.data.replace(b"\r\n", b"\n"))
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(frozen=True)
class SmtpFault:
    stage: Stage
    reply: str | None = None
    hang: float = 0.0
    keep: bool = False
    reset: bool = False


@dataclass
class _Handler:
    standin: SmtpStandIn
    faults: list[SmtpFault] = field(default_factory=list)

    def _take(self, stage: Stage) -> SmtpFault | None:
        with self.standin.lock:
            for i, fault in enumerate(self.faults):
                if fault.stage == stage:
                    return self.faults.pop(i)
        return None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        fault = self._take("MAIL")
        if fault is not None:
            await asyncio.sleep(fault.hang)
            if fault.reset:
                return await _reset(server)
            if fault.reply:
                return fault.reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        fault = self._take("RCPT")
        if fault is not None:
            await asyncio.sleep(fault.hang)
            if fault.reset:
                return await _reset(server)
            if fault.reply:
                return fault.reply
        if address.lower() in self.standin.refuse:
            return self.standin.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self._take("DATA")
        if fault is not None and fault.keep:
            self._store(server, session, envelope)
            await asyncio.sleep(fault.hang)
            return await _reset(server) if fault.reset else "250 2.0.0 Ok: queued"
        if fault is not None:
            await asyncio.sleep(fault.hang)
            if fault.reset:
                return await _reset(server)
            if fault.reply:
                return fault.reply
        self._store(server, session, envelope)
        return "250 2.0.0 Ok: queued"

    def _store(self, server: SMTP, session: Session, envelope: Envelope) -> None:
        transport = server.transport
        tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        data = envelope.original_content or b""
        mail = Mail(envelope.mail_from or "", tuple(envelope.rcpt_tos), data, tls, login)
        with self.standin.lock:
            self.standin.mails.append(mail)


async def _reset(server: SMTP) -> str:
    """Abort the connection with a TCP RST (SO_LINGER 0) instead of answering."""
    transport = server.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return "421 4.3.0 connection reset"  # never reaches the client: the transport is gone


class SmtpStandIn:
    """An SMTP relay on a free loopback port; a context manager that starts and stops it."""

    def __init__(
        self,
        *,
        tls: tuple[Path, Path] | None = None,
        implicit_tls: bool = False,
        users: Mapping[str, str] | None = None,
        auth_over_plain: bool = False,
        refuse: Mapping[str, str] | None = None,
        hostname: str = "smtp.standin.test",
    ) -> None:
        self.tls_context: ssl.SSLContext | None = None
        if tls is not None:
            self.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls_context.load_cert_chain(*tls)
        self.implicit_tls = implicit_tls
        self.users = dict(users or {})
        self.auth_over_plain = auth_over_plain
        self.refuse = {k.lower(): v for k, v in (refuse or {}).items()}
        self.hostname = hostname
        self.mails: list[Mail] = []
        self.auth_attempts: list[tuple[str, bool]] = []
        self.lock = threading.Lock()
        self.handler = _Handler(self)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    def inject(self, *faults: SmtpFault) -> None:
        with self.lock:
            self.handler.faults.extend(faults)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.users.get(
            data.login.decode(errors="replace")
        ) == data.password.decode(errors="replace")
        with self.lock:
            self.auth_attempts.append((data.login.decode(errors="replace"), ok))
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def _protocol(self) -> SMTP:
        starttls = self.tls_context is not None and not self.implicit_tls
        return SMTP(
            self.handler,
            hostname=self.hostname,
            ident="standin ESMTP",
            enable_SMTPUTF8=True,
            data_size_limit=1_048_576,
            tls_context=self.tls_context if starttls else None,
            require_starttls=starttls,
            authenticator=self._authenticate if self.users else None,
            # aiosmtpd only knows about STARTTLS; an implicit TLS connection is TLS all along
            auth_require_tls=not (self.auth_over_plain or self.implicit_tls),
            loop=self._loop,
        )

    def start(self) -> Self:
        loop = self._loop = asyncio.new_event_loop()
        tls = self.tls_context if self.implicit_tls else None
        self._server = loop.run_until_complete(loop.create_server(self._protocol, "127.0.0.1", 0, ssl=tls))
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._thread = threading.Thread(target=loop.run_forever, name="smtp-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._server = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DripServer:
    """Accepts connections and sends ``220 ...`` one byte every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="smtp-drip", daemon=True)

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            for byte in b"220 drip.standin.test ESMTP at your service, slowly\r\n":
                if self._stop.wait(self.interval):
                    return
                conn.sendall(bytes([byte]))
            self._stop.wait(30)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=5)
