"""Opening the database: SQLite (embedded default, WAL, ``synchronous=FULL``) or PostgreSQL.

SQLite writers begin with ``BEGIN IMMEDIATE`` so two processes never both hold a read snapshot
and then fight to upgrade it to a write lock (the classic SQLITE_BUSY deadlock); readers use a
second engine with deferred transactions so dashboards never wait on the write lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from baton.errors import ConfigError
from baton.model import JsonText, to_json

__all__ = ["Database", "after_commit", "open_database"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_AFTER_COMMIT = "baton.after_commit"


def after_commit(conn: Connection, hook: Callable[[], None]) -> bool:
    """Run ``hook`` once the transaction of ``conn`` (opened by :meth:`Database.write`) has
    committed; False, and the hook is dropped, when ``conn`` is not in such a transaction or is
    inside a savepoint (which may be rolled back while the transaction still commits)."""
    hooks = conn.info.get(_AFTER_COMMIT)
    if hooks is None or conn.in_nested_transaction():
        return False
    hooks.append(hook)
    return True


@dataclass(frozen=True)
class Database:
    """A writer engine and a reader engine over one database (the same engine on PostgreSQL)."""

    url: str
    writer: Engine
    reader: Engine
    # SQLite has one writer at a time. Threads of one process (the API's batcher, the worker) queue
    # on this lock instead of polling SQLite's busy handler, which sleeps in growing steps.
    _write_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on error. Callbacks passed to
        :func:`after_commit` on the connection run once the commit has succeeded, never after a
        rollback."""
        hooks: list[Callable[[], None]] = []
        lock: AbstractContextManager[object] = nullcontext() if self.is_postgres else self._write_lock
        with lock, self.writer.begin() as conn:
            # info belongs to the pooled DBAPI connection: never leave the hooks for its next user.
            # Taken once: after a lost connection, conn.info itself raises, and that must not hide
            # the error that ended the transaction.
            info = conn.info
            info[_AFTER_COMMIT] = hooks
            try:
                yield conn
            finally:
                info.pop(_AFTER_COMMIT, None)
        for hook in hooks:
            hook()

    @property
    def is_postgres(self) -> bool:
        return self.writer.dialect.name == "postgresql"

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self.writer.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def table_names(self) -> list[str]:
        return sorted(inspect(self.reader).get_table_names())

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()


def _json_dumps(value: Any) -> str:
    # orjson: several times faster than json.dumps on the hot path (every event writes JSON columns).
    if value.__class__ is JsonText:
        return cast(str, value)
    return to_json(value).decode()


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(
        url,
        poolclass=NullPool if ":memory:" in url else None,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from the driver; we emit BEGIN ourselves below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def open_database(url: str) -> Database:
    """Open ``url``; a relative SQLite path's folder is created if missing."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError and ValueError for bad URLs
        raise ConfigError(f"invalid database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return Database(
            url=url,
            writer=_sqlite_engine(url, immediate=True),
            reader=_sqlite_engine(url, immediate=False),
        )
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(
            parsed,
            pool_size=8,
            max_overflow=8,
            pool_pre_ping=True,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
        )
        return Database(url=url, writer=engine, reader=engine)
    raise ConfigError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
