"""Outbound SMTP for connectors: one message per connection, bounded in time, one error mapping.

What :meth:`OutboundSmtp.send` does (``smtplib`` underneath, RFC 5321)
    1. Looks the relay up (in a worker, so the connect timeout bounds DNS too) and connects to
       at most three of its addresses within ``connect_timeout``.
    2. ``security``: ``tls`` wraps the connection before the greeting (RFC 8314, port 465);
       ``starttls`` issues STARTTLS after EHLO (RFC 3207, port 587) and fails if the server does
       not offer it, never falling back to plain text; ``none`` is plain SMTP. Certificates are
       checked against the configured host name (``ca_file`` replaces the default CAs).
    3. AUTH (smtplib picks CRAM-MD5, PLAIN or LOGIN from what the server offers) when credentials
       are configured, then MAIL, RCPT, DATA and QUIT (a failed QUIT after an accepted DATA is
       still a success).
    4. Time: each read waits at most ``read_timeout``, and a watchdog shuts the connection down
       when the whole exchange passes ``total_timeout``, so a relay dripping one byte at a time
       cannot hold the outbox's claim.

Outcomes
    Reply codes 4xx (and anything not 5xx) raise ``TransientConnectorError``, 5xx
    ``PermanentConnectorError`` (:func:`error_for_reply`); messages name the host, the code, the
    command and the server's text. Recipients refused while others were accepted are returned;
    all refused is permanent when every refusal is 5xx. Connection failures, timeouts and lost
    connections are transient; a server without STARTTLS or AUTH, an untrusted certificate, or no
    common AUTH mechanism are permanent. The password, also in the base64 forms AUTH sends it in,
    is masked out of every message; smtplib's exceptions, which carry the server's raw text, are
    never re-raised.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import httpx
from pydantic import SecretStr

from baton.connectors.addresses import Resolver, system_resolver
from baton.errors import ConnectorError, PermanentConnectorError, TransientConnectorError

__all__ = ["OutboundSmtp", "Security", "error_for_reply"]

Security = Literal["starttls", "tls", "none"]

_CONTROLS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
# getaddrinfo has no timeout of its own; lookups run here so the connect timeout bounds them.
_LOOKUPS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="baton-smtp-dns")
_STAGES: dict[type[Exception], str] = {
    smtplib.SMTPConnectError: "greeting",
    smtplib.SMTPHeloError: "EHLO",
    smtplib.SMTPAuthenticationError: "AUTH",
    smtplib.SMTPSenderRefused: "MAIL FROM",
    smtplib.SMTPDataError: "DATA",
}


def error_for_reply(code: int, message: str) -> ConnectorError:
    """What an SMTP reply code means: 5xx permanent, 4xx (and anything unexpected) transient."""
    if 500 <= code < 600:
        return PermanentConnectorError(message)
    return TransientConnectorError(message)


class _Client(smtplib.SMTP):
    """smtplib's client with its own way in (``opener``) and :meth:`abort`, which another thread
    calls to end an exchange that ran out of time."""

    def __init__(
        self,
        opener: Callable[[str, int], socket.socket],
        *,
        implicit_tls: ssl.SSLContext | None,
        local_hostname: str,
        timeout: float,
    ) -> None:
        self._opener = opener
        self._implicit_tls = implicit_tls
        self._watch: socket.socket | None = None
        self._lock = threading.Lock()
        super().__init__(local_hostname=local_hostname, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's hook for opening the connection (SMTP_SSL and LMTP override it too).
        self._host = host  # what starttls() checks the certificate against; only __init__ sets it
        sock = self._opener(host, port)
        with self._lock:
            # A duplicate descriptor of the same connection: shutting it down ends the exchange
            # whatever TLS wrapping later does to the original (wrapping detaches it).
            self._watch = sock.dup()
        if self._implicit_tls is not None:
            sock = self._implicit_tls.wrap_socket(sock, server_hostname=host)
        sock.settimeout(timeout)
        return sock

    def abort(self) -> None:
        with self._lock:
            if self._watch is not None:
                with contextlib.suppress(OSError):
                    self._watch.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None
        super().close()


class OutboundSmtp:
    """One SMTP relay, as the operator configured it. Thread-safe: nothing is shared between
    messages but the TLS context."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security,
        helo: str,
        connect_timeout: float,
        read_timeout: float,
        total_timeout: float,
        ca_file: Path | None = None,
        username: str | None = None,
        password: SecretStr | None = None,
        resolver: Resolver | None = None,
        what: str = "smtp",
    ) -> None:
        self.host, self.port, self.security, self.helo = host, port, security, helo
        self.connect_timeout, self.read_timeout, self.total_timeout = (
            connect_timeout,
            read_timeout,
            total_timeout,
        )
        self.resolver = resolver or system_resolver
        self.what = what
        self._login = (username, password) if username is not None and password is not None else None
        # Raises OSError (ssl.SSLError included) when the CA file cannot be used.
        self._tls = ssl.create_default_context(cafile=str(ca_file)) if ca_file else httpx.create_ssl_context()
        self._secrets: tuple[str, ...] = ()
        if self._login is not None:
            secret = self._login[1].get_secret_value()
            forms = (secret, f"\0{self._login[0]}\0{secret}")  # AUTH LOGIN, AUTH PLAIN
            self._secrets = (secret, *(base64.b64encode(f.encode()).decode() for f in forms))

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, *, sender: str, recipients: Sequence[str], message: bytes) -> dict[str, str]:
        """Deliver ``message``; returns the recipients refused while others were accepted, each
        with the server's reply (code and cleaned text)."""
        client = _Client(
            self._open,
            implicit_tls=self._tls if self.security == "tls" else None,
            local_hostname=self.helo,
            timeout=self.read_timeout,
        )
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            client.abort()

        watchdog = threading.Timer(self.total_timeout, expire)
        watchdog.daemon = True
        stage = "connect"
        watchdog.start()
        try:
            client.connect(self.host, self.port)
            stage = "EHLO"
            client.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                stage = "STARTTLS"
                client.starttls(context=self._tls)
                client.ehlo_or_helo_if_needed()
            if self._login is not None:
                stage = "AUTH"
                client.login(self._login[0], self._login[1].get_secret_value())
            stage = "MAIL/RCPT/DATA"
            refused = client.sendmail(sender, list(recipients), message)
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()  # the message is accepted; how the goodbye goes does not matter
        except Exception as exc:
            if expired.is_set():
                raise TransientConnectorError(
                    f"{self.what}: {self.where} took longer than total_timeout "
                    f"({self.total_timeout:g}s) at {stage}"
                ) from None
            raise self._error(exc, stage=stage) from None
        finally:
            watchdog.cancel()
            client.close()
        return {r: f"{code} {self.clean(text, limit=120)}" for r, (code, text) in refused.items()}

    def _open(self, host: str, port: int) -> socket.socket:
        """A connected socket to ``host``, lookup included, within the connect timeout."""
        ends = time.monotonic() + self.connect_timeout
        found: Sequence[str]
        try:
            found = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                found = _LOOKUPS.submit(self.resolver, host, port).result(timeout=self.connect_timeout)
            except TimeoutError:
                raise TimeoutError(f"DNS lookup of {host} timed out") from None
        error: OSError | None = None if found else OSError(f"DNS lookup of {host} returned no address")
        for address in list(dict.fromkeys(found))[:3]:
            left = ends - time.monotonic()
            if left <= 0:
                break
            try:
                sock = socket.create_connection((address, port), timeout=left)
            except OSError as exc:
                error = exc
                continue
            sock.settimeout(max(ends - time.monotonic(), 0.001))  # for an implicit TLS handshake
            return sock
        raise error or TimeoutError(f"connecting took longer than {self.connect_timeout:g}s")

    def _error(self, exc: Exception, *, stage: str) -> ConnectorError:
        """The connector error for what went wrong at ``stage``."""
        where = f"{self.what}: {self.where}"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            replies = {r: (code, self.clean(text, limit=120)) for r, (code, text) in exc.recipients.items()}
            listed = "; ".join(f"{r}: {code} {text}" for r, (code, text) in list(replies.items())[:5])
            message = f"{where} refused every recipient at RCPT TO: {listed}"
            if all(500 <= code < 600 for code, _ in replies.values()):
                return PermanentConnectorError(message)
            return TransientConnectorError(message)
        if isinstance(exc, smtplib.SMTPResponseException):
            at = _STAGES.get(type(exc), stage)
            message = f"{where} answered {exc.smtp_code} at {at}: {self.clean(exc.smtp_error)}"
            if isinstance(exc, smtplib.SMTPAuthenticationError):
                message += " (check the SMTP username and password)"
            return error_for_reply(exc.smtp_code, message)
        if isinstance(exc, smtplib.SMTPServerDisconnected):  # smtplib's name for a failed read too
            if isinstance(exc.__context__, TimeoutError):
                return TransientConnectorError(f"{where} timed out waiting for a reply at {stage}")
            return TransientConnectorError(f"{where} closed the connection at {stage}")
        if isinstance(exc, smtplib.SMTPException):  # no STARTTLS, no AUTH, no common mechanism
            return PermanentConnectorError(f"{where} at {stage}: {self.clean(str(exc))}")
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = self.clean(exc.verify_message or "")
            return PermanentConnectorError(
                f"{where}: TLS certificate not trusted ({reason}); configure the CA file for a private CA"
            )
        if isinstance(exc, TimeoutError):
            return TransientConnectorError(f"{where} timed out at {stage} ({self.clean(str(exc))})")
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc) or type(exc).__name__
            return TransientConnectorError(f"{where} failed at {stage}: {self.clean(reason)}")
        return PermanentConnectorError(f"{where} at {stage}: {type(exc).__name__}")

    def clean(self, text: str | bytes, *, limit: int = 300) -> str:
        """Server text fit for a message: decoded, one line, secrets masked, cut to ``limit``."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        for secret in self._secrets:
            text = text.replace(secret, "[secret]")
        text = " ".join(_CONTROLS.sub(" ", text).split())
        return text if len(text) <= limit else text[: limit - 1] + "…"
