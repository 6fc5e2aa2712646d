"""Account context from a CSV file (capability E1, first source).

Columns: ``id`` (required), ``name, plan, mrr, renewal_date (YYYY-MM-DD), health, csm, ae,
flags`` and ``domains`` (both ``;``-separated). Rows that do not parse are reported with their line
number and skipped; the rest load.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from baton.errors import InputError
from baton.model import Account, load

__all__ = ["AccountRow", "read_accounts_csv"]

MAX_FILE_BYTES = 200 * 1024 * 1024
_LIST_FIELDS = ("flags", "domains")


@dataclass(frozen=True)
class AccountRow:
    line: int
    account: Account | None
    error: str | None = None


def read_accounts_csv(path: Path) -> Iterator[AccountRow]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "id" not in reader.fieldnames:
            raise InputError(f"{path}:1: the header must name an 'id' column")
        for row in reader:
            line = reader.line_num
            if None in row:
                yield AccountRow(line, None, "more cells than header columns")
                continue
            data: dict[str, object] = {k: v.strip() for k, v in row.items() if k and v and v.strip()}
            for name in _LIST_FIELDS:
                if name in data:
                    data[name] = tuple(p.strip() for p in str(data[name]).split(";") if p.strip())
            try:
                yield AccountRow(line, load(Account, data))
            except ValidationError as exc:
                problem = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                yield AccountRow(line, None, problem)
