"""Files of e-mail (.eml, mbox), telling them from JSONL, and the attachment store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from baton.errors import StoreError
from baton.signals.email import AttachmentStore, read_eml, read_mbox, sniff

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"


def test_an_mbox_archive_is_split_into_its_messages() -> None:
    with (FIXTURES / "archive.mbox").open("rb") as handle:
        items = list(read_mbox(handle, max_bytes=100_000))
    assert [i.number for i in items] == [1, 2, 3, 4]
    assert all(i.raw is not None and i.raw.startswith(b"From: ") for i in items)
    first = items[0].raw or b""
    assert b"\nFrom the console: nothing useful.\n" in first  # >From unquoted (mboxrd)
    assert first.endswith(b"forever.\n" + b"From the console: nothing useful.\n")


def test_a_from_line_inside_a_paragraph_is_not_a_separator() -> None:
    raw = b"From a@b Mon Mar  2 08:00:00 2026\nFrom: a@b.example\n\nline one\nFrom here on\n"
    (item,) = read_mbox(io.BytesIO(raw), max_bytes=1_000)
    assert item.raw == b"From: a@b.example\n\nline one\nFrom here on\n"


def test_an_oversized_message_is_skipped_and_the_rest_is_read() -> None:
    big = b"From x Mon Mar  2 08:00:00 2026\nFrom: a@b.example\n\n" + b"y" * 5_000 + b"\n"
    small = b"From x Mon Mar  2 09:00:00 2026\nFrom: c@d.example\n\nsmall\n"
    items = list(read_mbox(io.BytesIO(big + b"\n" + small), max_bytes=1_000))
    assert [(i.number, i.raw is None) for i in items] == [(1, True), (2, False)]
    assert items[0].error == "message larger than 1000 bytes"


def test_crlf_archives_keep_their_line_endings() -> None:
    raw = b"From x Mon\r\nFrom: a@b.example\r\n\r\nbody\r\n\r\nFrom y Tue\r\nFrom: c@d.example\r\n\r\nb2\r\n"
    items = list(read_mbox(io.BytesIO(raw), max_bytes=1_000))
    assert [i.raw for i in items] == [
        b"From: a@b.example\r\n\r\nbody\r\n",
        b"From: c@d.example\r\n\r\nb2\r\n",
    ]


def test_an_eml_file_is_one_message() -> None:
    assert [i.number for i in read_eml(io.BytesIO(b"From: a@b\n\nx"), max_bytes=100)] == [1]
    (too_big,) = read_eml(io.BytesIO(b"x" * 200), max_bytes=100)
    assert too_big.raw is None and too_big.error is not None


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("a.eml", b"anything", "eml"),
        ("a.EML", b"anything", "eml"),
        ("a.mbox", b"anything", "mbox"),
        ("a.jsonl", b"From: x", "jsonl"),
        ("export", b"From alice@x Mon Mar  2 08:00:00 2026\n", "mbox"),
        ("message", b"Received: from x\r\nFrom: a@b\r\n\r\nhi", "eml"),
        ("events", b'\xef\xbb\xbf  {"source": "x"}\n', "jsonl"),
        ("events.txt", b"[1]", "jsonl"),
        ("junk", b"\x00\x01", "jsonl"),
    ],
)
def test_sniff(tmp_path: Path, name: str, content: bytes, kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert sniff(path) == kind


def test_sniffing_a_missing_file_leaves_the_error_to_the_reader(tmp_path: Path) -> None:
    assert sniff(tmp_path / "missing") == "jsonl"


def test_the_store_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path / "att")
    first = store.put(b"hello")
    second = store.put(b"hello")
    assert first == second
    assert first.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert store.path_for(first.sha256).read_bytes() == b"hello"
    assert [p.name for p in (tmp_path / "att").rglob("*") if p.is_file()] == [first.sha256]  # no temp files


def test_a_store_that_cannot_write_raises_a_retryable_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's folder should be")
    with pytest.raises(StoreError) as caught:
        AttachmentStore(blocker).put(b"data")
    assert caught.value.retryable
