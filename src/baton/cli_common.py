"""What every ``baton`` command module shares: consoles, the workspace option, settings and the
database context."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from baton.settings import Settings, load_settings
from baton.store.db import Database, open_database

__all__ = ["Workspace", "database", "err", "out", "settings_for"]

# Output that goes to a file or a CI log is read whole and searched, not seen on an 80-column
# screen: lines are never wrapped, and tables get room (COLUMNS, when set, still decides).
_PIPED_WIDTH = 240


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    piped = "COLUMNS" not in os.environ and not stream.isatty()
    return Console(stderr=stderr, soft_wrap=True, width=_PIPED_WIDTH if piped else None)


out = _console(stderr=False)
err = _console(stderr=True)

Workspace = Annotated[
    Path | None, typer.Option("--workspace", "-w", help="Workspace folder (BATON_WORKSPACE).")
]


def settings_for(workspace: Path | None) -> Settings:
    return load_settings(workspace=workspace)


@contextmanager
def database(settings: Settings, *, migrate: bool = False) -> Iterator[Database]:
    db = open_database(settings.resolved_database_url)
    try:
        if migrate:
            db.migrate()
        yield db
    finally:
        db.dispose()
