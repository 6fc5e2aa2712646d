"""Configuration of the HTTP connectors: one frozen Pydantic model per connector.

Secrets are :class:`pydantic.SecretStr`, so they print as ``**********`` in reprs, logs and
validation errors; only the code that puts them on the wire calls ``get_secret_value()``.
The models are built from :class:`baton.settings.Settings` by each connector's ``from_settings``
(settings stay the one place configuration is read); tests build them directly.

Turning a :class:`pydantic.ValidationError` into a :class:`~baton.errors.ConfigError` goes through
:func:`config_error`, which keeps the location and message of each problem and drops the input
value, because for a secret field that value *is* the secret.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from baton.errors import ConfigError, ConnectorError
from baton.settings import Settings

__all__ = [
    "HttpConfig",
    "PagerDutyConfig",
    "SlackConfig",
    "WebhookConfig",
    "config_error",
    "configured",
    "http_config",
    "parse_service_keys",
]

_HOST = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")


class HttpConfig(BaseModel):
    """How connectors talk HTTP: time limits, size limits and where they may connect.

    ``allow`` lists what outbound requests may reach although it is not public: an IP address or
    CIDR (``127.0.0.1``, ``10.20.0.0/16``, ``fd00::/8``) allows those addresses whatever name led
    to them; a host name (``hooks.internal.example``, or ``*.internal.example`` for its
    subdomains) trusts DNS for that name. Cloud metadata addresses are refused even when allowed.
    Plain ``http://`` is only used towards allowed hosts; everything else must be ``https://``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds for DNS and TCP/TLS connect."
    )
    read_timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds any single read may wait.")
    total_timeout: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="Hard limit in seconds for a whole exchange (every network call is cut to what is "
        "left of it); shorter than the outbox lease.",
    )
    max_response_bytes: int = Field(default=1_048_576, ge=1_024, description="Response bytes kept.")
    max_retry_after: float = Field(
        default=3_600.0,
        gt=0,
        description="Longest Retry-After honoured, in seconds; longer hints are capped (the outbox "
        "adds up to a tenth, 30 s at most, of jitter on top).",
    )
    allow: tuple[str, ...] = Field(default=(), description="Private hosts or CIDRs that may be reached.")
    ca_file: Path | None = Field(default=None, description="PEM bundle to trust instead of the default CAs.")
    user_agent: str = Field(default="baton-connector/0.1", min_length=1, max_length=200)

    @field_validator("allow")
    @classmethod
    def _entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned: list[str] = []
        for entry in value:
            entry = entry.strip().lower().rstrip(".")
            try:
                cleaned.append(str(ipaddress.ip_network(entry, strict=False)))
                continue
            except ValueError:
                pass
            if not _HOST.match(entry):
                raise ValueError(f"{entry!r} is neither an IP address, a CIDR nor a host name")
            cleaned.append(entry)
        return tuple(cleaned)

    @model_validator(mode="after")
    def _total_covers_connect(self) -> HttpConfig:
        if self.total_timeout < self.connect_timeout:
            raise ValueError("total_timeout must be at least connect_timeout")
        return self


def _url(value: str) -> str:
    """A base URL: http(s), a host, no credentials. Where it may connect is checked when used."""
    import httpx  # local: keeps importing the models cheap for code that never sends

    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http:// or https:// URL with a host")
    if url.userinfo:
        raise ValueError("must not carry credentials; use the connector's secret fields")
    return value


class WebhookConfig(BaseModel):
    """A generic signed webhook (https://www.standardwebhooks.com/)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="Where every action is POSTed.")
    secret: SecretStr = Field(description="Signing secret: whsec_ followed by 24 to 64 base64 bytes.")
    http: HttpConfig = Field(default_factory=HttpConfig)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _url(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        signing_key(value)  # raises ValueError with a message that never contains the secret
        return value

    def signing_key(self) -> bytes:
        return signing_key(self.secret)


def signing_key(secret: SecretStr) -> bytes:
    """The HMAC key inside a ``whsec_`` secret. The spec asks for 24 to 64 random bytes."""
    raw = secret.get_secret_value()
    if not raw.startswith("whsec_"):
        raise ValueError("must start with 'whsec_'")
    try:
        key = base64.b64decode(raw[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be 'whsec_' followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("must encode between 24 and 64 bytes")
    return key


class SlackConfig(BaseModel):
    """Slack Web API with a bot token (https://docs.slack.dev/apis/web-api/)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr = Field(description="Bot token (xoxb-...).")
    api_url: str = Field(default="https://slack.com/api/", description="Base URL of the Web API.")
    private_channels: bool = Field(default=True, description="Create incident channels as private.")
    channel_prefix: str = Field(default="inc-", pattern=r"^[a-z0-9_-]{0,20}$")
    http: HttpConfig = Field(default_factory=HttpConfig)

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _url(value)

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value


class PagerDutyConfig(BaseModel):
    """PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/overview/).

    ``routing_key`` is the integration key used when an action names no service, or a service
    without a key of its own in ``service_keys``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    routing_key: SecretStr | None = None
    service_keys: dict[str, SecretStr] = Field(default_factory=dict)
    events_url: str = Field(default="https://events.pagerduty.com/v2/enqueue")
    source: str = Field(default="baton", min_length=1, max_length=255)
    http: HttpConfig = Field(default_factory=HttpConfig)

    @field_validator("events_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _url(value)

    @model_validator(mode="after")
    def _some_key(self) -> PagerDutyConfig:
        if self.routing_key is None and not self.service_keys:
            raise ValueError("needs a routing_key or at least one service key")
        return self


def parse_service_keys(raw: SecretStr | None) -> dict[str, SecretStr]:
    """``service=key,service=key`` (how one environment variable carries several keys)."""
    if raw is None:
        return {}
    keys: dict[str, SecretStr] = {}
    for i, pair in enumerate(p.strip() for p in raw.get_secret_value().split(",")):
        if not pair:
            continue
        service, sep, key = pair.partition("=")
        if not sep or not service.strip() or not key.strip():
            raise ConfigError(f"pagerduty service keys: entry {i + 1} is not service=key")
        keys[service.strip()] = SecretStr(key.strip())
    return keys


M = TypeVar("M", bound=BaseModel)
C = TypeVar("C")


def configured(
    what: str,
    model: type[M],
    values: Mapping[str, object],
    build: Callable[[M], C],
    *,
    needs: Mapping[str, object] | None = None,
) -> C:
    """A connector built from settings, as every ``from_settings`` does it: the settings it cannot
    do without (``needs``: variable name -> value) are checked first and named when missing; the
    config ``model`` is validated from ``values``; ``build`` makes the connector. Every failure is
    a :class:`ConfigError` that names the problem and never repeats a value (a secret's value is
    the secret)."""
    missing = [name for name, value in (needs or {}).items() if value is None or value == ""]
    if missing:
        raise ConfigError(f"the {what} connector needs {', '.join(missing)}")
    try:
        config = model.model_validate(dict(values))
    except ValidationError as exc:
        raise config_error(what, exc) from None
    try:
        return build(config)
    except ConnectorError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def config_error(what: str, exc: ValidationError) -> ConfigError:
    """A :class:`ConfigError` naming each problem's field and message, never its input value."""
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors())
    return ConfigError(f"invalid {what} configuration: {problems}")


def http_config(settings: Settings) -> HttpConfig:
    """The HTTP settings every HTTP connector shares, checked against the outbox lease: a request
    that can outlive its claim would let another worker send the same action meanwhile."""
    try:
        config = HttpConfig(
            connect_timeout=settings.http_connect_timeout,
            read_timeout=settings.http_read_timeout,
            total_timeout=settings.http_total_timeout,
            allow=tuple(v.strip() for v in settings.outbound_allow.split(",") if v.strip()),
            ca_file=settings.http_ca_file,
        )
    except ValidationError as exc:
        raise config_error("http", exc) from None
    if config.total_timeout >= settings.lease_seconds:
        raise ConfigError(
            f"http_total_timeout ({config.total_timeout:g}s) must be shorter than "
            f"lease_seconds ({settings.lease_seconds:g}s)"
        )
    return config
