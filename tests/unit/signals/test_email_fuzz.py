"""Fuzzing the e-mail parser: whatever the bytes, an Event, an Ignored verdict or an InputError.

Three generators: random bytes, real messages (the fixtures) mutated byte-wise with tokens that
matter to MIME, and messages assembled from hostile header values. Every event produced must also
be storable (serialisable JSON without surrogates or NULs) and valid against the canonical model.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baton.errors import InputError
from baton.model import Event, to_json
from baton.signals.email import AttachmentStore, Ignored, MailOptions, parse_message, read_mbox
from baton.signals.email.text import decode_bytes, decode_header_text

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"
REAL = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))] + [(FIXTURES / "archive.mbox").read_bytes()]
RECEIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
OPTIONS = MailOptions(
    max_message_bytes=64_000, max_attachment_bytes=2_000, max_attachments_bytes=3_000, max_parts=50
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKENS = [
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"--",
    b"--b1--",
    b"--mixed-1\r\n",
    b'Content-Type: multipart/mixed; boundary="b1"\r\n',
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: multipart/report\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Transfer-Encoding: x-uuencode\r\n",
    b"; charset=",
    b"utf-7",
    b"zlib_codec",
    b"unicode_escape",
    b"=?",
    b"?=",
    b"=?utf-8?b?",
    b"=?x-unknown?q?=E9?=",
    b"filename*=utf-8''%E9",
    b"<",
    b">",
    b"@",
    b"\x00",
    b"\xff\xfe",
    b"\xed\xa0\x80",
    b"From ",
    b"Message-ID: <",
    b"In-Reply-To: <baton.T-0123456789abcdef.",
    b"[T-0123456789abcdef]",
    b"Auto-Submitted: no\r\n",
    b"\\u0000",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> AttachmentStore:
    return AttachmentStore(tmp_path_factory.mktemp("fuzz-attachments"))


def check(raw: bytes, store: AttachmentStore | None = None) -> None:
    try:
        result = parse_message(raw, received_at=RECEIVED, options=OPTIONS, store=store, trust_date=True)
    except InputError:
        return
    assert isinstance(result, Event | Ignored)
    if isinstance(result, Event):
        payload = to_json(result)  # raises on lone surrogates
        assert "\x00" not in str(orjson.loads(payload))  # PostgreSQL refuses NUL in JSON text
        assert Event.model_validate_json(payload) == result


@FUZZ
@given(raw=st.binary(max_size=4_096))
def test_random_bytes(raw: bytes) -> None:
    check(raw)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        match draw(st.sampled_from(["flip", "insert", "delete", "token", "duplicate"])):
            case "flip" if at < len(data):
                data[at] ^= 1 << draw(st.integers(0, 7))
            case "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=16))
            case "delete":
                del data[at : at + draw(st.integers(1, 64))]
            case "token":
                data[at:at] = draw(st.sampled_from(TOKENS))
            case "duplicate":
                end = min(len(data), at + draw(st.integers(1, 256)))
                data[at:at] = data[at:end] * draw(st.integers(1, 4))
            case _:
                pass
    return bytes(data)


@FUZZ
@given(raw=mutated())
def test_mutated_real_messages(raw: bytes, store: AttachmentStore) -> None:
    check(raw, store)


HEADER_NAMES = [
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Type",
    "Content-Disposition",
    "Content-Transfer-Encoding",
    "Auto-Submitted",
    "Precedence",
    "List-Id",
    "Return-Path",
    "X-Baton-Ticket",
]


@FUZZ
@given(
    headers=st.lists(
        st.tuples(st.sampled_from(HEADER_NAMES), st.binary(max_size=200) | st.sampled_from(TOKENS)),
        max_size=12,
    ),
    body=st.binary(max_size=1_000),
)
def test_hostile_header_values(headers: list[tuple[str, bytes]], body: bytes, store: AttachmentStore) -> None:
    raw = (
        b"From: a@b.example\r\n"
        + b"".join(n.encode() + b": " + v + b"\r\n" for n, v in headers)
        + b"\r\n"
        + body
    )
    check(raw, store)


@FUZZ
@given(data=st.binary(max_size=300), charset=st.sampled_from(
    ["utf-8", "utf-7", "utf-16", "shift_jis", "iso-2022-jp", "rot13", "zlib_codec", "base64", "hex",
     "unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined", "x-unknown", "", "utf-8\x00",
     "'latin1'", "unknown-8bit"]
) | st.text(max_size=20))  # fmt: skip
def test_decoding_is_total_and_clean(data: bytes, charset: str) -> None:
    text, _ = decode_bytes(data, charset)
    text.encode("utf-8")  # no lone surrogates
    assert "\x00" not in text
    header, _ = decode_header_text(data.decode("ascii", "surrogateescape"))
    header.encode("utf-8")
    assert "\x00" not in header


@FUZZ
@given(raw=st.binary(max_size=2_000) | mutated())
def test_mbox_reader_is_total(raw: bytes) -> None:
    items = list(read_mbox(io.BytesIO(raw), max_bytes=500))
    assert [i.number for i in items] == list(range(1, len(items) + 1))
    for item in items:
        assert (item.raw is None) == (item.error is not None)
        assert item.raw is None or len(item.raw) <= 500
