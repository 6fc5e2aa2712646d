"""The hash-chained audit log (capability A1).

Every event, decision, queued action and delivery outcome is appended as one entry. Entry ``n``
stores ``hash_n = sha256(hash_{n-1} \\n seq \\n at_ms \\n kind \\n ticket_id \\n body)`` with ``hash_0`` = 64
zeros, where ``body`` is canonical JSON (sorted keys, no whitespace) kept as the exact text that was
hashed, so verification never depends on re-serialising anything.

What verification finds, and how it says where:

- a modified entry: its recomputed hash differs from the stored one;
- a deleted entry: a gap in ``seq``, or an entry whose ``prev_hash`` names no entry in the log
  (the rows after it renumbered to close the gap);
- an inserted entry: a later entry's ``prev_hash`` skips over it to an earlier one, and no entry
  names it as its predecessor: it was never part of the chain;
- reordered entries: an entry's ``prev_hash`` names an entry that now comes after it, or skips over
  entries that other entries do name (genuine entries, moved). ``seq`` is inside the hash, so
  renumbering rows to hide any of this also breaks their hashes (reported as modified);
- a truncated tail: only detectable against a checkpoint kept outside the database,
  which ``baton audit checkpoint`` writes (chain length and head hash).

Someone who can rewrite the database *and* recompute every hash can forge a consistent chain that
ends after the last checkpoint; checkpoints copied elsewhere bound that window.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update

from baton.clock import from_ms, to_ms
from baton.errors import AuditError, InputError
from baton.model import to_json
from baton.store.schema import audit_head, audit_log

__all__ = [
    "GENESIS",
    "AuditRecord",
    "Checkpoint",
    "Problem",
    "VerifyReport",
    "append",
    "canonical_json",
    "entries_for_ticket",
    "lock_head",
    "read_checkpoint",
    "verify",
    "write_checkpoint",
]

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept as is (dataclasses and datetimes
    serialise natively). Only ever used to *produce* a body; verification hashes the stored text."""
    return to_json(value, sort_keys=True).decode()


def _entry_hash(prev_hash: str, seq: int, at_ms: int, kind: str, ticket_id: str | None, body: str) -> str:
    # Newline-separated fields; kind and ids never contain a newline, and the body comes last.
    material = f"{prev_hash}\n{seq}\n{at_ms}\n{kind}\n{ticket_id or ''}\n{body}"
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """An entry to append: what happened (``kind``), to which ticket, when, with what detail."""

    kind: str
    ticket_id: str | None
    at: datetime
    body: dict[str, Any]
    text: str | None = None  # ``canonical_json(body)``, when the caller made it already


def append(conn: Connection, records: Sequence[AuditRecord], *, is_postgres: bool) -> int:
    """Append ``records`` in order inside the caller's transaction; return the new head ``seq``.

    The head row is locked first, so concurrent writers (several processes on PostgreSQL) are
    ordered one behind the other and the chain never forks. On SQLite the write transaction
    (``BEGIN IMMEDIATE``) already serialises writers.
    """
    if not records:
        return -1
    seq, prev = lock_head(conn) if is_postgres else _read_head(conn)
    rows = []
    for record in records:
        seq += 1
        at_ms = to_ms(record.at)
        body = record.text if record.text is not None else canonical_json(record.body)
        digest = _entry_hash(prev, seq, at_ms, record.kind, record.ticket_id, body)
        rows.append(
            {
                "seq": seq,
                "at_ms": at_ms,
                "kind": record.kind,
                "ticket_id": record.ticket_id,
                "body": body,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    conn.execute(insert(audit_log), rows)
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=prev))
    return seq


def _read_head(conn: Connection) -> tuple[int, str]:
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
    return int(head.seq), str(head.hash)


def lock_head(conn: Connection) -> tuple[int, str]:
    """Lock the chain head row (PostgreSQL) for the rest of the transaction and return it.

    The row is created by the first migration, so there is never a race to create it.
    """
    head = conn.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
    ).one()
    return int(head.seq), str(head.hash)


@dataclass(frozen=True)
class Problem:
    """One finding of ``verify``: the position (``seq``) and what is wrong there."""

    seq: int
    kind: str  # modified | deleted | inserted | reordered | truncated | head_mismatch | checkpoint_mismatch
    message: str


@dataclass(frozen=True)
class Checkpoint:
    length: int
    head: str


@dataclass
class VerifyReport:
    length: int = 0
    head: str = GENESIS
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    conn: Connection, *, checkpoint: Checkpoint | None = None, max_problems: int = 100
) -> VerifyReport:
    """Walk the whole chain once (streaming) and report every inconsistency found."""
    report = VerifyReport()
    broken: list[tuple[int, str]] = []  # (seq, prev_hash) of every entry not linked to the one before
    gaps: set[int] = set()  # entries right after a gap in seq (reported as deleted already)
    expected_seq, prev = 1, GENESIS
    checkpoint_hash: str | None = None
    rows = conn.execution_options(stream_results=True, yield_per=5_000).execute(
        select(audit_log).order_by(audit_log.c.seq)
    )
    for row in rows:
        seq = int(row.seq)
        if seq != expected_seq:
            gaps.add(seq)
            report.problems.append(
                Problem(
                    expected_seq,
                    "deleted",
                    f"entries {expected_seq}..{seq - 1} are missing (deleted)"
                    if seq > expected_seq + 1
                    else f"entry {expected_seq} is missing (deleted)",
                )
            )
        if row.prev_hash != prev:
            broken.append((seq, str(row.prev_hash)))
        recomputed = _entry_hash(row.prev_hash, seq, int(row.at_ms), row.kind, row.ticket_id, row.body)
        if recomputed != row.hash:
            report.problems.append(Problem(seq, "modified", f"entry {seq}: content does not match its hash"))
        if checkpoint is not None and seq == checkpoint.length:
            checkpoint_hash = row.hash
        prev = str(row.hash)
        expected_seq = seq + 1
        report.length = seq
        report.head = prev
        if len(report.problems) + len(broken) >= max_problems:
            break
    if broken:
        report.problems.extend(_broken_links(conn, broken, gaps))
        report.problems.sort(key=lambda p: p.seq)
    if len(report.problems) >= max_problems:
        return report
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
    head_seq, head_hash = (0, GENESIS) if head is None else (int(head.seq), str(head.hash))
    if (head_seq, head_hash) != (report.length, report.head):
        report.problems.append(
            Problem(
                min(head_seq, report.length) + 1,
                "head_mismatch",
                f"chain head says {head_seq} entries, the log holds {report.length} (tail truncated?)",
            )
        )
    if checkpoint is not None:
        if report.length < checkpoint.length:
            report.problems.append(
                Problem(
                    report.length + 1,
                    "truncated",
                    f"the checkpoint saw {checkpoint.length} entries, the log holds {report.length}: "
                    f"entries {report.length + 1}..{checkpoint.length} were removed",
                )
            )
        elif checkpoint.length > 0 and checkpoint_hash != checkpoint.head:
            report.problems.append(
                Problem(
                    checkpoint.length,
                    "checkpoint_mismatch",
                    f"entry {checkpoint.length} differs from the checkpoint (history was rewritten)",
                )
            )
    return report


def _broken_links(conn: Connection, broken: list[tuple[int, str]], gaps: set[int]) -> list[Problem]:
    """Say what each break in the chain is: the entry it names as predecessor is gone (deleted),
    comes after it (reordered), or comes earlier with entries between that no one names (those
    were inserted) or that other entries do name (genuine entries, moved: reordered). Only runs
    when the chain is broken; each lookup is one query, so memory stays bounded."""
    named = {prev for _, prev in broken}
    found = {
        str(h): int(s)
        for s, h in conn.execute(select(audit_log.c.seq, audit_log.c.hash).where(audit_log.c.hash.in_(named)))
    }
    between: dict[int, tuple[int, int]] = {}  # entry seq -> the seqs skipped over, first..last
    for seq, prev in broken:
        at = found.get(prev)
        if at is not None and at < seq - 1:
            between[seq] = (at + 1, seq - 1)
    skipped: dict[int, str] = {}
    for first, last in between.values():
        rows = conn.execute(
            select(audit_log.c.seq, audit_log.c.hash).where(audit_log.c.seq.between(first, last))
        )
        skipped.update({int(s): str(h) for s, h in rows})
    named_by: dict[str, list[int]] = {}  # a skipped entry's hash -> the entries naming it
    for s, h in conn.execute(
        select(audit_log.c.seq, audit_log.c.prev_hash).where(audit_log.c.prev_hash.in_(set(skipped.values())))
    ):
        named_by.setdefault(str(h), []).append(int(s))
    problems = []
    for seq, prev in broken:
        at = found.get(prev)
        if at is None:
            if seq in gaps:
                continue  # the gap just before it is the deletion, reported once
            problems.append(
                Problem(seq, "deleted", f"entry {seq}: the entry before it is no longer in the log (deleted)")
            )
        elif at >= seq:
            problems.append(
                Problem(
                    seq,
                    "reordered",
                    f"entry {seq}: it follows entry {at}, which now comes after it (reordered)",
                )
            )
        else:
            first, last = between[seq]
            # An entry of the span that something outside the span names is a genuine one.
            foreign = [
                s
                for s in range(first, last + 1)
                if not any(n < first or n > last for n in named_by.get(skipped.get(s, ""), ()))
            ]
            span = f"entry {first}" if first == last else f"entries {first}..{last}"
            if foreign and len(foreign) == last - first + 1:
                problems.append(
                    Problem(first, "inserted", f"{span}: not part of the chain (inserted before entry {seq})")
                )
            else:
                problems.append(
                    Problem(seq, "reordered", f"entry {seq}: it follows entry {at}, not {span} (reordered)")
                )
    return problems


def write_checkpoint(path: Path, report: VerifyReport, *, at: datetime) -> Checkpoint:
    """Write the chain's length and head to ``path`` (outside the database) atomically."""
    if not report.ok:
        raise AuditError("refusing to checkpoint a chain that does not verify")
    cp = Checkpoint(length=report.length, head=report.head)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        canonical_json({"length": cp.length, "head": cp.head, "written_at": at.isoformat()}) + "\n"
    )
    tmp.replace(path)
    return cp


def read_checkpoint(path: Path) -> Checkpoint:
    try:
        raw = json.loads(path.read_text())
        length, head = raw["length"], raw["head"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a Baton audit checkpoint ({exc})") from None
    if not isinstance(length, int) or length < 0 or not isinstance(head, str) or len(head) != 64:
        raise InputError(f"{path}: not a Baton audit checkpoint (bad length or head)")
    return Checkpoint(length=length, head=head)


def entries_for_ticket(conn: Connection, ticket_id: str) -> Iterator[dict[str, Any]]:
    """The ticket's evidence in chain order, each entry with its hashes so it can be checked."""
    rows = conn.execute(select(audit_log).where(audit_log.c.ticket_id == ticket_id).order_by(audit_log.c.seq))
    for row in rows:
        yield {
            "seq": int(row.seq),
            "at": from_ms(int(row.at_ms)).isoformat(),
            "kind": row.kind,
            "ticket_id": row.ticket_id,
            "body": json.loads(row.body),
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }
