"""Time order of a history file: a stable sort by (time, reader order), in bounded memory."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from baton.model import Event
from baton.replay.order import TimeOrdered, time_key
from baton.signals.history import HistoryReader
from baton.signals.history_mapping import HistoryMapping, load_mapping

MAPPING = """\
source: test
id: id
time: {column: at, format: iso, created: opened}
status: {column: status, map: {open: open, solved: solved}}
team: team
"""
# t1 and t2 overlap in time; t3's rows are out of order in the file; t4 opened before its first
# row; t5's rows are scattered; two rows share an instant.
ROWS = """\
id,at,opened,status,team
t1,2026-01-01T09:00:00+00:00,,open,a
t1,2026-01-01T12:00:00+00:00,,open,b
t1,2026-01-01T15:00:00+00:00,,solved,b
t2,2026-01-01T10:00:00+00:00,,open,a
t2,2026-01-01T12:00:00+00:00,,solved,a
t3,2026-01-01T14:00:00+00:00,,solved,c
t3,2026-01-01T11:00:00+00:00,,open,c
t5,2026-01-01T09:30:00+00:00,,open,a
t4,2026-01-01T13:00:00+00:00,2026-01-01T08:00:00+00:00,open,d
t4,2026-01-01T16:00:00+00:00,2026-01-01T08:00:00+00:00,solved,d
t5,2026-01-01T09:45:00+00:00,,open,e
bad,not a time,,open,a
"""


@pytest.fixture
def mapping(tmp_path: Path) -> HistoryMapping:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return load_mapping(str(path))


@pytest.fixture(params=["plain", "gzip"])
def history(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    if request.param == "plain":
        path = tmp_path / "history.csv"
        path.write_text(ROWS)
    else:
        path = tmp_path / "history.csv.gz"
        path.write_bytes(gzip.compress(ROWS.encode()))
    return path


def sorted_by_hand(history: Path, mapping: HistoryMapping, limit: int | None = None) -> list[Event]:
    with HistoryReader(history, mapping, limit=limit) as reader:
        events = [item.event for item in reader if item.event is not None]
    return sorted(events, key=lambda e: time_key(e.occurred_at))  # stable: ties keep reader order


def test_events_come_in_time_order_exactly_as_a_stable_sort(history: Path, mapping: HistoryMapping) -> None:
    errors: list[tuple[int, str]] = []
    ordered = TimeOrdered(history, mapping, on_error=lambda row, why: errors.append((row, why)))
    got = list(ordered)
    assert got == sorted_by_hand(history, mapping)
    assert [e.external.id for e in got[:3] if e.external] == ["t4", "t1", "t5"]  # t4 opened at 08:00
    assert errors == [(13, "at: 'not a time' is not a time (iso)")]
    assert (ordered.rows, ordered.errors, ordered.spilled) == (12, 1, 0)
    assert 0 < ordered.peak < len(got)  # released as soon as nothing unread can come before


def test_past_the_spill_limit_events_wait_as_json_and_come_back_equal(
    history: Path, mapping: HistoryMapping
) -> None:
    ordered = TimeOrdered(history, mapping, spill=1)
    assert list(ordered) == sorted_by_hand(history, mapping)
    assert ordered.spilled > 0


def test_a_limit_keeps_the_first_tickets_of_the_file(history: Path, mapping: HistoryMapping) -> None:
    got = list(TimeOrdered(history, mapping, limit=2))
    assert {e.external.id for e in got if e.external} == {"t1", "t2"}
    assert got == sorted_by_hand(history, mapping, limit=2)
