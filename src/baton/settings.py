"""The one place Baton reads its configuration (environment variables, then defaults).

Nothing else in Baton reads ``os.environ``; everything receives a :class:`Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from baton.errors import ConfigError

__all__ = ["Settings", "load_settings"]

_PREFIX = "BATON_"


class Settings(BaseModel):
    """Runtime configuration. Every field maps to ``BATON_<FIELD>`` in upper case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workspace: Path = Field(
        default=Path(".baton"), description="Folder holding the SQLite file, policy and accounts."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite at <workspace>/baton.db."
    )
    policy_dir: Path | None = Field(default=None, description="Policy folder; default <workspace>/policy.")
    accounts_file: Path | None = Field(
        default=None, description="Accounts CSV; default <workspace>/accounts.csv."
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1_024, description="Largest accepted request body.")
    max_json_depth: int = Field(default=32, ge=2, le=200, description="Deepest accepted JSON nesting.")
    batch_max: int = Field(
        default=256, ge=1, le=10_000, description="Most events committed in one transaction."
    )
    batch_wait_ms: float = Field(default=2.0, ge=0, le=1_000, description="How long a batch waits to fill.")
    lease_seconds: float = Field(default=30.0, gt=0, description="How long a worker's claim lasts unrenewed.")
    worker_batch: int = Field(default=100, ge=1, le=10_000, description="Rows a worker claims at once.")
    poll_seconds: float = Field(default=0.2, gt=0, description="Worker idle poll interval.")
    max_attempts: int = Field(
        default=8, ge=1, description="Delivery attempts before an action is dead-lettered."
    )
    connectors: str = Field(default="log", description="Comma-separated connector names to enable.")
    fake_connector_path: Path | None = Field(
        default=None, description="Where the fake connector records calls."
    )
    log_level: str = Field(default="INFO")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.workspace / 'baton.db').as_posix()}"

    @property
    def resolved_policy_dir(self) -> Path:
        return self.policy_dir or self.workspace / "policy"

    @property
    def resolved_accounts_file(self) -> Path:
        return self.accounts_file or self.workspace / "accounts.csv"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from ``environ`` (default: the process environment) plus explicit overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name in Settings.model_fields:
        raw = env.get(_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_PREFIX}{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
