"""Rows of an exported log become canonical events: types, ids, order, caps and row errors."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from baton.errors import ConfigError
from baton.model import Event, EventType, Priority, Stage
from baton.signals.history import ID_MAX, HistoryReader, MappedRow, time_parser
from baton.signals.history_mapping import HistoryMapping, load_mapping

MAPPING = """\
source: acme
id: ticket
time: {column: at, format: "%d/%m/%Y %H:%M", timezone: Europe/Brussels, created: opened}
empty: ["?"]
status:
  column: state
  map: {New: open, Working: open, Waiting: pending, Done: solved, Closed: closed, Unknown: null}
priority: {column: prio, map: {P1: urgent, P2: high, P3: normal}}
team: group
tier: {column: level, map: {first: L1, second: L2, third: L3}}
assignee: agent
account: customer
subject: [title, product]
body: [notes]
keep: [seq]
"""
COLUMNS = [
    "ticket",
    "at",
    "opened",
    "state",
    "prio",
    "group",
    "level",
    "agent",
    "customer",
    "title",
    "product",
    "notes",
    "seq",
]
BASE = {
    "opened": "?",
    "state": "Working",
    "prio": "P3",
    "group": "desk",
    "level": "first",
    "agent": "ann",
    "customer": "acme-corp",
    "title": "Printer",
    "product": "?",
    "notes": "",
    "seq": "0",
}


@pytest.fixture
def mapping(tmp_path: Path) -> HistoryMapping:
    path = tmp_path / "acme.yaml"
    path.write_text(MAPPING)
    return load_mapping(str(path))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**BASE, **row})
    path.write_text(buffer.getvalue())
    return path


def read(path: Path, mapping: HistoryMapping, *, limit: int | None = None) -> list[MappedRow]:
    with HistoryReader(path, mapping, limit=limit) as reader:
        return list(reader)


def events(items: list[MappedRow]) -> list[Event]:
    return [i.event for i in items if i.event is not None]


def at(minute: int) -> str:
    return f"1/3/2016 10:{minute:02d}"


# One ticket's life, row by row: (state, group, agent, priority, the event type expected).
LIFE = [
    ("New", "?", "ann", "P3", EventType.TICKET_CREATED),
    ("Working", "desk", "ann", "P3", EventType.ASSIGNED),  # its first team
    ("Working", "network", "ann", "P3", EventType.ASSIGNED),
    ("Working", "network", "bob", "P3", EventType.ASSIGNED),
    ("Working", "network", "bob", "P1", EventType.PRIORITY_CHANGED),
    ("Waiting", "network", "bob", "P1", EventType.STATUS_CHANGED),
    ("Unknown", "network", "bob", "P1", EventType.TICKET_UPDATED),  # null in the status map: not stated
    ("Done", "desk", "bob", "P1", EventType.SOLVED),  # a status change outranks a move
    ("Waiting", "desk", "bob", "P1", EventType.REOPENED),  # Baton reopens into `open`...
    ("Waiting", "desk", "bob", "P1", EventType.STATUS_CHANGED),  # ...so this `pending` is a change
    ("Closed", "desk", "bob", "P1", EventType.CLOSED),
    ("Closed", "desk", "bob", "P1", EventType.TICKET_UPDATED),
]


def test_event_types_follow_the_source_status(tmp_path: Path, mapping: HistoryMapping) -> None:
    rows = [
        {
            "ticket": "T1",
            "at": at(i),
            "state": state,
            "group": group,
            "agent": agent,
            "prio": prio,
            "seq": str(i),
        }
        for i, (state, group, agent, prio, _) in enumerate(LIFE)
    ]
    items = read(write_csv(tmp_path / "log.csv", rows), mapping)
    assert [e.type for e in events(items)] == [kind for *_, kind in LIFE]


def test_fields_ids_and_links(tmp_path: Path, mapping: HistoryMapping) -> None:
    path = write_csv(
        tmp_path / "log.csv",
        [{"ticket": "T1", "at": at(1), "opened": at(0), "product": "X200", "notes": "it jams", "seq": "4"}],
    )
    (e,) = events(read(path, mapping))
    brussels = timezone(timedelta(hours=1))
    assert e.source == "acme" and e.event_id.startswith("T1:") and len(e.event_id) == 3 + 16
    assert e.external is not None and (e.external.system, e.external.id) == ("acme", "T1")
    assert e.occurred_at == datetime(2016, 3, 1, 10, 0, tzinfo=brussels)  # opened before its first update
    f = e.fields
    assert (f.subject, f.body, f.account_id) == ("Printer / X200", "it jams", "acme-corp")
    assert (f.team, f.tier, f.assignee, f.priority, f.status) == (
        "desk",
        "L1",
        "ann",
        Priority.NORMAL,
        Stage.OPEN,
    )
    assert e.data == {"row": 2, "columns": {"seq": "4"}}


def test_ids_are_deterministic_and_follow_content_not_position(
    tmp_path: Path, mapping: HistoryMapping
) -> None:
    a = {"ticket": "T1", "at": at(1)}
    b = {"ticket": "T1", "at": at(2), "state": "Done"}
    first = events(read(write_csv(tmp_path / "one.csv", [a, b]), mapping))
    again = events(read(write_csv(tmp_path / "one.csv", [a, b]), mapping))
    longer = events(read(write_csv(tmp_path / "two.csv", [{"ticket": "T0", "at": at(0)}, a, b]), mapping))
    assert [e.event_id for e in first] == [e.event_id for e in again] == [e.event_id for e in longer[1:]]
    assert len({e.event_id for e in first}) == 2


def test_a_tickets_rows_are_put_in_time_order(tmp_path: Path, mapping: HistoryMapping) -> None:
    rows = [
        {"ticket": "T1", "at": at(5), "seq": "late"},
        {"ticket": "T1", "at": at(1), "seq": "early"},
        {"ticket": "T1", "at": at(5), "seq": "late-2"},  # same time as the first: file order kept
        {"ticket": "T2", "at": at(0), "seq": "other"},
    ]
    path = write_csv(tmp_path / "log.csv", rows)
    with HistoryReader(path, mapping) as reader:
        items = list(reader)
        assert reader.reordered == 1 and reader.rows_read == 4
    got = [(i.row, json.loads(i.event.model_dump_json())["data"]["columns"]["seq"]) for i in items if i.event]
    assert got == [(3, "early"), (2, "late"), (4, "late-2"), (5, "other")]
    assert [e.type for e in events(items)][:2] == [EventType.TICKET_CREATED, EventType.TICKET_UPDATED]


# (changes to one row, the error reported for it)
ROW_ERRORS = [
    ({"ticket": ""}, "ticket: no ticket id"),
    ({"ticket": "?"}, "ticket: no ticket id"),
    ({"ticket": "T" * (ID_MAX + 1)}, f"ticket: ticket id longer than {ID_MAX} characters"),
    ({"at": "?"}, "at: no time"),
    ({"at": "31/2/2016 10:00"}, "at: '31/2/2016 10:00' is not a time (%d/%m/%Y %H:%M)"),
    ({"at": "2016-03-01T10:00"}, "at: '2016-03-01T10:00' is not a time (%d/%m/%Y %H:%M)"),
    ({"opened": "soon"}, "opened: 'soon' is not a time (%d/%m/%Y %H:%M)"),
    ({"state": "Limbo"}, "state: 'Limbo' is not in the mapping's status map"),
    ({"prio": "P9" * 50}, f"prio: '{('P9' * 50)[:57]}...' is not in the mapping's priority map"),
    ({"level": "zeroth"}, "level: 'zeroth' is not in the mapping's tier map"),
]


@pytest.mark.parametrize(("changes", "error"), ROW_ERRORS)
def test_a_bad_row_is_reported_and_the_others_imported(
    tmp_path: Path, mapping: HistoryMapping, changes: dict[str, str], error: str
) -> None:
    rows = [
        {"ticket": "T1", "at": at(0)},
        {"ticket": "T1", "at": at(1), **changes},
        {"ticket": "T1", "at": at(2)},
    ]
    items = read(write_csv(tmp_path / "log.csv", rows), mapping)
    assert [(i.row, i.error) for i in items if i.error] == [(3, error)]
    assert [i.row for i in items if i.event] == [2, 4]


def test_oversized_fields_are_capped(tmp_path: Path, mapping: HistoryMapping) -> None:
    rows = [{"ticket": "T1", "at": at(0), "title": "t" * 5_000, "group": "g" * 500, "notes": "n" * 120_000}]
    (e,) = events(read(write_csv(tmp_path / "log.csv", rows), mapping))
    assert e.fields.subject is not None and len(e.fields.subject) == 1_000 and e.fields.subject.endswith("…")
    assert e.fields.team is not None and len(e.fields.team) == 128
    assert e.fields.body is not None and len(e.fields.body) == 100_000


def test_limit_stops_before_the_next_ticket(tmp_path: Path, mapping: HistoryMapping) -> None:
    rows = [{"ticket": t, "at": at(i)} for i, t in enumerate(["A", "A", "B", "A", "C", "B"])]
    path = write_csv(tmp_path / "log.csv", rows)
    with HistoryReader(path, mapping, limit=2) as reader:
        got = [i.event.external.id for i in reader if i.event and i.event.external]
        assert reader.rows_read == 4
    assert got == ["A", "A", "B", "A"]


def test_a_column_the_file_lacks_is_refused_at_open(tmp_path: Path, mapping: HistoryMapping) -> None:
    path = tmp_path / "log.csv"
    path.write_text("ticket,at\nT1,1/3/2016 10:00\n")
    with pytest.raises(ConfigError) as caught:
        HistoryReader(path, mapping)
    assert "acme.yaml:6:3: column 'state' is not in the file (its columns: ticket, at)" in str(caught.value)


def test_jsonl_maps_like_csv(tmp_path: Path, mapping: HistoryMapping) -> None:
    rows = [{**BASE, "ticket": "T1", "at": at(0)}, {**BASE, "ticket": "T1", "at": at(3), "state": "Done"}]
    csv_events = events(read(write_csv(tmp_path / "log.csv", rows), mapping))
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    jsonl_events = events(read(path, mapping))
    assert [(e.type, e.occurred_at, e.fields) for e in jsonl_events] == [
        (e.type, e.occurred_at, e.fields) for e in csv_events
    ]
    assert [e.data["row"] for e in jsonl_events] == [1, 2]


def test_iso_times_keep_their_offset(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent("source: x\nid: id\ntime: {column: at}\n"))
    log = tmp_path / "log.csv"
    log.write_text("id,at\nA,2010-03-31T15:59:42+01:00\nB,2010-03-31T15:59:42\nC,2010-03-31T15:59:42Z\n")
    got = [e.occurred_at for e in events(read(log, load_mapping(str(path))))]
    assert got == [
        datetime(2010, 3, 31, 14, 59, 42, tzinfo=UTC),
        datetime(2010, 3, 31, 15, 59, 42, tzinfo=UTC),
        datetime(2010, 3, 31, 15, 59, 42, tzinfo=UTC),
    ]


@pytest.mark.parametrize("fmt", ["%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y", "%d.%m.%Y %H:%M"])
@pytest.mark.parametrize(
    "text",
    [
        "29/02/2016 01:16", "1/3/2016 9:05", "31/02/2016 10:00", "00/01/2016 10:00", "1/13/2016 10:00",
        "01/01/2016 24:00", "01/01/2016 10:60", " 1/01/2016 10:00", "01/01/2016  10:00",
        "2016-02-29 13:45:30", "2016-02-29 13:45:60", "2016-02-29 13:45:61", "02/29/2016", "29.02.2016 7:05",
        "x", "", "\u0661/\u0662/2016 1:05", "01/01/\u0662\u0660\u0661\u0666 10:00",  # other digits
    ],
)  # fmt: skip
def test_the_fast_time_reading_agrees_with_strptime(fmt: str, text: str) -> None:
    parse = time_parser(fmt, UTC)
    try:
        expected: datetime | None = datetime.strptime(text, fmt).replace(tzinfo=UTC)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            parse(text)
    else:
        assert parse(text) == expected
