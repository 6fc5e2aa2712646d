"""Reading history in a second process: the same stream as in process, failures included."""

from __future__ import annotations

import gzip
import io
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from baton.errors import InputError
from baton.model import Event
from baton.policy.loader import load_policy
from baton.replay import order
from baton.replay.ahead import BATCH, MIN_BYTES, ReadAhead, worth_reading_ahead
from baton.replay.order import Bounds, TimeOrdered, first_pass
from baton.replay.run import replay_history
from baton.signals.history_mapping import HistoryMapping, load_mapping
from tests.unit.replay.test_order import MAPPING, ROWS

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def mapping(tmp_path: Path) -> HistoryMapping:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return load_mapping(str(path))


def many_rows(tickets: int) -> str:
    """ROWS' header, then ``tickets`` tickets of three rows each, every tenth row unusable."""
    lines = [ROWS.splitlines()[0]]
    for n in range(tickets):
        day = 1 + n % 28
        lines.append(f"m{n},2026-02-{day:02d}T09:{n % 60:02d}:00+00:00,,open,a")
        lines.append(f"m{n},2026-02-{day:02d}T11:00:00+00:00,,open,b" if n % 10 else f"m{n},never,,open,b")
        lines.append(f"m{n},2026-02-{day:02d}T15:00:00+00:00,,solved,b")
    return "\n".join(lines) + "\n"


def stream(reader: TimeOrdered | ReadAhead) -> tuple[list[Event], list[tuple[int, str]], tuple[int, ...]]:
    errors: list[tuple[int, str]] = []
    reader.on_error = lambda row, why: errors.append((row, why))
    events = list(reader)
    return events, errors, (reader.rows, reader.errors, reader.peak, reader.spilled, reader.reordered)


@pytest.mark.parametrize("compressed", [False, True])
def test_the_child_sends_exactly_the_in_process_stream(
    tmp_path: Path, mapping: HistoryMapping, compressed: bool
) -> None:
    text = ROWS + many_rows(3 * BATCH).split("\n", 1)[1]  # several batches, errors among them
    path = tmp_path / ("history.csv.gz" if compressed else "history.csv")
    path.write_bytes(gzip.compress(text.encode()) if compressed else text.encode())
    ahead = stream(ReadAhead(path, mapping))
    here = stream(TimeOrdered(path, mapping))
    assert ahead == here
    assert len(ahead[0]) > 2 * BATCH and len(ahead[1]) > BATCH // 10  # the test crossed batches
    # The models travel in a leaner pickle than pydantic's: they arrive whole, down to which
    # fields each was given, and as frozen as they left.
    assert [e.model_dump(exclude_unset=True) for e in ahead[0]] == [
        e.model_dump(exclude_unset=True) for e in here[0]
    ]
    assert [e.fields.model_fields_set for e in ahead[0]] == [e.fields.model_fields_set for e in here[0]]
    with pytest.raises(ValidationError):
        ahead[0][0].event_id = "changed"  # type: ignore[misc]


def test_a_limit_and_the_spill_work_in_the_child(tmp_path: Path, mapping: HistoryMapping) -> None:
    path = tmp_path / "history.csv"
    path.write_text(many_rows(400))
    assert stream(ReadAhead(path, mapping, limit=50, spill=3)) == stream(
        TimeOrdered(path, mapping, limit=50, spill=3)
    )


class LateFirstPass:
    """A first pass run elsewhere that is ready only after ``polls`` questions."""

    def __init__(self, path: Path, mapping: HistoryMapping, limit: int | None, polls: int) -> None:
        self.args, self.polls, self.asked = (path, mapping, limit), polls, 0

    def ready(self) -> bool:
        self.asked += 1
        return self.asked > self.polls

    def get(self) -> Bounds:
        return first_pass(*self.args)


def reversed_rows(tickets: int) -> str:
    """``many_rows``, with the rows of every third ticket in reverse time order in the file."""
    header, *rows = many_rows(tickets).splitlines()
    out = [header]
    for n in range(tickets):
        three = rows[3 * n : 3 * n + 3]
        out += three[::-1] if n % 3 == 0 else three
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("polls", [0, 2, 10_000])  # ready at once, after 768 rows, at the cap
@pytest.mark.parametrize("limit", [None, 50, 390])  # 50 stops inside the rows read ahead
@pytest.mark.parametrize("rows", [many_rows, reversed_rows])
def test_rows_read_before_the_first_pass_is_ready_give_the_same_stream(
    tmp_path: Path,
    mapping: HistoryMapping,
    monkeypatch: pytest.MonkeyPatch,
    polls: int,
    limit: int | None,
    rows: Callable[[int], str],
) -> None:
    monkeypatch.setattr(order, "EARLY", 1_024)
    path = tmp_path / "history.csv"
    path.write_text(rows(400))  # 1,200 rows, every tenth ticket with an unusable row
    late = LateFirstPass(path, mapping, limit, polls)
    ahead = stream(TimeOrdered(path, mapping, limit=limit, spill=40, bounds=late))
    here = stream(TimeOrdered(path, mapping, limit=limit, spill=40))
    assert ahead == here  # the events, the unusable rows and every count, reordered tickets too
    assert (here[2][-1] > 0) is (rows is reversed_rows)
    assert late.asked == min(polls + 1, 3)  # asked every 256 rows; at 1,024 the cap ends the wait


@pytest.mark.parametrize(
    "content, message",
    [
        (b"foo,bar\n1,2\n", "at"),  # the mapping's columns are missing: a ConfigError
        (b"id,id,at\n", "repeats column"),
        (b"\xff\xfe,at\n", "not UTF-8"),
    ],
)
def test_a_failure_in_the_child_comes_back_as_the_same_error(
    tmp_path: Path, mapping: HistoryMapping, content: bytes, message: str
) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as here:  # InputError and ConfigError both are
        list(TimeOrdered(path, mapping))
    with pytest.raises(ValueError, match=message) as ahead:
        list(ReadAhead(path, mapping))
    assert (type(ahead.value), str(ahead.value)) == (type(here.value), str(here.value))


def test_a_missing_file_is_reported_as_in_process(tmp_path: Path, mapping: HistoryMapping) -> None:
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(InputError) as ahead:
        list(ReadAhead(missing, mapping))
    with pytest.raises(InputError) as here:
        list(TimeOrdered(missing, mapping))
    assert str(ahead.value) == str(here.value)


def test_closing_early_stops_the_child(tmp_path: Path, mapping: HistoryMapping) -> None:
    path = tmp_path / "history.csv"
    path.write_text(many_rows(20 * BATCH))  # far more than the pipe holds: the child must block
    reader = ReadAhead(path, mapping)
    events = iter(reader)
    first = [next(events) for _ in range(10)]
    assert len(first) == 10 and reader.pid is not None
    events.close()  # type: ignore[attr-defined]
    with pytest.raises(ProcessLookupError):
        os.kill(reader.pid, 0)  # ended and reaped, not left running or a zombie


def test_a_reader_killed_midway_is_an_error_not_a_short_history(
    tmp_path: Path, mapping: HistoryMapping
) -> None:
    path = tmp_path / "history.csv"
    path.write_text(many_rows(20 * BATCH))
    reader = ReadAhead(path, mapping)
    events = iter(reader)
    next(events)
    assert reader.pid is not None
    os.kill(reader.pid, signal.SIGKILL)
    with pytest.raises(InputError, match="stopped without finishing"):
        for _ in events:
            pass


def test_only_large_files_without_a_small_limit_are_read_ahead(tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_bytes(b"x" * (MIN_BYTES - 1))
    large.write_bytes(b"x" * MIN_BYTES)
    two_cores = (os.cpu_count() or 1) > 1
    assert worth_reading_ahead(large, None) is two_cores
    assert worth_reading_ahead(large, 10_000) is two_cores
    assert not worth_reading_ahead(large, 50)
    assert not worth_reading_ahead(small, None)
    assert not worth_reading_ahead(tmp_path / "missing.csv", None)


def test_a_replay_reads_the_same_either_way(tmp_path: Path, mapping: HistoryMapping) -> None:
    path = tmp_path / "history.csv"
    path.write_text(many_rows(300))
    policy = load_policy(ROOT / "examples" / "policy")
    outputs = []
    for read_ahead in (False, True):
        sink = io.BytesIO()
        replayed = replay_history(path, mapping, policy=policy, decisions=sink, read_ahead=read_ahead)
        counts = (replayed.events, replayed.rows, replayed.errors)
        outputs.append((sink.getvalue(), *counts, replayed.result.report))
    assert outputs[0] == outputs[1]
    assert outputs[0][1] > 600 and outputs[0][0].count(b"\n") > outputs[0][1]  # timers fired too
