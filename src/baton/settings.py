"""The one place Baton reads its configuration (environment variables, then defaults).

Nothing else in Baton reads ``os.environ``; everything receives a :class:`Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

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
    circuit_failures_to_open: int = Field(
        default=5, ge=1, le=1_000, description="Transient failures in a row that open a connector's circuit."
    )
    circuit_cooldown_seconds: float = Field(
        default=30.0, gt=0, le=86_400, description="How long an open circuit waits before one trial send."
    )
    circuit_fallback_connector: str | None = Field(
        default=None,
        description="Where owners hear that a connector is down; default the policy's notify connector, "
        "else log. Never the connector that is down; log when this one is not configured.",
    )
    fake_connector_path: Path | None = Field(
        default=None, description="Where the fake connector records calls."
    )
    outbound_allow: str = Field(
        default="",
        description="Comma-separated hosts or CIDRs connectors may reach although they are not public "
        "(e.g. 127.0.0.1/32 for local stand-ins). Cloud metadata addresses are never reachable.",
    )
    http_connect_timeout: float = Field(default=5.0, gt=0, le=60, description="Connector DNS+connect limit.")
    http_read_timeout: float = Field(default=10.0, gt=0, le=120, description="Connector single-read limit.")
    http_total_timeout: float = Field(
        default=15.0, gt=0, le=300, description="Connector limit for a whole exchange; under the lease."
    )
    http_ca_file: Path | None = Field(default=None, description="PEM CA bundle connectors trust instead.")
    webhook_url: str | None = Field(default=None, description="Where the webhook connector POSTs.")
    webhook_secret: SecretStr | None = Field(default=None, description="whsec_... signing secret.")
    slack_token: SecretStr | None = Field(default=None, description="Slack bot token (xoxb-...).")
    slack_api_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL.")
    pagerduty_routing_key: SecretStr | None = Field(
        default=None, description="PagerDuty Events API v2 integration key."
    )
    pagerduty_service_keys: SecretStr | None = Field(
        default=None, description="Comma-separated service=integration-key pairs for PagerDuty."
    )
    pagerduty_events_url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue", description="PagerDuty Events API v2 URL."
    )
    jira_url: str | None = Field(
        default=None, description="Jira Cloud site, e.g. https://acme.atlassian.net."
    )
    jira_email: str | None = Field(default=None, description="Atlassian account e-mail for basic auth.")
    jira_api_token: SecretStr | None = Field(default=None, description="Atlassian API token.")
    jira_project: str | None = Field(default=None, description="Default Jira project key for new issues.")
    jira_search_settle_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3_600,
        description="A retried Jira create waits this long for search to catch up.",
    )
    linear_api_key: SecretStr | None = Field(default=None, description="Linear API key (lin_api_...).")
    linear_api_url: str = Field(default="https://api.linear.app/graphql", description="Linear GraphQL URL.")
    linear_team_id: str | None = Field(default=None, description="Default Linear team id for new issues.")
    zendesk_url: str | None = Field(default=None, description="Zendesk site, e.g. https://acme.zendesk.com.")
    zendesk_email: str | None = Field(default=None, description="Zendesk agent e-mail for API-token auth.")
    zendesk_api_token: SecretStr | None = Field(default=None, description="Zendesk API token.")
    zendesk_groups: str = Field(
        default="", description="Comma-separated team=group-id pairs: Baton teams as Zendesk groups."
    )
    salesforce_url: str | None = Field(
        default=None, description="Salesforce instance URL, e.g. https://acme.my.salesforce.com."
    )
    salesforce_access_token: SecretStr | None = Field(default=None, description="Salesforce OAuth token.")
    salesforce_api_version: str = Field(default="v61.0", description="Salesforce REST API version.")
    hubspot_access_token: SecretStr | None = Field(default=None, description="HubSpot private-app token.")
    hubspot_api_url: str = Field(default="https://api.hubapi.com", description="HubSpot API base URL.")
    hubspot_search_settle_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3_600,
        description="A retried HubSpot note waits this long for search to catch up.",
    )
    email_smtp_host: str | None = Field(default=None, description="Outbound SMTP server (email connector).")
    email_smtp_port: int = Field(default=587, ge=1, le=65_535, description="Outbound SMTP port.")
    email_smtp_username: str | None = Field(default=None, description="Outbound SMTP user.")
    email_smtp_password: SecretStr | None = Field(default=None, description="Outbound SMTP password.")
    email_smtp_security: str = Field(
        default="starttls", pattern="^(starttls|tls|none)$", description="starttls, tls or none."
    )
    email_from: str | None = Field(default=None, description="From address of outbound mail.")
    email_domain: str | None = Field(
        default=None, description="Domain of outbound Message-IDs (default: the From address's domain)."
    )
    log_level: str = Field(default="INFO")
    webhooks_file: Path | None = Field(
        default=None,
        description="YAML file of webhook sources (secrets, token header, rate limit); "
        "default <workspace>/webhooks.yaml. See docs/signals.md.",
    )
    max_json_array: int = Field(
        default=1_000, ge=1, le=1_000_000, description="Longest accepted JSON array in a webhook body."
    )
    attachment_dir: Path | None = Field(
        default=None, description="Where e-mail attachments are stored; default <workspace>/attachments."
    )
    email_max_message_bytes: int = Field(
        default=26_214_400, ge=1_024, description="Largest accepted e-mail message (SMTP SIZE, .eml, mbox)."
    )
    email_max_attachment_bytes: int = Field(
        default=10_485_760, ge=0, description="Largest attachment stored; larger ones are recorded only."
    )
    email_max_attachments_bytes: int = Field(
        default=26_214_400,
        ge=0,
        description="Most attachment bytes stored per message; the rest recorded only.",
    )
    email_keep_raw: bool = Field(default=True, description="Also store each message's raw bytes.")
    email_allowed_lists: str = Field(
        default="", description="Comma-separated List-Id values whose mail may open tickets."
    )
    smtp_host: str = Field(default="127.0.0.1", description="Address the SMTP receiver listens on.")
    smtp_port: int = Field(default=2525, ge=0, le=65_535, description="Port of the SMTP receiver.")
    smtp_recipients: str = Field(
        default="", description="Comma-separated addresses or @domains the receiver accepts (empty: any)."
    )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.workspace / 'baton.db').as_posix()}"

    @property
    def resolved_policy_dir(self) -> Path:
        return self.policy_dir or self.workspace / "policy"

    @property
    def resolved_accounts_file(self) -> Path:
        return self.accounts_file or self.workspace / "accounts.csv"

    @property
    def resolved_attachment_dir(self) -> Path:
        return self.attachment_dir or self.workspace / "attachments"


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
