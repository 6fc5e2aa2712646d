"""API tokens with roles (capability Z1, first part).

A token is shown once at creation; only its SHA-256 is stored. Each endpoint names the permission
it needs, and each role grants a fixed set of permissions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from baton.errors import AuthError, InputError
from baton.store.schema import tokens

__all__ = ["PERMISSIONS", "ROLES", "Principal", "authenticate", "create_token"]

# viewer reads; agent also acts on tickets and posts events; approver also approves;
# admin may do everything; ingest is for machine senders that only post events.
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "ingest": frozenset({"ingest"}),
    "agent": frozenset({"read", "ingest", "act"}),
    "approver": frozenset({"read", "ingest", "act", "approve"}),
    "admin": frozenset({"read", "ingest", "act", "approve", "admin"}),
}
ROLES = tuple(PERMISSIONS)
_PREFIX = "bt_"


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: str

    def require(self, permission: str) -> None:
        if permission not in PERMISSIONS[self.role]:
            raise AuthError(f"role {self.role!r} may not {permission}", forbidden=True)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, *, role: str, name: str, now_ms: int) -> str:
    """Create a token and return it; it cannot be shown again."""
    if role not in PERMISSIONS:
        raise InputError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    token = _PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(tokens).values(
            id=secrets.token_hex(8), sha256=_digest(token), role=role, name=name[:128], created_ms=now_ms
        )
    )
    return token


def authenticate(conn: Connection, token: str | None) -> Principal:
    if not token:
        raise AuthError("missing bearer token")
    if not token.startswith(_PREFIX) or len(token) > 200:
        raise AuthError("invalid token")
    row = conn.execute(
        select(tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.revoked_ms).where(
            tokens.c.sha256 == _digest(token)
        )
    ).first()
    if row is None or row.revoked_ms is not None:
        raise AuthError("invalid token")
    return Principal(token_id=row.id, name=row.name, role=row.role)
