"""The SMTP receiver: real mail over smtplib to a real aiosmtpd server on 127.0.0.1, into the store."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from baton.clock import FakeClock
from baton.engine.runtime import Engine
from baton.signals.email import AttachmentStore, MailIntake
from baton.signals.smtp import MailHandler, SmtpServer
from baton.store.db import open_database
from baton.store.schema import events
from tests.e2e._procs import Proc, run_baton, running, wait_until

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "email"
SENDER = "alice@customer.example"


def mail(mid: str, **extra: str) -> bytes:
    headers = {
        "From": SENDER,
        "To": "support@acme.example",
        "Subject": "Export fails",
        "Message-ID": f"<{mid}>",
    }
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return ("\r\n".join(f"{k}: {v}" for k, v in headers.items()) + "\r\n\r\nIt fails.\r\n").encode()


class Receiver:
    """A running server and what it needs, for one test."""

    def __init__(
        self, engine: Engine, clock: FakeClock, root: Path, *, recipients: tuple[str, ...] = ()
    ) -> None:
        self.engine = engine
        self.intake = MailIntake(engine=engine, store=AttachmentStore(root))
        self.server = SmtpServer(
            MailHandler(self.intake, clock=clock, recipients=recipients),
            host="127.0.0.1",
            port=0,
            max_message_bytes=64_000,
            hostname="baton.test",
        )
        self.host, self.port = self.server.start()

    def client(self) -> smtplib.SMTP:
        client = smtplib.SMTP(self.host, self.port, timeout=10)
        client.ehlo("sender.test")
        return client

    def send(self, raw: bytes, *, sender: str = SENDER, to: str = "support@acme.example") -> tuple[int, str]:
        """MAIL, RCPT and DATA by hand, so the reply to DATA can be read whatever it is."""
        with self.client() as client:
            code, _ = client.mail(sender)
            assert code == 250
            code, reply = client.rcpt(to)
            if code != 250:
                return code, reply.decode()
            code, reply = client.data(raw)
            return code, reply.decode()

    def stored(self) -> list[tuple[str, str, str]]:
        with self.engine.db.reader.connect() as conn:
            rows = conn.execute(
                select(events.c.event_id, events.c.type, events.c.ticket_id)
                .where(events.c.source == "email")
                .order_by(events.c.seq)
            ).all()
        return [(r.event_id, r.type, r.ticket_id) for r in rows]


@pytest.fixture
def receiver(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[Receiver]:
    running = Receiver(engine, clock, tmp_path / "attachments")
    yield running
    running.server.stop()


def test_mail_sent_over_smtp_is_stored_and_threaded(receiver: Receiver) -> None:
    with receiver.client() as client:
        assert (
            client.sendmail(SENDER, ["support@acme.example"], (FIXTURES / "new_ticket.eml").read_bytes())
            == {}
        )
        assert client.sendmail(SENDER, ["support@acme.example"], (FIXTURES / "reply.eml").read_bytes()) == {}
    rows = receiver.stored()
    assert [(r[0], r[1]) for r in rows] == [
        ("CAF=new-1@mail.customer.example", "ticket.created"),
        ("CAF=reply-2@mail.customer.example", "customer.replied"),
    ]
    assert rows[0][2] == rows[1][2]


def test_a_redelivery_is_answered_250_and_stored_once(receiver: Receiver) -> None:
    assert receiver.send(mail("twice@x"))[0] == 250
    assert receiver.send(mail("twice@x"))[0] == 250
    assert [r[0] for r in receiver.stored()] == ["twice@x"]


@pytest.mark.parametrize(
    ("raw", "sender", "reason"),
    [
        (mail("ooo@x", Auto_Submitted="auto-replied"), SENDER, "auto-submitted"),
        (mail("vacation@x", Subject="Out of Office: Export fails"), SENDER, "out-of-office"),
        (mail("dsn@x"), "", "bounce"),  # MAIL FROM:<>
        ((FIXTURES / "bounce.eml").read_bytes(), "postmaster@customer.example", "bounce"),
    ],
)
def test_automatic_mail_is_accepted_and_ignored(
    receiver: Receiver, raw: bytes, sender: str, reason: str
) -> None:
    code, reply = receiver.send(raw, sender=sender)
    assert code == 250 and f"not ticketed ({reason})" in reply
    assert receiver.stored() == []
    assert receiver.intake.counts[f"ignored.{reason}"] == 1


def test_malformed_mail_is_refused_permanently(receiver: Receiver) -> None:
    code, reply = receiver.send(b"\x00\x01 no headers here\r\n")
    assert code == 554 and "no header fields" in reply
    assert receiver.stored() == []


def test_mail_over_the_size_limit_is_refused(receiver: Receiver) -> None:
    code, _ = receiver.send(mail("big@x") + (b"x" * 70 + b"\r\n") * 1_000)
    assert code == 552
    # A sender that honours the SIZE extension hears it before sending anything.
    with receiver.client() as client, pytest.raises(smtplib.SMTPSenderRefused):
        client.sendmail(SENDER, ["support@acme.example"], mail("big2@x") + (b"x" * 70 + b"\r\n") * 1_000)
    assert receiver.stored() == []


def test_a_failing_store_answers_451_and_the_retry_is_stored(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    blocker = tmp_path / "attachments"
    blocker.write_text("a file where the attachment folder should be")
    failing = Receiver(engine, clock, blocker)
    try:
        code, reply = failing.send(mail("retry@x"))
        assert code == 451 and reply.startswith("4.3.0")
        assert failing.stored() == []
        blocker.unlink()  # the disk recovers; the sending server retries
        assert failing.send(mail("retry@x"))[0] == 250
        assert [r[0] for r in failing.stored()] == ["retry@x"]
    finally:
        failing.server.stop()


def test_recipients_outside_the_configured_ones_are_refused(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    limited = Receiver(engine, clock, tmp_path, recipients=("support@acme.example", "@help.acme.example"))
    try:
        assert limited.send(mail("a@x"), to="someone@elsewhere.example")[0] == 550
        assert limited.send(mail("b@x"), to="billing@help.acme.example")[0] == 250
        assert limited.send(mail("c@x"), to="Support@Acme.Example")[0] == 250
        assert [r[0] for r in limited.stored()] == ["b@x", "c@x"]
    finally:
        limited.server.stop()


def test_concurrent_senders_all_get_their_mail_stored(receiver: Receiver) -> None:
    def send(n: int) -> int:
        return receiver.send(mail(f"c{n}@x", In_Reply_To="<c0@x>" if n else ""))[0]

    assert receiver.send(mail("c0@x"))[0] == 250
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(send, range(1, 25)))
    assert codes == [250] * 24
    rows = receiver.stored()
    assert len(rows) == 25 and len({r[2] for r in rows}) == 1


def test_stop_closes_the_port(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    running = Receiver(engine, clock, tmp_path)
    running.server.stop()
    with pytest.raises(OSError):
        smtplib.SMTP(running.host, running.port, timeout=2)


def test_the_baton_smtp_command_receives_until_sigterm(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    env = {"BATON_WORKSPACE": str(ws)}
    run_baton("init", env=env)
    proc = Proc(["smtp", "--port", "0"], env=env, log=tmp_path / "smtp.log")
    with running([proc]):
        proc.start()
        wait_until("the receiver to listen", lambda: "receiving e-mail on" in proc.output(), timeout=60)
        port = int(re.findall(r"receiving e-mail on 127\.0\.0\.1:(\d+)", proc.output())[0])
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(SENDER, ["support@acme.example"], (FIXTURES / "new_ticket.eml").read_bytes())
        assert proc.stop() == 0
    assert "stopped" in proc.output()
    db = open_database(f"sqlite:///{ws / 'baton.db'}")
    try:
        with db.reader.connect() as conn:
            ids = conn.execute(select(events.c.event_id).where(events.c.source == "email")).scalars().all()
    finally:
        db.dispose()
    assert ids == ["CAF=new-1@mail.customer.example"]
