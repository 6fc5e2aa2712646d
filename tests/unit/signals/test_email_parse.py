"""E-mail to canonical events: fixtures of real-looking mail, charsets, attachments, limits."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from baton.errors import InputError, TooLargeError
from baton.model import Event, EventType, to_json
from baton.signals.email import AttachmentStore, MailOptions, parse_message
from baton.signals.email.text import strip_quoted

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"
RECEIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def mail(headers: dict[str, str] | None = None, body: str = "Hello, it is broken.") -> bytes:
    values = {
        "From": "Alice <alice@customer.example>",
        "To": "support@acme.example",
        "Subject": "Export fails",
        "Message-ID": "<m1@customer.example>",
        **(headers or {}),
    }
    head = "\r\n".join(f"{k}: {v}" for k, v in values.items() if v)
    return (head + "\r\n\r\n" + body + "\r\n").encode()


def parse(raw: bytes, **kwargs: Any) -> Event:
    result = parse_message(raw, received_at=RECEIVED, **kwargs)
    assert isinstance(result, Event), result
    to_json(result)  # always storable: no surrogates, no NULs
    return result


def flags(event: Event) -> list[Any]:
    found = event.data.get("flags", [])
    assert isinstance(found, list)
    return found


@pytest.mark.parametrize(
    ("fixture", "kind", "subject", "requester", "body_has", "expected_flags"),
    [
        ("new_ticket.eml", "ticket.created", "Export to CSV fails with error 500", "alice@customer.example",
         "Every export to CSV fails", []),
        ("reply.eml", "customer.replied", "Re: Export to CSV fails with error 500", "alice@customer.example",
         "cancel the renewal", []),
        ("latin1.eml", "ticket.created", "Problème de facturation à régler", "francois@kunde.example",
         "montant dû est 1\xa0200 €", []),
        ("shift_jis.eml", "ticket.created", "請求書について", "yamada@kaisha.example",
         "請求書の金額が間違っています", []),
        ("broken_charset.eml", "ticket.created", "qaplaé broken header charset", "dana@customer.example",
         "café crème brûlée", ["charset_fallback"]),
        ("unknown_charset.eml", "ticket.created", "Unknown charset body", "erin@customer.example",
         "one byte é", ["charset_fallback", "date_missing"]),
        ("html_only.eml", "ticket.created", "HTML only", "frank@customer.example",
         "Our dashboard is down.\n\nPlease help & call us.", ["date_missing"]),
        ("malformed.eml", "ticket.created", "Broken MIME", "harry@customer.example",
         "The body survives.", ["date_missing", "mime_defects"]),
        ("forwarded.eml", "customer.replied", "Fwd: Original problem report", "ivy@customer.example",
         "See the forwarded message.", ["date_missing"]),
    ],
)  # fmt: skip
def test_fixture_messages(
    fixture: str, kind: str, subject: str, requester: str, body_has: str, expected_flags: list[str]
) -> None:
    event = parse((FIXTURES / fixture).read_bytes(), trust_date=True)
    assert event.source == "email"
    assert event.type == kind
    assert event.fields.subject == subject
    assert event.fields.requester == requester
    assert event.fields.channel == "email"
    assert body_has in (event.fields.body or "")
    assert flags(event) == expected_flags
    assert event.actor is not None and event.actor.kind == "customer" and event.actor.email == requester
    assert event.external is not None and event.external.system == "email"
    assert event.event_id == event.external.id


def test_a_new_message_has_its_headers_in_the_event() -> None:
    event = parse((FIXTURES / "new_ticket.eml").read_bytes(), trust_date=True)
    assert event.event_id == "CAF=new-1@mail.customer.example"
    assert event.occurred_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert event.references == ()
    assert event.ticket_id is None
    assert event.data["to"] == ["support@acme.example"]
    assert event.data["cc"] == ["bob@customer.example"]
    assert event.data["threading"] == "new"
    assert event.actor is not None and event.actor.name == "Alice Example"
    assert "<b>" not in (event.fields.body or "")  # the plain twin, not the HTML one


def test_live_mail_happens_when_it_is_received_not_when_its_date_says() -> None:
    event = parse((FIXTURES / "new_ticket.eml").read_bytes())
    assert event.occurred_at == RECEIVED


@pytest.mark.parametrize(
    "date", ["not a date", "Mon, 02 Mar 2099 08:00:00 +0000", "Mon, 02 Mar 1970 08:00:00 +0000", ""]
)
def test_an_unusable_date_falls_back_to_the_received_time(date: str) -> None:
    event = parse(mail({"Date": date}), trust_date=True)
    assert event.occurred_at == RECEIVED
    assert "date_missing" in flags(event)


def test_a_date_without_a_zone_is_utc() -> None:
    event = parse(mail({"Date": "Mon, 02 Mar 2026 08:00:00 -0000"}), trust_date=True)
    assert event.occurred_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_reply_references_parent_first_then_ancestors_nearest_first() -> None:
    event = parse(
        mail({"In-Reply-To": "<c@x>", "References": "<a@x> <b@x>\r\n <c@x>", "Message-ID": "<d@x>"})
    )
    assert [r.id for r in event.references] == ["c@x", "b@x", "a@x"]
    assert {r.system for r in event.references} == {"email"}
    assert event.type == EventType.CUSTOMER_REPLIED


def test_parsing_keeps_the_whole_text_threading_decides_what_is_history() -> None:
    event = parse((FIXTURES / "reply.eml").read_bytes())
    assert "> We are looking into it." in (event.fields.body or "")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Thanks!\n\nOn Mon, 2 Mar 2026, Bob <b@x> wrote:\n> old", "Thanks!"),
        ("Danke\n\nAm 02.03.2026 um 10:00 schrieb Bob <b@x>:\n> alt", "Danke"),
        ("Yes.\n\n-----Original Message-----\nFrom: support", "Yes."),
        ("Fine.\n\nFrom: Acme Support\nSent: Monday\nSubject: x", "Fine."),
        ("Answer\n> quoted tail\n>", "Answer"),
        ("See below.\n-- Forwarded message --\nFrom: v", "See below.\n-- Forwarded message --\nFrom: v"),
        ("> only a quote", "> only a quote"),  # nothing would remain: keep everything
    ],
)
def test_strip_quoted(text: str, kept: str) -> None:
    assert strip_quoted(text) == kept


def test_the_subject_token_is_the_ticket_candidate() -> None:
    event = parse(mail({"Subject": "Re: Export fails [T-0123456789ABCDEF]"}))
    assert event.ticket_id == "T-0123456789abcdef"
    assert event.type == EventType.CUSTOMER_REPLIED
    assert event.data["threading"] == "subject-token"


def test_a_baton_message_id_in_the_references_names_the_ticket() -> None:
    event = parse(mail({"In-Reply-To": "<baton.T-00000000000000aa.n1@acme.example>"}))
    assert event.ticket_id == "T-00000000000000aa"
    assert event.data["threading"] == "baton-message-id"


def test_a_message_without_message_id_gets_a_stable_digest() -> None:
    raw = mail({"Message-ID": ""})
    first, second = parse(raw), parse(raw)
    assert first.event_id == second.event_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert "message_id_missing" in flags(first)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@b>", "a@b"),
        ("  <a@b> (comment)", "a@b"),
        ("a@b", "a@b"),
        ("<" + "x" * 300 + "@b>", "sha256:"),
        ("<caf\udce9@b>", "sha256:"),
    ],
)
def test_message_ids_are_normalised(value: str, expected: str) -> None:
    from baton.signals.email.threads import normalize_message_id

    found = normalize_message_id(value)
    assert found is not None and found.startswith(expected) and len(found) <= 256


def test_sender_falls_back_to_the_envelope() -> None:
    event = parse(mail({"From": "undisclosed"}), envelope_sender="Ops@Customer.Example")
    assert event.fields.requester == "ops@customer.example"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty message"),
        (b"   \r\n", "empty message"),
        (b"\x00\x01binary junk without headers", "no header fields"),
        (mail({"From": "nobody"}), "no usable sender"),
    ],
)
def test_unusable_messages_are_refused_with_a_reason(raw: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_message(raw, received_at=RECEIVED)


def test_a_huge_message_is_refused_before_parsing() -> None:
    raw = mail(body="x" * 5_000)
    with pytest.raises(TooLargeError, match="over the limit of 4096"):
        parse_message(raw, received_at=RECEIVED, options=MailOptions(max_message_bytes=4_096))


def test_a_huge_body_is_truncated_and_flagged() -> None:
    event = parse(mail(body=("lorem ipsum " * 10 + "\r\n") * 2_000))
    assert len(event.fields.body or "") == 100_000
    assert "body_truncated" in flags(event)


def test_a_huge_subject_is_truncated_and_flagged() -> None:
    event = parse(mail({"Subject": "s" * 3_000}))
    assert len(event.fields.subject or "") == 1_000
    assert "subject_truncated" in flags(event)


def attachment_mail(*files: tuple[str, bytes], content_type: str = "application/octet-stream") -> bytes:
    parts = ["--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"]
    for name, data in files:
        encoded = base64.encodebytes(data).decode().replace("\n", "\r\n")
        parts.append(
            f'--b\r\nContent-Type: {content_type}; name="{name}"\r\n'
            f'Content-Disposition: attachment; filename="{name}"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}"
        )
    body = "".join(parts) + "--b--"
    return mail({"MIME-Version": "1.0", "Content-Type": 'multipart/mixed; boundary="b"'}, body)


def test_attachments_are_stored_content_addressed(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path / "att")
    data = b"2026-03-02 ERROR export failed\n" * 10
    event = parse(attachment_mail(("app.log", data), ("copy.log", data)), store=store)
    digest = hashlib.sha256(data).hexdigest()
    assert [(a.name, a.size, a.sha256) for a in event.attachments] == [
        ("app.log", len(data), digest),
        ("copy.log", len(data), digest),
    ]
    path = tmp_path / "att" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == data
    assert event.attachments[0].uri == path.resolve().as_uri()
    raw_info = event.data["raw"]
    assert isinstance(raw_info, dict) and store.path_for(str(raw_info["sha256"])).exists()
    assert "flags" not in event.data


def test_attachment_names_are_decoded_and_stripped_of_paths(tmp_path: Path) -> None:
    event = parse(attachment_mail(("=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=", b"x"), ("../../etc/passwd", b"y")))
    assert [a.name for a in event.attachments] == ["résumé.pdf", "passwd"]


def test_over_the_per_file_cap_is_recorded_not_stored(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    big, small = b"B" * 2_000, b"s" * 10
    event = parse(
        attachment_mail(("big.bin", big), ("small.bin", small)),
        store=store,
        options=MailOptions(max_attachment_bytes=1_000, keep_raw=False),
    )
    big_att, small_att = event.attachments
    assert big_att.uri is None and big_att.size == 2_000 and big_att.sha256 == hashlib.sha256(big).hexdigest()
    assert not store.path_for(big_att.sha256).exists()
    assert small_att.uri is not None
    assert "attachment_over_cap" in flags(event)
    assert event.data["attachments_not_stored"] == ["big.bin"]


def test_the_per_message_cap_stops_storing_once_spent(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    files = [(f"f{i}.bin", bytes([i]) * 600) for i in range(3)]
    event = parse(
        attachment_mail(*files),
        store=store,
        options=MailOptions(max_attachment_bytes=1_000, max_attachments_bytes=1_300, keep_raw=False),
    )
    assert [a.uri is not None for a in event.attachments] == [True, True, False]
    assert event.data["attachments_not_stored"] == ["f2.bin"]


def test_without_a_store_attachments_are_metadata_only_and_unflagged() -> None:
    event = parse(attachment_mail(("a.txt", b"abc")))
    assert event.attachments[0].uri is None
    assert "flags" not in event.data


def test_too_many_attachments_keeps_the_first_hundred() -> None:
    event = parse(attachment_mail(*[(f"{i}.txt", str(i).encode()) for i in range(120)]))
    assert len(event.attachments) == 100
    assert "too_many_attachments" in flags(event)


def test_a_forwarded_message_is_one_attachment() -> None:
    event = parse((FIXTURES / "forwarded.eml").read_bytes())
    (attached,) = event.attachments
    assert attached.type == "message/rfc822" and attached.name.endswith(".eml")
    assert event.fields.body == "See the forwarded message."


def nested(depth: int) -> bytes:
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    return mail({"MIME-Version": "1.0", "Content-Type": 'multipart/mixed; boundary="b"'}, "--b\r\n" + opening)


def test_nested_multiparts_are_walked_without_recursion() -> None:
    event = parse(nested(400))
    assert "mime_defects" in flags(event)


def test_nesting_too_deep_for_the_parser_is_refused() -> None:
    with pytest.raises(TooLargeError, match="nested too deeply"):
        parse_message(nested(5_000), received_at=RECEIVED)


def test_the_number_of_parts_walked_is_bounded() -> None:
    event = parse(
        attachment_mail(*[(f"{i}.txt", b"x") for i in range(30)]), options=MailOptions(max_parts=10)
    )
    assert "too_many_parts" in flags(event)
    assert len(event.attachments) < 10


def test_raw_8bit_utf8_headers_are_read() -> None:
    raw = mail({"Subject": "Größe ändern", "From": "Jürgen <juergen@kunde.example>"})
    event = parse(raw)
    assert event.fields.subject == "Größe ändern"
    assert event.actor is not None and event.actor.name == "Jürgen"


def test_nul_bytes_and_lone_surrogates_never_reach_the_event() -> None:
    raw = mail({"Subject": "a\x00b"}, body="x\x00y") + b"\xed\xa0\x80"
    event = parse(raw)
    assert "\x00" not in (event.fields.subject or "") + (event.fields.body or "")
