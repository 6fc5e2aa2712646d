"""Shared fixtures: real databases (SQLite files and PostgreSQL schemas), a fake clock, the example
policy. No mocks: the store tests run unchanged on both databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from baton.clock import FakeClock
from baton.engine.runtime import Engine
from baton.policy.loader import load_policy
from baton.policy.model import Policy
from baton.store.db import Database, open_database

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = ROOT / "examples" / "policy"
TEST_POLICY = ROOT / "tests" / "fixtures" / "policy"
PG_ADMIN_URL = os.environ.get("BATON_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


@pytest.fixture(autouse=True)
def _collector_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands tune the garbage collector for their own process (``tune_gc``: thresholds raised,
    everything alive frozen). Run inside a test worker they would do it for every later test of
    that worker; the processes the end-to-end tests start still tune theirs."""
    for module in ("baton.bootstrap", "baton.cli", "baton.demo"):
        monkeypatch.setattr(f"{module}.tune_gc", lambda: None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(TEST_POLICY)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'baton.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def engine(db: Database, policy: Policy, clock: FakeClock) -> Engine:
    return Engine(db=db, policy=policy, clock=clock)


def missing_data(*paths: Path) -> bool:
    """Whether real-data tests must be skipped: only outside CI. In CI (``CI=true``) shared/ is
    beside the clone, and a missing file must fail the run rather than skip tests quietly."""
    return not all(p.exists() for p in paths) and os.environ.get("CI") != "true"
