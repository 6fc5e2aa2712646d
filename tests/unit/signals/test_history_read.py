"""Reading exported logs: CSV and JSONL, plain or gzip, numbered by file line, bad rows reported."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from baton.errors import InputError
from baton.signals.history_read import MAX_LINE_BYTES, HistoryFile, SourceRow, guess_format


def rows_of(path: Path, *, delimiter: str = ",") -> list[SourceRow]:
    with HistoryFile(path, delimiter=delimiter) as f:
        return list(f.rows())


def summary(rows: list[SourceRow]) -> list[tuple[int, str]]:
    """(line, first value or error) per row: a compact picture of what was read."""
    return [(r.number, r.error or next(iter((r.values or {"": ""}).values()))) for r in rows]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("log.csv", "csv"),
        ("log.csv.gz", "csv"),
        ("export.jsonl", "jsonl"),
        ("export.ndjson.gz", "jsonl"),
        ("export.JSONL.GZ", "jsonl"),
        ("log", "csv"),
    ],
)
def test_the_format_is_guessed_from_the_name(name: str, expected: str) -> None:
    assert guess_format(Path(name)) == expected


def test_csv_rows_are_numbered_by_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text('id,text\n1,plain\n\n2,"two\nlines"\n3,after\n', newline="")
    rows = rows_of(path)
    assert summary(rows) == [(2, "1"), (4, "2"), (6, "3")]
    assert rows[1].values == {"id": "2", "text": "two\nlines"}


def test_gzip_is_recognised_by_its_bytes_and_a_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "log.data"  # no .gz in the name
    with gzip.open(path, "wt", encoding="utf-8-sig", newline="") as f:
        f.write("id,at\r\nA,2016\r\n")
    with HistoryFile(path) as f:
        assert f.compressed and f.header == ["id", "at"]
        assert [r.values for r in f.rows()] == [{"id": "A", "at": "2016"}]
        assert f.position == f.size


def test_the_same_content_has_the_same_digest_wherever_it_is(tmp_path: Path) -> None:
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text("id,v\nA,1\nB,2\n")
    two.write_text("id,v\nB,2\nA,1\nA,3\n")
    first, second = rows_of(one), rows_of(two)
    assert first[0].digest == second[1].digest and first[1].digest == second[0].digest
    assert len({r.digest for r in second}) == 3


def test_bad_csv_rows_are_reported_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    big = "x" * 200_000
    path.write_bytes(
        b"id,v\n"
        b"1,ok\n"
        b"2,too,many\n"
        b"3\n" + f'4,"{big}"\n'.encode() + b"5,caf\xe9\n"  # Latin-1, not UTF-8
        b"6,fine\n"
    )
    assert summary(rows_of(path)) == [
        (2, "1"),
        (3, "expected 2 columns, found 3"),
        (4, "expected 2 columns, found 1"),
        (5, "unreadable CSV: field larger than field limit (131072)"),
        (6, "not valid UTF-8"),
        (7, "6"),
    ]


def test_another_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("id;v\nA;1,5\n")
    assert [r.values for r in rows_of(path, delimiter=";")] == [{"id": "A", "v": "1,5"}]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"id,v,id\n", "the header repeats column(s) 'id'"),
        (b"id,caf\xe9,x\n", "the header is not UTF-8"),
        (b'id,"' + b"v" * 200_000 + b'"\n', "cannot read the header: field larger than field limit"),
    ],
)
def test_a_bad_header_is_refused(tmp_path: Path, header: bytes, message: str) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(header + b"1,2,3\n")
    with pytest.raises(InputError, match=re.escape(message)):
        HistoryFile(path)


def test_an_empty_file_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("")
    with HistoryFile(path) as f:
        assert f.header == [] and list(f.rows()) == []


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No such file"):
        HistoryFile(tmp_path / "nope.csv")


def test_a_truncated_gzip_ends_with_an_error_row(tmp_path: Path) -> None:
    whole = gzip.compress(("id,v\n" + "".join(f"{i},{i * 7919 % 1000}\n" for i in range(20_000))).encode())
    path = tmp_path / "log.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    rows = rows_of(path)
    assert all(r.values for r in rows[:-1]) and len(rows) > 100
    assert rows[-1].values is None and rows[-1].error is not None
    assert rows[-1].error.startswith("the file cannot be read past here")


def test_jsonl_rows(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    lines = [
        json.dumps({"id": "A", "n": 3, "ok": True, "none": None, "tags": ["x"]}),
        "",
        "{broken",
        "[1, 2]",
        json.dumps({"id": "B"}),
    ]
    path.write_text("\ufeff" + "\n".join(lines) + "\n")
    rows = rows_of(path)
    assert summary(rows) == [
        (1, "A"),
        (3, rows[1].error or ""),
        (4, "a row is a JSON object"),
        (5, "B"),
    ]
    assert rows[0].values == {"id": "A", "n": "3", "ok": "true", "none": "", "tags": '["x"]'}
    assert rows[1].error is not None and rows[1].error.startswith("malformed JSON")


def test_an_overlong_jsonl_line_is_skipped_without_being_held(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"id": "A", "body": "x" * (MAX_LINE_BYTES + 10)}) + "\n")
        f.write(json.dumps({"id": "B"}) + "\n")
    assert summary(rows_of(path)) == [(1, f"line longer than {MAX_LINE_BYTES} bytes"), (2, "B")]


def _cells_of(path: Path, columns: tuple[str, ...]) -> list[tuple[int, tuple[str, ...] | None]]:
    with HistoryFile(path) as f:
        return list(f.cells(columns))


def _cells_from_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, tuple[str, ...] | None]]:
    return [
        (r.number, None if r.values is None else tuple(r.values.get(c, "") for c in columns))
        for r in rows_of(path)
    ]


def test_cells_are_the_rows_columns_line_for_line(tmp_path: Path) -> None:
    csv_path, jsonl_path, gz_path = tmp_path / "log.csv", tmp_path / "log.jsonl", tmp_path / "log.csv.gz"
    csv_path.write_bytes(
        b"id,v,w\n1,ok,a\n2,too,many,x\n\n3\n" + f'4,"{"x" * 200_000}",b\n'.encode() + b"5,caf\xe9,c\n"
        b'6,"two\nlines",d\n7,fine,e\n'
    )
    jsonl_path.write_text('{"id": "A", "v": 3}\n{broken\n\n{"id": "B", "w": null}\n')
    whole = gzip.compress(("id,v\n" + "".join(f"{i},{i * 7919 % 1000}\n" for i in range(20_000))).encode())
    gz_path.write_bytes(whole[: len(whole) // 2])
    for path in (csv_path, jsonl_path, gz_path):
        for columns in (("id", "w"), ("v", "missing", "id", "v"), ()):
            assert _cells_of(path, columns) == _cells_from_rows(path, columns), (path.name, columns)
