"""What every ``baton`` command module shares: consoles, the workspace option, settings and the
database context."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from baton.settings import Settings, load_settings
from baton.store.db import Database, open_database

__all__ = ["Workspace", "database", "err", "out", "settings_for"]

out = Console()
err = Console(stderr=True, soft_wrap=True)

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
