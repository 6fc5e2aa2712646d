"""The hash chain on real databases: every kind of tampering is found, with its position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, insert, select, update
from typer.testing import CliRunner

from baton import audit
from baton.audit import AuditRecord, Checkpoint
from baton.cli import app
from baton.engine.runtime import Engine
from baton.store.db import Database
from baton.store.schema import audit_head, audit_log
from tests.conftest import START
from tests.helpers import event


def fill(db: Database, n: int = 20) -> None:
    with db.writer.begin() as conn:
        audit.append(
            conn,
            [AuditRecord("note", f"T-{i % 3}", START, {"i": i, "text": f"entry {i}"}) for i in range(n)],
            is_postgres=db.is_postgres,
        )


def report(db: Database, checkpoint: Checkpoint | None = None) -> audit.VerifyReport:
    with db.reader.connect() as conn:
        return audit.verify(conn, checkpoint=checkpoint)


def forge(conn: Connection, *, after: int, count: int = 1) -> None:
    """Slip ``count`` well-formed entries in after entry ``after``, each linked to the one before
    it, with the later rows renumbered (from the end, so the primary key never collides)."""
    rows = conn.execute(
        select(audit_log.c.seq).where(audit_log.c.seq > after).order_by(audit_log.c.seq.desc())
    )
    for (seq,) in rows.all():
        conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(seq=seq + count))
    prev = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == after)).scalar_one()
    for seq in range(after + 1, after + count + 1):
        body = f'{{"forged":{seq}}}'
        digest = audit._entry_hash(prev, seq, 0, "note", "T-0", body)
        conn.execute(
            insert(audit_log).values(
                seq=seq, at_ms=0, kind="note", ticket_id="T-0", body=body, prev_hash=prev, hash=digest
            )
        )
        prev = digest


def swap(conn: Connection, a: int, b: int) -> None:
    """Exchange the contents of entries ``a`` and ``b`` (each keeps its position's seq)."""
    first = conn.execute(select(audit_log).where(audit_log.c.seq == a)).one()
    second = conn.execute(select(audit_log).where(audit_log.c.seq == b)).one()
    for target, src in ((a, second), (b, first)):
        values = {c: getattr(src, c) for c in ("at_ms", "kind", "ticket_id", "body", "prev_hash", "hash")}
        conn.execute(update(audit_log).where(audit_log.c.seq == target).values(**values))


def test_clean_chain_verifies(db: Database) -> None:
    fill(db)
    r = report(db)
    assert r.ok and r.length == 20
    with db.reader.connect() as conn:
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
    assert (head.seq, head.hash) == (20, r.head)


def test_appends_continue_the_chain(db: Database) -> None:
    fill(db, 5)
    fill(db, 5)
    r = report(db)
    assert r.ok and r.length == 10


def test_flipped_byte_is_found_where_it_is(db: Database) -> None:
    fill(db)
    with db.writer.begin() as conn:
        body = conn.execute(select(audit_log.c.body).where(audit_log.c.seq == 7)).scalar_one()
        flipped = body.replace("entry 6", "entrz 6")
        assert flipped != body
        conn.execute(update(audit_log).where(audit_log.c.seq == 7).values(body=flipped))
    r = report(db)
    assert not r.ok
    assert [(p.seq, p.kind) for p in r.problems] == [(7, "modified")]


def test_changed_metadata_is_found(db: Database) -> None:
    fill(db)
    with db.writer.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(ticket_id="T-other"))
    assert [(p.seq, p.kind) for p in report(db).problems] == [(3, "modified")]


def test_deleted_entry_is_found(db: Database) -> None:
    fill(db)
    with db.writer.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 11))
    assert [(p.seq, p.kind) for p in report(db).problems] == [(11, "deleted")]


def test_deleted_entry_with_the_rest_renumbered_is_found(db: Database) -> None:
    """Entry 11 removed and every later row moved down to close the gap in seq."""
    fill(db)
    with db.writer.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 11))
        for row in conn.execute(
            select(audit_log.c.seq).where(audit_log.c.seq > 11).order_by(audit_log.c.seq)
        ).all():
            conn.execute(update(audit_log).where(audit_log.c.seq == row.seq).values(seq=row.seq - 1))
    problems = report(db).problems
    assert (11, "deleted") in [(p.seq, p.kind) for p in problems]
    assert not {p.kind for p in problems} & {"inserted", "reordered"}


def test_inserted_entry_is_found(db: Database) -> None:
    """An entry slipped in between 5 and 6, with later rows renumbered to make room."""
    fill(db)
    with db.writer.begin() as conn:
        forge(conn, after=5)
    problems = report(db).problems
    assert problems[0].seq == 6 and problems[0].kind == "inserted", problems
    assert "entry 6: not part of the chain (inserted before entry 7)" in problems[0].message
    assert not {p.kind for p in problems} & {"reordered", "deleted"}


def test_two_entries_inserted_together_are_found_as_one_span(db: Database) -> None:
    fill(db)
    with db.writer.begin() as conn:
        forge(conn, after=5, count=2)
    problems = report(db).problems
    assert [(p.seq, p.kind) for p in problems if p.kind not in ("modified", "head_mismatch")] == [
        (6, "inserted")
    ]
    assert "entries 6..7: not part of the chain (inserted before entry 8)" in problems[0].message


def test_reordered_entries_are_found(db: Database) -> None:
    fill(db)
    with db.writer.begin() as conn:
        swap(conn, 8, 9)
    problems = report(db).problems
    assert problems[0].seq == 8
    assert (8, "reordered") in [(p.seq, p.kind) for p in problems]
    assert "entry 8: it follows entry 9, which now comes after it (reordered)" in [
        p.message for p in problems
    ]
    assert not {p.kind for p in problems} & {"inserted", "deleted"}


def test_truncated_tail_is_found_by_head_and_by_checkpoint(db: Database, tmp_path: Path) -> None:
    fill(db)
    cp = audit.write_checkpoint(tmp_path / "cp.json", report(db), at=START)
    assert audit.read_checkpoint(tmp_path / "cp.json") == cp
    with db.writer.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq > 16))
    problems = report(db, cp).problems
    assert ("truncated", 17) in {(p.kind, p.seq) for p in problems}
    assert "head_mismatch" in {p.kind for p in problems}


def test_truncation_with_a_forged_head_is_still_caught_by_the_checkpoint(
    db: Database, tmp_path: Path
) -> None:
    fill(db)
    cp = audit.write_checkpoint(tmp_path / "cp.json", report(db), at=START)
    with db.writer.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq > 16))
        last = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == 16)).scalar_one()
        conn.execute(update(audit_head).values(seq=16, hash=last))
    assert report(db).ok  # without the checkpoint the shorter chain is self-consistent...
    assert [p.kind for p in report(db, cp).problems] == ["truncated"]  # ...the checkpoint is not fooled


def test_rewritten_history_before_the_checkpoint_is_found(db: Database, tmp_path: Path) -> None:
    fill(db, 10)
    cp = audit.write_checkpoint(tmp_path / "cp.json", report(db), at=START)
    # Rebuild a fully consistent chain with different content: only the checkpoint can tell.
    with db.writer.begin() as conn:
        conn.execute(delete(audit_log))
        conn.execute(update(audit_head).values(seq=0, hash=audit.GENESIS))
    with db.writer.begin() as conn:
        audit.append(
            conn, [AuditRecord("note", None, START, {"i": i}) for i in range(12)], is_postgres=db.is_postgres
        )
    assert report(db).ok
    assert [(p.kind, p.seq) for p in report(db, cp).problems] == [("checkpoint_mismatch", 10)]


def test_refuses_to_checkpoint_a_broken_chain(db: Database, tmp_path: Path) -> None:
    fill(db)
    with db.writer.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    with pytest.raises(audit.AuditError):
        audit.write_checkpoint(tmp_path / "cp.json", report(db), at=START)


@pytest.mark.parametrize(
    "content", ["", "{}", '{"length": -1, "head": "x"}', "not json", '{"length": 1, "head": 5}']
)
def test_bad_checkpoint_files_are_input_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cp.json"
    path.write_text(content)
    with pytest.raises(audit.InputError):
        audit.read_checkpoint(path)


def test_engine_writes_a_verifiable_record_and_the_cli_verifies_and_exports(
    engine: Engine, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = engine.ingest([event(1, subject="Site down"), event(2, "customer.replied", ticket=1)])
    ticket_id = results[0].ticket_id
    assert ticket_id is not None
    monkeypatch.setenv("BATON_DATABASE_URL", db.url)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    cp_file = tmp_path / "cp.json"
    assert runner.invoke(app, ["audit", "checkpoint", str(cp_file)]).exit_code == 0
    out = tmp_path / "evidence.jsonl"
    exported = runner.invoke(app, ["audit", "export", ticket_id, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    kinds = [json.loads(line)["kind"] for line in out.read_text().splitlines()]
    assert kinds == ["event.received", "decision", "action.queued", "event.received", "decision"]
    with db.writer.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    broken = runner.invoke(app, ["audit", "verify", "--checkpoint", str(cp_file)])
    assert broken.exit_code == 1
    assert "entry 2: deleted" in broken.output


@pytest.mark.parametrize("tamper", ["reorder", "insert"])
def test_the_cli_says_which_tampering_it_found(
    db: Database, monkeypatch: pytest.MonkeyPatch, tamper: str
) -> None:
    fill(db)
    with db.writer.begin() as conn:
        if tamper == "reorder":
            swap(conn, 4, 5)
        else:  # a forged entry in place of the real 20th, linked to the 19th
            forge(conn, after=19)
    monkeypatch.setenv("BATON_DATABASE_URL", db.url)
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    expected = (
        "entry 4: it follows entry 5, which now comes after it (reordered)"
        if tamper == "reorder"
        else "entry 20: not part of the chain (inserted before entry 21)"
    )
    assert expected in result.output.replace("\n", " "), result.output
