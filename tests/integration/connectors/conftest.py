"""The vendor stand-ins as fixtures for every connector integration test, and ``sqlite_db``: one
SQLite database for the tests about connectors' outcomes, where the database is not the subject."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from baton.store.db import Database, open_database
from tests.conftest import sqlite_url
from tests.standins.fixtures import pagerduty_standin, slack_standin, webhook_standin

__all__ = ["pagerduty_standin", "slack_standin", "sqlite_db", "webhook_standin"]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(sqlite_url(tmp_path))
    database.migrate()
    yield database
    database.dispose()
