"""Policy versions in the store: activation, history, rollback, and pinned older versions.

Activating a policy records its files under its content hash and appends a ``policy.activated``
audit entry (who, which version, replacing which). A ticket's SLA clocks and escalations carry
the version that started them; :class:`PolicySet` hands ``decide`` that version for their timers,
so editing the policy never changes an escalation already under way.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, func, insert, select, update

from baton import audit
from baton.audit import AuditRecord
from baton.clock import to_ms
from baton.errors import NotFoundError
from baton.policy.compiler import compile_files, policy_version
from baton.policy.model import Policy
from baton.store.schema import policies

__all__ = ["PolicySet", "activate", "active_version", "history", "load_version"]


def _encode(files: dict[str, bytes]) -> dict[str, str]:
    return {name: base64.b64encode(raw).decode() for name, raw in files.items()}


def _decode(stored: dict[str, str]) -> dict[str, bytes]:
    return {name: base64.b64decode(text) for name, text in stored.items()}


def active_version(conn: Connection) -> str | None:
    row = conn.execute(
        select(policies.c.version)
        .where(policies.c.activated_ms.is_not(None))
        .order_by(policies.c.activated_ms.desc())
        .limit(1)
    ).first()
    return None if row is None else str(row.version)


def activate(
    conn: Connection, *, files: dict[str, bytes], name: str, actor: str, at: datetime, is_postgres: bool
) -> tuple[str, bool]:
    """Make these files the active policy; returns (version, whether anything changed).

    Several processes may start at once with the same folder: on PostgreSQL the audit head lock
    orders them, so the first activates and the others find it already active."""
    if is_postgres:
        audit.lock_head(conn)
    version = policy_version(files)
    previous = active_version(conn)
    if previous == version:
        return version, False
    exists = conn.execute(select(policies.c.version).where(policies.c.version == version)).first()
    if exists is None:
        conn.execute(
            insert(policies).values(version=version, name=name, files=_encode(files), created_ms=to_ms(at))
        )
    # The newest activation is the active one: stamp it after every earlier one even when this
    # machine's clock is behind the one that made the last activation.
    latest = conn.execute(select(func.max(policies.c.activated_ms))).scalar()
    at_ms = max(to_ms(at), int(latest) + 1) if latest is not None else to_ms(at)
    conn.execute(
        update(policies)
        .where(policies.c.version == version)
        .values(activated_ms=at_ms, activated_by=actor[:128])
    )
    audit.append(
        conn,
        [
            AuditRecord(
                "policy.activated",
                None,
                at,
                {"version": version, "name": name, "actor": actor, "replaces": previous},
            )
        ],
        is_postgres=is_postgres,
    )
    return version, True


def load_version(conn: Connection, version: str) -> Policy:
    row = conn.execute(select(policies.c.files).where(policies.c.version == version)).first()
    if row is None:
        raise NotFoundError(f"no stored policy version {version!r}")
    return compile_files(_decode(row.files), root=Path(f"policy@{version}"))


def stored_files(conn: Connection, version: str) -> dict[str, bytes]:
    row = conn.execute(select(policies.c.files).where(policies.c.version == version)).first()
    if row is None:
        raise NotFoundError(f"no stored policy version {version!r}")
    return _decode(row.files)


def history(conn: Connection) -> list[dict[str, object]]:
    rows = conn.execute(select(policies).order_by(policies.c.created_ms))
    return [
        {
            "version": r.version,
            "name": r.name,
            "created_ms": r.created_ms,
            "activated_ms": r.activated_ms,
            "activated_by": r.activated_by,
        }
        for r in rows
    ]


@dataclass
class PolicySet:
    """The active policy plus older versions that running escalations still use, loaded lazily."""

    current: Policy
    older: dict[str, Policy] = field(default_factory=dict)

    def version(self, conn: Connection, version: str | None) -> Policy:
        if version is None or version == self.current.version:
            return self.current
        if version not in self.older:
            try:
                self.older[version] = load_version(conn, version)
            except NotFoundError:
                return self.current  # a version from before versions were stored: the current one decides
        return self.older[version]
