"""The database schema (SQLAlchemy Core). Instants are stored as integer milliseconds since the
epoch (UTC): sortable, index-friendly and identical on SQLite and PostgreSQL.

Migrations in ``migrations/versions`` create exactly these tables; a test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "account_domains",
    "accounts",
    "audit_head",
    "audit_log",
    "connector_state",
    "decisions",
    "echoes",
    "events",
    "external_links",
    "metadata",
    "outbox",
    "policies",
    "sent_log",
    "tickets",
    "timers",
    "tokens",
]

metadata = MetaData()

# JSON on SQLite, JSONB on PostgreSQL.
Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only makes an auto-increment rowid of a column typed exactly INTEGER.
Serial = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("event_id", String(256), nullable=False),
    Column("ticket_id", String(128), nullable=False),
    Column("type", String(64), nullable=False),
    Column("occurred_ms", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("body", Json, nullable=False),
    UniqueConstraint("source", "event_id", name="uq_events_source_event_id"),
)
Index("ix_events_ticket", events.c.ticket_id, events.c.seq)

tickets = Table(
    "tickets",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("stage", String(32), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("tier", String(64)),
    Column("queue", String(128)),
    Column("owner_role", String(128)),
    Column("owner_person", String(128)),
    Column("account_id", String(256)),
    Column("subject", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("state", Json, nullable=False),
)
Index("ix_tickets_updated", tickets.c.updated_ms)
Index("ix_tickets_stage", tickets.c.stage)

external_links = Table(
    "external_links",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("external_id", String(256), primary_key=True),
    Column("ticket_id", String(128), nullable=False),
    Column("url", Text),
)
Index("ix_external_links_ticket", external_links.c.ticket_id)

decisions = Table(
    "decisions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("ticket_id", String(128), nullable=False),
    Column("event_seq", BigInteger, nullable=False),
    Column("policy_version", String(128), nullable=False),
    Column("decided_ms", BigInteger, nullable=False),
    Column("body", Json, nullable=False),
)
Index("ix_decisions_ticket", decisions.c.ticket_id, decisions.c.decided_ms)

# The outbox: actions waiting to leave. ``status`` is pending -> claimed -> done | dead | cancelled.
# A claim is a lease: ``claimed_until`` passing without completion hands the row back.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("ticket_id", String(128), nullable=False),
    Column("decision_id", String(128), nullable=False),
    Column("action_name", String(128), nullable=False),
    Column("connector", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("params", Json, nullable=False),
    Column("status", String(32), nullable=False),
    # attempts: times claimed for sending (a claim cut short by a crash may have sent it);
    # failures: sends that failed and were recorded, which is what the dead-letter limit counts.
    Column("attempts", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0, server_default="0"),
    Column("available_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("claimed_by", String(128)),
    Column("claimed_until_ms", BigInteger),
    Column("last_error", Text),
    Column("rule", String(160)),
    Column("author", String(128)),
)
Index("ix_outbox_status_available", outbox.c.status, outbox.c.available_ms, outbox.c.id)
Index("ix_outbox_ticket", outbox.c.ticket_id, outbox.c.id)

# What left: written in the same transaction that marks the outbox row done, checked before sending.
sent_log = Table(
    "sent_log",
    metadata,
    Column("idempotency_key", String(64), primary_key=True),
    Column("connector", String(64), nullable=False),
    Column("kind", String(64), nullable=False, server_default=""),
    Column("sent_ms", BigInteger, nullable=False),
    Column("result", Json, nullable=False),
)
# Rate limits count the window by kind, by connector, or by both (migration 0009).
Index("ix_sent_log_connector", sent_log.c.connector, sent_log.c.sent_ms)

timers = Table(
    "timers",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("ticket_id", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("due_ms", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("data", Json, nullable=False),
    Column("claimed_by", String(128)),
    Column("claimed_until_ms", BigInteger),
    Column("fired_ms", BigInteger),
)
Index("ix_timers_status_due", timers.c.status, timers.c.due_ms)
# Equality on all three columns makes the planner prefer this index for cancellations over the
# (status, due) one, which would scan every pending timer.
Index("ix_timers_ticket_name", timers.c.ticket_id, timers.c.name, timers.c.status)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("ticket_id", String(128)),
    # The exact canonical JSON that was hashed; kept as text so verification hashes the same bytes.
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_ticket", audit_log.c.ticket_id, audit_log.c.seq)

# One row: the chain head. Appending locks it, which orders every writer behind one head.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

Index("ix_sent_log_kind", sent_log.c.kind, sent_log.c.sent_ms)

# Every policy version that has been active, with its files, so a running escalation can keep
# the version it started with and an older version can be reactivated (rollback).
policies = Table(
    "policies",
    metadata,
    Column("version", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("files", Json, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("activated_ms", BigInteger),
    Column("activated_by", String(128)),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(256), primary_key=True),
    Column("body", Json, nullable=False),
)

# One circuit per connector (see engine/breaker.py): closed, or open until a time; ``opened_ms``
# is when the current outage began (its owners are told once per outage).
connector_state = Table(
    "connector_state",
    metadata,
    Column("connector", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("open_until_ms", BigInteger),
    Column("updated_ms", BigInteger, nullable=False),
    Column("opened_ms", BigInteger),
)

# What connectors wrote to linked items (see engine/decide_sync.py): a webhook that reports these
# values back is Baton's own change returning, not news. Rows expire; a matched row is consumed.
echoes = Table(
    "echoes",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("system", String(64), nullable=False),
    Column("external_id", String(256), nullable=False),
    Column("field", String(32), nullable=False),
    Column("value", String(256), nullable=False),
    Column("ticket_id", String(128), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
Index("ix_echoes_item", echoes.c.system, echoes.c.external_id)

# Which account an e-mail domain belongs to (filled from accounts' ``domains``).
account_domains = Table(
    "account_domains",
    metadata,
    Column("domain", String(255), primary_key=True),
    Column("account_id", String(256), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
)
