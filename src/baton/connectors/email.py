"""E-mail over SMTP (RFC 5321), with the standard library's ``smtplib`` and ``EmailMessage``.

Kinds ``notify``, ``reply`` and ``email`` each send one plain-text message (UTF-8, encoded so no
line on the wire exceeds 78 characters) to ``params.to_address``, else ``params.email``, else
``params.address`` (a notification's recipient as the engine resolved it: a member's ``email``
identity, or the requester for ``to: customer``). Subject ``params.subject`` (else the text's
first line), body ``params.text``. One connection per message.

Threading: every message carries :func:`~baton.signals.email.threads.outbound_headers`, so its
Message-ID is ``<baton.<ticket>.<nonce>@<domain>>`` with the nonce a digest of the action's key
(a retry sends the same Message-ID, and receivers that deduplicate by it see one message), its
subject the ticket token, and ``Auto-Submitted`` (``auto-replied`` for ``reply``). In-Reply-To
and References come from ``params.in_reply_to`` / ``params.references``; a ``reply`` without them
answers ``params.links.email``. An answer comes back to the ticket by Message-ID or by token.

Hostile input: addresses are checked strictly (dot-atom local part, host-name domain, IDN as
punycode) and refused permanently with a line break or control character in them; a subject is
flattened instead (customers write subjects, and one odd subject must not stop every notice
about a ticket). Text over ``max_text_chars`` is cut, with a note saying so.

Errors and time limits are :class:`~baton.connectors.smtp.OutboundSmtp`'s: SMTP 4xx replies,
connection failures and timeouts are transient, 5xx replies permanent (535 for a wrong password,
which is never shown). The SMTP host comes only from the operator's configuration, never from an
action, so the outbound address policy (``BATON_OUTBOUND_ALLOW``) does not apply: relays are
usually private. Credentials only go over TLS, or plain SMTP to a loopback relay.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from baton.clock import Clock, SystemClock
from baton.connectors.addresses import Resolver
from baton.connectors.base import Delivery, OutboundAction
from baton.connectors.config import config_error, http_config
from baton.connectors.params import param_str as _str
from baton.connectors.smtp import OutboundSmtp, Security
from baton.errors import ConfigError, PermanentConnectorError
from baton.settings import Settings
from baton.signals.email.threads import EMAIL_SYSTEM, message_ids, normalize_message_id, outbound_headers

__all__ = ["KINDS", "Composed", "EmailConfig", "EmailConnector", "mailbox"]

_log = logging.getLogger("baton.connectors.email")

KINDS = frozenset({"notify", "reply", "email"})
_MAX_RECIPIENTS = 20
_MAX_REFERENCES = 20
_MAX_SUBJECT = 200
# RFC 5322 atext without "!" and "%" (source routing to old relays) and "`" and "|" (pipes).
_ATEXT = r"[A-Za-z0-9#$&'*+/=?^_{}~-]"
_LOCAL = re.compile(rf"^{_ATEXT}+(?:\.{_ATEXT}+)*$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+{_LABEL}$")
_HOST = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")
_NAMED = re.compile(r'^\s*"?([^"<>]*?)"?\s*<([^<>]*)>\s*$')
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_BODY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MESSAGE_ID = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+$")  # no < > or spaces


def _domain(value: str) -> str | None:
    """A host-name domain in lower-case ASCII (IDN as punycode), or None."""
    value = value.strip().lower()
    if not value.isascii():
        try:
            value = value.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if len(value) > 253 or not _DOMAIN.match(value) or value.rpartition(".")[2].isdigit():
        return None
    return value


def mailbox(raw: str, *, what: str = "address") -> Address:
    """``user@example.com`` or ``Name <user@example.com>`` as an :class:`Address`; ``ValueError``
    (saying why, without echoing line breaks) for anything else."""
    if _BREAKS.search(raw):
        raise ValueError(f"{what} contains a line break or control character")
    found = _NAMED.match(raw)
    name, spec = (found.group(1).strip(), found.group(2).strip()) if found else ("", raw.strip())
    local, at, host = spec.rpartition("@")
    domain = _domain(host) if at else None
    if domain is None or not _LOCAL.match(local) or len(local) > 64 or len(local) + len(domain) >= 254:
        raise ValueError(f"{what} {_short(raw)} is not an e-mail address this connector sends to")
    return Address(display_name=name, username=local, domain=domain)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _loopback(host: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return host == "localhost"


class EmailConfig(BaseModel):
    """Outbound SMTP: one relay, one From address, the time limits of one exchange."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(description="SMTP relay: a host name or IP address (operator-configured, trusted).")
    port: int = Field(default=587, ge=1, le=65_535)
    security: Security = Field(
        default="starttls", description="STARTTLS (submission, 587), implicit TLS (465) or none."
    )
    username: str | None = Field(default=None, max_length=256)
    password: SecretStr | None = None
    from_address: str = Field(description="From (and envelope sender): address or 'Name <address>'.")
    domain: str | None = Field(default=None, description="Domain of Message-IDs; default From's domain.")
    connect_timeout: float = Field(default=5.0, gt=0, le=60, description="DNS, TCP and TLS handshake.")
    read_timeout: float = Field(default=10.0, gt=0, le=120, description="Any single wait for a reply.")
    total_timeout: float = Field(default=15.0, gt=0, le=300, description="The whole exchange.")
    ca_file: Path | None = Field(default=None, description="PEM bundle to trust instead of the default CAs.")
    max_text_chars: int = Field(default=100_000, ge=1_000, le=1_000_000, description="Longer text is cut.")

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        host = value.strip().lower()
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(host.strip("[]")))
        if not _HOST.match(host) or len(host) > 253:
            raise ValueError("must be a host name or IP address (no scheme, no port)")
        return host

    @field_validator("from_address")
    @classmethod
    def _check_from(cls, value: str) -> str:
        return str(mailbox(value, what="from address"))

    @field_validator("domain")
    @classmethod
    def _check_domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        domain = _domain(value)
        if domain is None:
            raise ValueError("must be a domain name such as support.example.com")
        return domain

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both or neither")
        if self.username is not None and self.password is not None:
            secret = self.password.get_secret_value()
            if not secret or not self.username.strip():
                raise ValueError("username and password must not be empty")
            if not (secret.isascii() and self.username.isascii()) or _BREAKS.search(secret + self.username):
                raise ValueError("username and password must be printable ASCII (smtplib sends them so)")
            if self.security == "none" and not _loopback(self.host):
                raise ValueError(
                    "credentials are only sent over TLS (security starttls or tls) or to loopback"
                )
        if self.total_timeout < self.connect_timeout:
            raise ValueError("total_timeout must be at least connect_timeout")
        return self

    @property
    def sender(self) -> Address:
        return mailbox(self.from_address)

    @property
    def message_domain(self) -> str:
        return self.domain or self.sender.domain


@dataclass(frozen=True)
class Composed:
    """One message ready to go: its normalised Message-ID, envelope recipients and bytes."""

    message_id: str
    recipients: tuple[str, ...]
    raw: bytes
    truncated: bool


class EmailConnector:
    """Sends Baton's mail through one SMTP relay, one connection per message."""

    name = "email"

    def __init__(
        self, config: EmailConfig, *, clock: Clock | None = None, resolver: Resolver | None = None
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.sender = config.sender
        self.domain = config.message_domain
        self.smtp = OutboundSmtp(
            host=config.host,
            port=config.port,
            security=config.security,
            helo=self.domain,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            total_timeout=config.total_timeout,
            ca_file=config.ca_file,
            username=config.username,
            password=config.password,
            resolver=resolver,
            what="email",
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> EmailConnector:
        if not settings.email_smtp_host:
            raise ConfigError("the email connector needs BATON_EMAIL_SMTP_HOST")
        if not settings.email_from:
            raise ConfigError("the email connector needs BATON_EMAIL_FROM")
        net = http_config(settings)  # the shared time limits, checked against the outbox lease
        try:
            config = EmailConfig(
                host=settings.email_smtp_host,
                port=settings.email_smtp_port,
                security=settings.email_smtp_security,  # Settings checks the pattern
                username=settings.email_smtp_username or None,
                password=settings.email_smtp_password,
                from_address=settings.email_from,
                domain=settings.email_domain or None,
                connect_timeout=net.connect_timeout,
                read_timeout=net.read_timeout,
                total_timeout=net.total_timeout,
                ca_file=net.ca_file,
            )
        except ValidationError as exc:
            raise config_error("email", exc) from None
        try:
            return cls(config, clock=clock)
        except OSError as exc:  # ssl.SSLError included: the CA file is unreadable or not PEM
            raise ConfigError(f"email: cannot use the CA file: {exc.strerror or exc}") from None

    def send(self, action: OutboundAction) -> Delivery:
        composed = self.compose(action)
        refused = self.smtp.send(
            sender=self.sender.addr_spec, recipients=composed.recipients, message=composed.raw
        )
        accepted = [r for r in composed.recipients if r not in refused]
        detail: dict[str, object] = {"message_id": composed.message_id, "recipients": accepted}
        if refused:
            detail["refused"] = refused
        if composed.truncated:
            detail["truncated"] = True
        _log.debug("sent %s to %d recipient(s)", composed.message_id, len(accepted))
        # No ``link``: Baton's Message-IDs name their ticket (signals/email/threads.py), so replies
        # thread back without one, and a link per message would add an event per e-mail sent.
        return Delivery(external_id=composed.message_id, detail=detail)

    def close(self) -> None:
        """Nothing to release: every message opens and closes its own connection."""

    # -- the message ------------------------------------------------------------------------

    def compose(self, action: OutboundAction) -> Composed:
        """The message ``action`` sends; ``PermanentConnectorError`` when it cannot be sent."""
        if action.kind not in KINDS:
            raise PermanentConnectorError(f"email: cannot perform {action.kind!r}")
        params = action.params
        recipients = _recipients(params)
        parent, chain = _thread(params, reply=action.kind == "reply")
        subject = _one_line(_str(params.get("subject")))
        text = _BODY_CONTROLS.sub("", _str(params.get("text")).replace("\r\n", "\n").replace("\r", "\n"))
        if not subject and not text.strip():
            raise PermanentConnectorError("email: nothing to send (no subject or text)")
        subject = subject or _one_line(text.strip().split("\n", 1)[0]) or f"Ticket {action.ticket_id}"
        if action.kind == "reply" and parent and not re.match(r"(?i)re:", subject):
            subject = f"Re: {subject}"
        if len(subject) > _MAX_SUBJECT:
            subject = subject[: _MAX_SUBJECT - 1].rstrip() + "…"
        truncated = len(text) > self.config.max_text_chars
        if truncated:
            omitted = len(text) - self.config.max_text_chars
            text = (
                text[: self.config.max_text_chars]
                + f"\n\n[{omitted} more characters not sent; the full text is on ticket {action.ticket_id}]"
            )
        nonce = hashlib.sha256(action.key.encode()).hexdigest()[:32]  # the same key, the same id
        try:
            headers = outbound_headers(
                action.ticket_id,
                subject=subject,
                domain=self.domain,
                nonce=nonce,
                auto="auto-replied" if action.kind == "reply" else "auto-generated",
            )
        except ValueError as exc:  # not a canonical ticket id
            raise PermanentConnectorError(f"email: {exc}") from None
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["From"] = self.sender
        msg["To"] = recipients
        msg["Date"] = format_datetime(self.clock.now())
        for name, value in headers.items():
            msg[name] = value
        if parent:
            msg["In-Reply-To"] = f"<{parent}>"
            msg["References"] = " ".join(f"<{mid}>" for mid in chain)
        msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
        msg.set_content(text or subject)
        own = normalize_message_id(headers["Message-ID"])
        assert own is not None
        return Composed(own, tuple(a.addr_spec for a in recipients), msg.as_bytes(), truncated)


def _recipients(params: Mapping[str, object]) -> list[Address]:
    who = _str(params.get("to")) or "the recipient"
    raw = params.get("to_address") or params.get("email") or params.get("address")
    values = _strings(raw, f"the address of {who}")
    if not values:
        raise PermanentConnectorError(f"email: no e-mail address for {who}")
    if len(values) > _MAX_RECIPIENTS:
        raise PermanentConnectorError(f"email: {len(values)} recipients; at most {_MAX_RECIPIENTS}")
    found: dict[str, Address] = {}
    for value in values:
        try:
            address = mailbox(value, what="recipient")
        except ValueError as exc:
            raise PermanentConnectorError(f"email: no usable address for {who}: {exc}") from None
        found.setdefault(address.addr_spec.lower(), address)
    return list(found.values())


def _thread(params: Mapping[str, object], *, reply: bool) -> tuple[str | None, list[str]]:
    """``(In-Reply-To, References)`` ids, normalised (no angle brackets), oldest first."""
    parents = _ids(params.get("in_reply_to"), "in_reply_to")
    chain = _ids(params.get("references"), "references")
    links = params.get("links")
    if reply and not parents and not chain and isinstance(links, Mapping):
        parents = _ids(links.get(EMAIL_SYSTEM), "links.email")
    parent = parents[0] if parents else (chain[-1] if chain else None)
    if parent is None:
        return None, []
    chain = [mid for mid in dict.fromkeys(chain) if mid != parent] + [parent]
    if len(chain) > _MAX_REFERENCES:  # keep the thread's root and the newest ones (RFC 5322 §3.6.4)
        chain = chain[:1] + chain[-(_MAX_REFERENCES - 1) :]
    return parent, chain


def _ids(value: object, what: str) -> list[str]:
    """Message-IDs in a header value or a list of them. Ids that cannot be real (Baton's digests
    of ids it could not store) are skipped; line breaks are refused, they would be headers."""
    found: list[str] = []
    for item in _strings(value, what):
        if _BREAKS.search(item):
            raise PermanentConnectorError(f"email: {what} contains a line break or control character")
        found += [mid for mid in message_ids(item) if _MESSAGE_ID.match(mid)]
    return found


def _strings(value: object, what: str) -> list[str]:
    """A string or a list of strings as a list (empty for None); anything else is refused."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    raise PermanentConnectorError(f"email: {what} must be a string or a list of strings")


def _one_line(text: str) -> str:
    return " ".join(_BREAKS.sub(" ", text).split())
