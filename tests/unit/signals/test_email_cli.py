"""``baton ingest`` with e-mail files (.eml, mbox, sniffed), run in-process on a temporary workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from baton.cli import app
from baton.store.db import open_database
from baton.store.schema import events

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"
runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("BATON_WORKSPACE", str(ws))
    monkeypatch.delenv("BATON_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    return ws


def stored(ws: Path) -> list[tuple[str, str, str]]:
    db = open_database(f"sqlite:///{ws / 'baton.db'}")
    try:
        with db.reader.connect() as conn:
            rows = conn.execute(
                select(events.c.event_id, events.c.type, events.c.ticket_id)
                .where(events.c.source == "email")
                .order_by(events.c.seq)
            ).all()
    finally:
        db.dispose()
    return [(r.event_id, r.type, r.ticket_id) for r in rows]


def test_ingest_an_eml_file(workspace: Path) -> None:
    result = runner.invoke(app, ["ingest", str(FIXTURES / "new_ticket.eml")])
    assert result.exit_code == 0, result.output
    assert "e-mail: 1 accepted, 0 duplicates, 0 ignored, 0 errors" in result.output
    ((event_id, kind, _),) = stored(workspace)
    assert (event_id, kind) == ("CAF=new-1@mail.customer.example", "ticket.created")
    assert len(list((workspace / "attachments").rglob("*"))) > 0  # the PDF and the raw message
    again = runner.invoke(app, ["ingest", str(FIXTURES / "new_ticket.eml")])
    assert "e-mail: 0 accepted, 1 duplicates" in again.output


def test_ingest_an_mbox_archive_threads_and_ignores(workspace: Path) -> None:
    result = runner.invoke(app, ["ingest", str(FIXTURES / "archive.mbox")])
    assert result.exit_code == 0, result.output
    assert "e-mail: 3 accepted, 0 duplicates, 1 ignored (out-of-office 1), 0 errors" in result.output
    rows = stored(workspace)
    assert [(r[0], r[1]) for r in rows] == [
        ("mbox-1@customer.example", "ticket.created"),
        ("mbox-2@customer.example", "customer.replied"),
        ("mbox-4@other.example", "ticket.created"),
    ]
    assert rows[0][2] == rows[1][2] != rows[2][2]


def test_ingest_sniffs_files_without_an_extension(workspace: Path, tmp_path: Path) -> None:
    mbox = tmp_path / "export"
    shutil.copy(FIXTURES / "archive.mbox", mbox)
    eml = tmp_path / "message"
    shutil.copy(FIXTURES / "reply.eml", eml)
    assert "3 accepted" in runner.invoke(app, ["ingest", str(mbox)]).output
    assert "1 accepted" in runner.invoke(app, ["ingest", str(eml)]).output


def test_ingest_reports_bad_messages_by_number(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_EMAIL_MAX_MESSAGE_BYTES", "2048")
    archive = tmp_path / "mixed.mbox"
    archive.write_bytes(
        b"From x Mon Mar  2 08:00:00 2026\nFrom: nobody\nSubject: no sender\n\nhello\n\n"
        b"From x Mon Mar  2 08:01:00 2026\nFrom: a@customer.example\n\n" + b"z" * 3_000 + b"\n\n"
        b"From x Mon Mar  2 08:02:00 2026\nFrom: a@customer.example\nMessage-ID: <ok@x>\n\nfine\n"
    )
    result = runner.invoke(app, ["ingest", str(archive)])
    assert result.exit_code == 1
    assert "message 1: no usable sender address" in result.output
    assert "message 2: message larger than 2048 bytes" in result.output
    assert "e-mail: 1 accepted, 0 duplicates, 0 ignored, 2 errors" in result.output


def test_jsonl_ingest_is_unchanged(workspace: Path, tmp_path: Path) -> None:
    file = tmp_path / "events.jsonl"
    file.write_text("{not json\n")
    result = runner.invoke(app, ["ingest", str(file)])
    assert "line 1: malformed JSON" in result.output and "events: 0 accepted" in result.output


def test_smtp_command_is_listed() -> None:
    result = runner.invoke(app, ["smtp", "--help"])
    assert result.exit_code == 0 and "--port" in result.output and "--host" in result.output
