"""The e-mail connector against a real SMTP server (aiosmtpd) on loopback, and Baton's own intake."""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from baton.clock import FakeClock
from baton.connectors.base import OutboundAction
from baton.connectors.email import EmailConfig, EmailConnector
from baton.connectors.registry import build_connectors
from baton.engine.runtime import Engine
from baton.errors import ConfigError, ConnectorError, PermanentConnectorError, TransientConnectorError
from baton.policy.model import Policy
from baton.settings import Settings
from baton.signals.email import MailIntake
from baton.store.db import open_database
from tests.conftest import START
from tests.standins.smtp import DripServer, SmtpFault, SmtpStandIn
from tests.standins.tls import self_signed

TICKET = "T-0123456789abcdef"
FROM = "Acme Support <support@acme.example>"
USER, PASSWORD = "baton", "s3cret-SMTP-passw0rd"
TLS_HOST = "smtp.standin.test"
FAST = {"connect_timeout": 1.0, "read_timeout": 1.0, "total_timeout": 3.0}


def _connector(standin: SmtpStandIn | None = None, **overrides: Any) -> EmailConnector:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": standin.port if standin else 25,
        "security": "none",
        "from_address": FROM,
        **FAST,
    }
    resolver = overrides.pop("resolver", None)
    config = EmailConfig(**{**values, **overrides})
    return EmailConnector(config, clock=FakeClock(START), resolver=resolver)


@pytest.fixture
def smtp_standin() -> Iterator[SmtpStandIn]:
    with SmtpStandIn() as standin:
        yield standin


@pytest.fixture
def email(smtp_standin: SmtpStandIn) -> EmailConnector:
    return _connector(smtp_standin)


def action(n: int = 1, kind: str = "notify", ticket: str = TICKET, **params: object) -> OutboundAction:
    defaults: dict[str, object] = {
        "to": "alice",
        "address": "alice@acme.example",
        "subject": "API down",
        "text": "Checkout fails for every customer.",
    }
    merged = {k: v for k, v in {**defaults, **params, "ticket": ticket}.items() if v is not None}
    return OutboundAction(f"{n:064x}", ticket, "email", kind, merged, 1)


def message_id(n: int = 1) -> str:
    return f"baton.{TICKET}.{hashlib.sha256(f'{n:064x}'.encode()).hexdigest()[:32]}@acme.example"


# -- what the server receives ---------------------------------------------------------------------


def test_a_notification_carries_batons_headers(email: EmailConnector, smtp_standin: SmtpStandIn) -> None:
    delivery = email.send(action())
    mid = message_id()
    assert delivery.external_id == mid
    assert delivery.detail == {"message_id": mid, "recipients": ["alice@acme.example"]}
    assert delivery.link is None  # Baton's Message-IDs name their ticket; replies thread without a link
    assert delivery.wrote == {}
    (mail,) = smtp_standin.mails
    assert (mail.mail_from, mail.rcpt_tos, mail.tls, mail.login) == (
        "support@acme.example",
        ("alice@acme.example",),
        False,
        None,
    )
    msg = mail.message()
    assert msg["Message-ID"].strip() == f"<{mid}>"
    assert msg["Subject"] == f"API down [{TICKET}]"
    assert (msg["From"], msg["To"]) == (FROM, "alice@acme.example")
    assert msg["Date"] == format_datetime(START)
    assert (msg["X-Baton-Origin"], msg["X-Baton-Ticket"], msg["Auto-Submitted"]) == (
        "baton",
        TICKET,
        "auto-generated",
    )
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg.get_content() == "Checkout fails for every customer.\n"


@pytest.mark.parametrize(
    ("params", "envelope", "to_header"),
    [
        ({"to": None, "address": "bob@customer.example"}, ["bob@customer.example"], "bob@customer.example"),
        ({"to_address": "Bob Ünal <Bob@Customer.example>"}, ["Bob@customer.example"], None),
        ({"email": ["a@x.example", "b@y.example", "A@x.example"]}, ["a@x.example", "b@y.example"], None),
        ({"address": "ops@bücher.example"}, ["ops@xn--bcher-kva.example"], "ops@xn--bcher-kva.example"),
    ],
)
def test_recipients_come_from_the_params(
    email: EmailConnector,
    smtp_standin: SmtpStandIn,
    params: dict[str, Any],
    envelope: list[str],
    to_header: str | None,
) -> None:
    delivery = email.send(action(**params))
    (mail,) = smtp_standin.mails
    assert list(mail.rcpt_tos) == envelope == delivery.detail["recipients"]
    if to_header:
        assert mail.message()["To"] == to_header
    if "to_address" in params:
        assert mail.message()["To"].addresses[0].display_name == "Bob Ünal"


def test_utf8_text_long_lines_and_leading_dots_survive_the_wire(
    email: EmailConnector, smtp_standin: SmtpStandIn
) -> None:
    text = "Grüße from Zürich — 障害 🚨\n.a line that starts with a dot\n.\nFrom the start\n" + "x" * 5_000
    subject = "Überweisung schlägt fehl — 支払い " * 3
    email.send(action(subject=subject, text=text))
    (mail,) = smtp_standin.mails
    assert max(len(line) for line in mail.data.split(b"\r\n")) <= 78
    assert mail.data.isascii()  # 7-bit clean: no relay needs 8BITMIME or SMTPUTF8
    msg = mail.message()
    assert msg.get_content() == text + "\n"
    assert msg["Subject"] == f"{subject.strip()} [{TICKET}]"


def test_text_and_subject_over_the_limits_are_cut_with_a_note(
    email: EmailConnector, smtp_standin: SmtpStandIn
) -> None:
    delivery = email.send(action(subject="S" * 500, text="y" * 150_000))
    assert delivery.detail["truncated"] is True
    msg = smtp_standin.mails[0].message()
    body = msg.get_content()
    assert body.startswith("y" * 100_000) and not body.startswith("y" * 100_001)
    assert f"[50000 more characters not sent; the full text is on ticket {TICKET}]" in body
    assert msg["Subject"] == "S" * 199 + f"… [{TICKET}]"


def test_a_notice_without_subject_takes_the_texts_first_line(
    email: EmailConnector, smtp_standin: SmtpStandIn
) -> None:
    email.send(action(subject=None, text="sam assigned T-1 to you: VIP\n\ndetails"))
    assert smtp_standin.mails[0].message()["Subject"] == f"sam assigned T-1 to you: VIP [{TICKET}]"


# -- threading ------------------------------------------------------------------------------------


def test_a_reply_threads_under_the_customers_message(
    email: EmailConnector, smtp_standin: SmtpStandIn
) -> None:
    email.send(
        action(
            kind="reply",
            to_address="bob@customer.example",
            subject="Your export",
            in_reply_to="<CAF=2@mail.customer.example>",
            references="<CAF=1@mail.customer.example> <CAF=2@mail.customer.example>",
        )
    )
    email.send(action(2, kind="reply", to_address="bob@customer.example", links={"email": "CAF=3@m.example"}))
    email.send(
        action(3, kind="reply", to_address="bob@customer.example", links={"email": "sha256:" + "0" * 64})
    )
    first, from_link, from_digest = (m.message() for m in smtp_standin.mails)
    assert first["In-Reply-To"] == "<CAF=2@mail.customer.example>"
    assert first["References"].split() == ["<CAF=1@mail.customer.example>", "<CAF=2@mail.customer.example>"]
    assert (first["Subject"], first["Auto-Submitted"]) == (f"Re: Your export [{TICKET}]", "auto-replied")
    assert (from_link["In-Reply-To"], from_link["References"]) == ("<CAF=3@m.example>", "<CAF=3@m.example>")
    assert from_digest["In-Reply-To"] is None  # a digest stands for an id Baton could not keep


def test_a_retry_sends_the_same_message_id(email: EmailConnector, smtp_standin: SmtpStandIn) -> None:
    smtp_standin.inject(SmtpFault("DATA", hang=2, keep=True))  # accepted, but the 250 never arrives
    with pytest.raises(TransientConnectorError, match="timed out"):
        email.send(action(7))
    email.send(action(7))
    email.send(action(8))
    first, retry, other = smtp_standin.mails
    assert first.data == retry.data  # the receiver's dedup sees one message, sent twice
    assert first.message()["Message-ID"] != other.message()["Message-ID"]


@pytest.fixture
def engine(tmp_path: Path, policy: Policy) -> Iterator[Engine]:
    db = open_database(f"sqlite:///{tmp_path / 'baton.db'}")
    db.migrate()
    yield Engine(db=db, policy=policy, clock=FakeClock(START))
    db.dispose()


def _mail(**headers: str) -> bytes:
    lines = [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\nThanks, but it still fails.\r\n\r\n> old text\r\n").encode()


def test_the_customers_answer_to_batons_mail_lands_on_the_same_ticket(
    engine: Engine, smtp_standin: SmtpStandIn
) -> None:
    intake = MailIntake(engine=engine)
    customer = "bob@customer.example"
    opened = intake.receive(
        _mail(
            From=customer, To="support@acme.example", Subject="Export fails", Message_ID="<first@customer>"
        ),
        received_at=START,
    )
    assert opened.status == "accepted" and opened.ticket_id is not None
    ticket = opened.ticket_id

    email = _connector(smtp_standin)
    sent = email.send(
        action(
            kind="reply",
            ticket=ticket,
            to_address=customer,
            subject="Export fails",
            in_reply_to="first@customer",
        )
    )
    ours = smtp_standin.mails[0]
    assert intake.receive(ours.data, received_at=START).reason == "baton"  # our own mail never tickets
    subject = ours.message()["Subject"]
    later = START + timedelta(minutes=5)
    answers = {
        "headers": _mail(
            From=customer,
            Subject=f"Re: {subject}",
            Message_ID="<second@customer>",
            In_Reply_To=f"<{sent.external_id}>",
            References=f"<first@customer> <{sent.external_id}>",
        ),
        "headers without token": _mail(
            From=customer,
            Subject="Re: Export fails",
            Message_ID="<third@customer>",
            In_Reply_To=f"<{sent.external_id}>",
        ),
        "token only": _mail(From=customer, Subject=f"AW: {subject}", Message_ID="<fourth@customer>"),
    }
    for how, raw in answers.items():
        outcome = intake.receive(raw, received_at=later)
        assert (outcome.status, outcome.ticket_id) == ("accepted", ticket), how


# -- errors ---------------------------------------------------------------------------------------

REPLIES = [
    (
        SmtpFault("MAIL", reply="451 4.3.0 Temporary local problem"),
        TransientConnectorError,
        "451 at MAIL FROM",
    ),
    (SmtpFault("MAIL", reply="421 4.7.0 Too many connections"), TransientConnectorError, "421 at MAIL FROM"),
    (SmtpFault("RCPT", reply="450 4.2.0 Greylisted, try later"), TransientConnectorError, "450 4.2.0"),
    (SmtpFault("RCPT", reply="550 5.1.1 No such user"), PermanentConnectorError, "550 5.1.1 No such user"),
    (SmtpFault("DATA", reply="451 4.3.0 Queue full"), TransientConnectorError, "451 at DATA"),
    (SmtpFault("DATA", reply="552 5.3.4 Message too big"), PermanentConnectorError, "552 at DATA"),
    (SmtpFault("DATA", reply="554 5.7.1 Rejected as spam"), PermanentConnectorError, "554 at DATA: 5.7.1"),
    (SmtpFault("MAIL", hang=2), TransientConnectorError, "timed out waiting for a reply"),
]


@pytest.mark.parametrize(("fault", "error", "says"), REPLIES)
def test_smtp_replies_map_to_retry_or_dead_letter(
    email: EmailConnector,
    smtp_standin: SmtpStandIn,
    fault: SmtpFault,
    error: type[ConnectorError],
    says: str,
) -> None:
    smtp_standin.inject(fault)
    with pytest.raises(ConnectorError) as caught:
        email.send(action())
    assert type(caught.value) is error and says in str(caught.value)
    assert smtp_standin.mails == []
    email.send(action())
    assert len(smtp_standin.mails) == 1


def test_a_partly_refused_message_goes_to_the_others() -> None:
    with SmtpStandIn(refuse={"gone@acme.example": "550 5.1.1 No such user"}) as standin:
        delivery = _connector(standin).send(action(address=["alice@acme.example", "gone@acme.example"]))
    assert delivery.detail["recipients"] == ["alice@acme.example"]
    assert delivery.detail["refused"] == {"gone@acme.example": "550 5.1.1 No such user"}
    assert standin.mails[0].rcpt_tos == ("alice@acme.example",)


def test_nobody_listening_is_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    connector = EmailConnector(
        EmailConfig(host="127.0.0.1", port=port, security="none", from_address=FROM, **FAST)
    )
    with pytest.raises(TransientConnectorError, match=rf"127\.0\.0\.1:{port} failed at connect"):
        connector.send(action())


def test_a_peer_dripping_bytes_is_cut_at_the_total_timeout() -> None:
    with DripServer(interval=0.2) as drip:
        connector = EmailConnector(
            EmailConfig(
                host="127.0.0.1",
                port=drip.port,
                security="none",
                from_address=FROM,
                connect_timeout=1.0,
                read_timeout=1.0,
                total_timeout=1.5,
            )
        )
        started = time.monotonic()
        with pytest.raises(TransientConnectorError, match=r"took longer than total_timeout \(1.5s\)"):
            connector.send(action())
    assert time.monotonic() - started < 2.5


# -- authentication and TLS -----------------------------------------------------------------------


def _assert_no_secret(text: str) -> None:
    forms = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode()]
    forms.append(base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode())
    assert not any(form in text for form in forms)


def test_login_over_plain_smtp_to_a_loopback_relay() -> None:
    with SmtpStandIn(users={USER: PASSWORD}, auth_over_plain=True) as standin:
        _connector(standin, username=USER, password=SecretStr(PASSWORD)).send(action())
    assert standin.mails[0].login == USER


def test_a_wrong_password_is_permanent_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with SmtpStandIn(users={USER: "the-right-one"}, auth_over_plain=True) as standin:
        connector = _connector(standin, username=USER, password=SecretStr(PASSWORD))
        with pytest.raises(PermanentConnectorError, match="535 at AUTH") as caught:
            connector.send(action())
    assert standin.auth_attempts and not any(ok for _, ok in standin.auth_attempts)
    assert standin.mails == []
    _assert_no_secret(str(caught.value))
    _assert_no_secret(repr(caught.value.__cause__) + repr(caught.value.__context__))
    _assert_no_secret(caplog.text)
    _assert_no_secret(repr(connector.config))


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path, TLS_HOST)


def _tls(standin: SmtpStandIn, cert: Path | None, security: str) -> EmailConnector:
    return _connector(
        standin,
        host=TLS_HOST,
        security=security,
        ca_file=cert,
        username=USER,
        password=SecretStr(PASSWORD),
        resolver=lambda host, port: ["127.0.0.1"],  # the certificate names the host, not the IP
    )


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "tls"])
def test_tls_then_login(certificate: tuple[Path, Path], implicit: bool) -> None:
    with SmtpStandIn(tls=certificate, implicit_tls=implicit, users={USER: PASSWORD}) as standin:
        _tls(standin, certificate[0], "tls" if implicit else "starttls").send(action())
    (mail,) = standin.mails
    assert (mail.tls, mail.login) == (True, USER)


def test_an_untrusted_certificate_is_permanent(certificate: tuple[Path, Path]) -> None:
    with (
        SmtpStandIn(tls=certificate, users={USER: PASSWORD}) as standin,
        pytest.raises(PermanentConnectorError, match="TLS certificate not trusted") as caught,
    ):
        _tls(standin, None, "starttls").send(action())
    assert standin.auth_attempts == [] and standin.mails == []
    _assert_no_secret(str(caught.value))


def test_a_relay_without_starttls_is_never_sent_credentials_in_the_clear(smtp_standin: SmtpStandIn) -> None:
    connector = _connector(smtp_standin, security="starttls", username=USER, password=SecretStr(PASSWORD))
    with pytest.raises(PermanentConnectorError, match="STARTTLS extension not supported"):
        connector.send(action())
    assert smtp_standin.auth_attempts == [] and smtp_standin.mails == []


# -- hostile and unusable input -------------------------------------------------------------------

REFUSED = [
    ({"address": "alice@acme.example\r\nBcc: mallory@evil.example"}, "recipient contains a line break"),
    ({"to_address": "mallory@evil.example>, <alice@acme.example"}, "not an e-mail address"),
    ({"to_address": '"mallory@evil.example" @acme.example'}, "not an e-mail address"),
    ({"to_address": "user%other.example@acme.example"}, "not an e-mail address"),
    ({"to_address": "root@[127.0.0.1]"}, "not an e-mail address"),
    ({"to_address": "Eve\u2028Bcc: x@y.example <eve@acme.example>"}, "line break"),
    ({"in_reply_to": "<a@b.example>\r\nBcc: mallory@evil.example"}, "in_reply_to contains a line break"),
    ({"references": ["<a@b.example>", "<c@d.example>\nX-Evil: 1"]}, "references contains a line break"),
    ({"to": "sam", "address": "sam"}, "no usable address for sam"),
    ({"to": "bob", "address": None}, "no e-mail address for bob"),
    ({"address": {"x": 1}}, "must be a string or a list of strings"),
    ({"address": [f"u{i}@acme.example" for i in range(21)]}, "at most 20"),
    ({"subject": " ", "text": ""}, "nothing to send"),
]


@pytest.mark.parametrize(("params", "says"), REFUSED)
def test_hostile_or_unusable_params_are_refused_before_connecting(params: dict[str, Any], says: str) -> None:
    connector = _connector(None, port=9)  # nothing listens there: a refusal must come first
    with pytest.raises(PermanentConnectorError, match=says):
        connector.send(action(**params))


def test_a_subject_with_line_breaks_is_flattened_not_obeyed(
    email: EmailConnector, smtp_standin: SmtpStandIn
) -> None:
    email.send(action(subject="Refund\r\nBcc: mallory@evil.example\r\n\r\nInjected\u2028body"))
    (mail,) = smtp_standin.mails
    msg = mail.message()
    assert mail.rcpt_tos == ("alice@acme.example",) and msg["Bcc"] is None
    assert msg["Subject"] == f"Refund Bcc: mallory@evil.example Injected body [{TICKET}]"
    assert msg.get_content() == "Checkout fails for every customer.\n"


def test_what_the_connector_cannot_do_never_leaves(email: EmailConnector, smtp_standin: SmtpStandIn) -> None:
    with pytest.raises(PermanentConnectorError, match="cannot perform 'page'"):
        email.send(action(kind="page"))
    with pytest.raises(PermanentConnectorError, match="not a canonical ticket id"):
        email.send(action(ticket="T-7"))
    assert smtp_standin.mails == []


# -- configuration --------------------------------------------------------------------------------


def _settings(**values: Any) -> Settings:
    base = {"email_smtp_host": "smtp.acme.example", "email_from": FROM, "connectors": "email"}
    return Settings(**{**base, **values})


def test_from_settings_builds_the_connector() -> None:
    built = build_connectors(
        _settings(
            email_smtp_port=465,
            email_smtp_security="tls",
            email_smtp_username=USER,
            email_smtp_password=SecretStr(PASSWORD),
            email_domain="Mail.Acme.example",
            http_total_timeout=12,
        )
    )
    connector = built["email"]
    assert isinstance(connector, EmailConnector)
    c = connector.config
    assert (c.host, c.port, c.security, c.username, c.total_timeout) == (
        "smtp.acme.example",
        465,
        "tls",
        USER,
        12,
    )
    assert connector.domain == "mail.acme.example" and connector.sender.addr_spec == "support@acme.example"
    assert EmailConnector.from_settings(_settings()).domain == "acme.example"


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"email_smtp_host": None}, "needs BATON_EMAIL_SMTP_HOST"),
        ({"email_from": None}, "needs BATON_EMAIL_FROM"),
        ({"email_from": "support"}, "from_address"),
        ({"email_from": "support@acme.example\r\nBcc: x@y.example"}, "line break"),
        ({"email_smtp_host": "smtp://smtp.acme.example:25"}, "host: .*no scheme"),
        ({"email_domain": "not a domain"}, "domain"),
        ({"email_smtp_username": USER}, "set both or neither"),
        ({"email_smtp_username": USER, "email_smtp_password": SecretStr("pässwort")}, "printable ASCII"),
        (
            {
                "email_smtp_security": "none",
                "email_smtp_username": USER,
                "email_smtp_password": SecretStr(PASSWORD),
            },
            "only sent over TLS",
        ),
        ({"http_total_timeout": 40}, "shorter than lease_seconds"),
        ({"http_ca_file": Path("/nonexistent/ca.pem")}, "cannot use the CA file"),
    ],
)
def test_from_settings_refuses_bad_configuration_without_echoing_secrets(
    values: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        EmailConnector.from_settings(_settings(**values))
    _assert_no_secret(str(caught.value))
    assert "pässwort" not in str(caught.value)
