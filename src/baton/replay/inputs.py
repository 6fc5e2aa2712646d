"""What a replay reads besides the policy: the mapping of its history file, and account context."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from baton.enrich.accounts import read_accounts_csv
from baton.errors import ConfigError, InputError
from baton.model import Account
from baton.signals.history_mapping import BUILTIN_MAPPINGS, HistoryMapping, load_mapping
from baton.signals.history_read import HistoryFile

__all__ = ["pick_mapping", "read_accounts"]


def pick_mapping(history: Path, name: str | None) -> HistoryMapping:
    """The mapping called ``name``; without one, the built-in mapping whose columns the file has.

    Raises :class:`ConfigError` when none fits (or several do), :class:`InputError` when the file
    cannot be read.
    """
    if name is not None:
        return load_mapping(name)
    fitting: list[HistoryMapping] = []
    for builtin in BUILTIN_MAPPINGS:
        mapping = load_mapping(builtin)
        with HistoryFile(history, fmt=mapping.doc.format, delimiter=mapping.doc.delimiter) as source:
            header = source.header
        if header and not mapping.check_header(header):
            fitting.append(mapping)
    if len(fitting) != 1:
        found = ", ".join(m.name for m in fitting) or "none"
        raise ConfigError(
            f"{history}: name the mapping with --mapping ({', '.join(BUILTIN_MAPPINGS)} or a YAML file); "
            f"built-in mappings whose columns the file has: {found}"
        )
    return fitting[0]


def read_accounts(path: Path, *, on_error: Callable[[int, str], None]) -> dict[str, Account]:
    """Accounts from a CSV file (``baton accounts load``'s format) by id; bad lines are reported
    through ``on_error(line, reason)`` and skipped."""
    try:
        rows = list(read_accounts_csv(path))
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
    found: dict[str, Account] = {}
    for row in rows:
        if row.account is None:
            on_error(row.line, row.error or "unusable row")
        else:
            found[row.account.id] = row.account
    return found
