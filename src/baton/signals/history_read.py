"""Reading exported logs row by row: CSV or JSONL, plain or gzip-compressed, in constant memory.

Each row comes out as a :class:`SourceRow` numbered by the file line it starts on (a CSV header
is line 1), with its values by column name, or with the reason it cannot be read: a wrong number
of columns, a field over the CSV field limit, bytes that are not UTF-8, a line that is not a JSON
object. A damaged file (truncated or corrupt gzip) ends the rows with one last error.

Gzip is recognised by its magic bytes, not by the file name; the format is the mapping's, or is
guessed from the name (``.jsonl``/``.ndjson``, optionally followed by ``.gz``, is JSONL).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

import orjson

from baton.errors import InputError

__all__ = ["HistoryFile", "SourceRow", "guess_format"]

MAX_LINE_BYTES = 1 << 20  # a JSONL line longer than this is skipped without being held whole
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of undecodable bytes


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One row of the file: ``values`` by column, or ``error``. ``digest`` identifies the row's
    content (the same bytes give the same digest, wherever the row is in the file)."""

    number: int
    values: dict[str, str] | None
    digest: str = ""
    error: str | None = None


def guess_format(path: Path) -> Literal["csv", "jsonl"]:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return "jsonl" if suffixes and suffixes[-1] in (".jsonl", ".ndjson", ".json") else "csv"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()


class HistoryFile:
    """An open history file. Use as a context manager; iterate :meth:`rows`. ``position`` is how
    far into the file (in its bytes as stored, compressed or not) reading has got."""

    def __init__(self, path: Path, *, fmt: Literal["auto", "csv", "jsonl"] = "auto", delimiter: str = ","):
        self.path = path
        self.format = guess_format(path) if fmt == "auto" else fmt
        self.delimiter = delimiter
        self.header: list[str] | None = None
        try:
            self._raw: IO[bytes] = path.open("rb")
            self.size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or exc}") from None
        magic = self._raw.read(2)
        self._raw.seek(0)
        self.compressed = magic == b"\x1f\x8b"
        self._binary: IO[bytes] | gzip.GzipFile = (
            gzip.GzipFile(fileobj=self._raw, mode="rb") if self.compressed else self._raw
        )
        self._text: io.TextIOWrapper | None = None
        if self.format == "csv":
            try:
                self._read_header()
            except BaseException:
                self.close()
                raise

    @property
    def position(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        if self._text is not None:
            self._text.close()  # closes the stream under it too
        if self._binary is not self._raw:
            self._binary.close()
        self._raw.close()

    def __enter__(self) -> HistoryFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def rows(self) -> Iterator[SourceRow]:
        """Every row in file order. A damaged file ends with an error row instead of raising."""
        reader = self._csv_rows() if self.format == "csv" else self._jsonl_rows()
        last = 0
        try:
            for row in reader:
                last = row.number
                yield row
        except (EOFError, zlib.error, OSError) as exc:  # gzip.BadGzipFile is an OSError
            yield SourceRow(last + 1, None, error=f"the file cannot be read past here: {exc}")

    def cells(self, columns: Sequence[str]) -> Iterator[tuple[int, tuple[str, ...] | None]]:
        """``(number, values of columns)`` for each row of :meth:`rows`, in file order, or
        ``(number, None)`` for a row it reports as an error; a column the file lacks reads as "".
        For a pass that needs a few columns of every row: CSV rows are neither built into dicts
        nor digested."""
        if self.format != "csv":
            for row in self.rows():
                values = row.values
                yield row.number, None if values is None else tuple(values.get(c, "") for c in columns)
            return
        last = 0
        try:
            for number, cells in self._csv_cells(columns):
                last = number
                yield number, cells
        except (EOFError, zlib.error, OSError):  # as rows(): a damaged file ends with an error row
            yield last + 1, None

    # -- CSV ---------------------------------------------------------------------------------

    def _csv_cells(self, columns: Sequence[str]) -> Iterator[tuple[int, tuple[str, ...] | None]]:
        """What _csv_rows checks, row by row, keeping only ``columns``."""
        reader, header = self._reader, self.header or []
        width = len(header)
        where = {name: i for i, name in enumerate(header)}
        picks = [where.get(c, width) for c in columns]  # index ``width`` is the "" appended below
        not_utf8 = _NOT_UTF8.search
        while width:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield start, None
                continue
            if not record:
                continue  # a blank line
            if len(record) != width or not_utf8("\x1f".join(record)):
                yield start, None
            else:
                record.append("")
                yield start, tuple([record[i] for i in picks])

    def _read_header(self) -> None:
        self._text = io.TextIOWrapper(
            self._binary, encoding="utf-8-sig", errors="surrogateescape", newline=""
        )
        self._reader = csv.reader(self._text, delimiter=self.delimiter)
        try:
            record = next((r for r in self._reader if r), None)
        except (csv.Error, EOFError, zlib.error, OSError) as exc:
            raise InputError(f"{self.path}: cannot read the header: {exc}") from None
        if record is None:
            self.header = []
            return
        if _NOT_UTF8.search("".join(record)):
            raise InputError(f"{self.path}: the header is not UTF-8")
        header = [name.strip() for name in record]
        repeated = sorted({n for n in header if header.count(n) > 1})
        if repeated:
            raise InputError(f"{self.path}: the header repeats column(s) {', '.join(map(repr, repeated))}")
        self.header = header

    def _csv_rows(self) -> Iterator[SourceRow]:
        reader, header = self._reader, self.header or []
        width = len(header)
        while width:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield SourceRow(start, None, error=f"unreadable CSV: {exc}")
                continue
            if not record:
                continue  # a blank line
            joined = "\x1f".join(record)
            if len(record) != width:
                yield SourceRow(start, None, error=f"expected {width} columns, found {len(record)}")
            elif _NOT_UTF8.search(joined):
                yield SourceRow(start, None, error="not valid UTF-8")
            else:
                yield SourceRow(start, dict(zip(header, record, strict=True)), _digest(joined))

    # -- JSONL -------------------------------------------------------------------------------

    def _jsonl_rows(self) -> Iterator[SourceRow]:
        number = 0
        handle = self._binary
        while True:
            line = handle.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # drain the rest of the long line
                    line = handle.readline(1 << 20)
                yield SourceRow(number, None, error=f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            line = line.strip()
            if not line:
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield SourceRow(number, None, error=f"malformed JSON: {exc}")
                continue
            if not isinstance(data, dict):
                yield SourceRow(number, None, error="a row is a JSON object")
                continue
            yield SourceRow(number, {str(k): _text(v) for k, v in data.items()}, _digest(line.decode()))


def _text(value: object) -> str:
    """A JSON value as the text a CSV cell would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()
