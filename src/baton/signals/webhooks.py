"""``POST /v1/webhooks/<source>``: vendor webhooks in, canonical events out, a 2xx only after commit.

Each request goes through the same stages, in this order:

1. **Source**: an installed adapter (``baton.signals`` entry point) or 404; configured in the
   webhooks file or 503, so an unconfigured source is never accepted unauthenticated.
2. **Authenticity**: the source's verifier (:mod:`baton.signals.signatures`) over the raw body with
   the source's one or two secrets; 401 on failure. Baton API tokens play no part here: vendors
   cannot send them, and the signature or shared token is the proof.
3. **Limits**: a token bucket per source (429 with ``Retry-After``), counted only for authentic
   requests so forged traffic cannot spend a vendor's budget; JSON nesting and array length (400).
   The body size (413) is enforced before this by the app's body limit.
4. **Parse**: the adapter maps the delivery to events (422 when the payload is not the vendor's).
5. **Ingest**: each event goes to the batcher in order and the answer waits for the commit: 202
   when something new was stored, 200 when everything was a redelivery or nothing was relevant.

The webhooks file (YAML; ``BATON_WEBHOOKS_FILE``, default ``<workspace>/webhooks.yaml``)::

    sources:
      zendesk:
        secrets: ["<signing secret>"]          # two during a rotation: [new, old]
      servicenow:
        secrets: ["<token>"]
        header: X-Baton-Token                  # token sources only; default Authorization
        scheme: none                           # Bearer | Basic | none; default Bearer for
                                               # Authorization, none for another header
        rate: 20                               # requests per second, refilled continuously
        burst: 100                             # bucket size

It is re-read when it changes (checked every few seconds), so a rotation needs no restart; a file
that fails to load is reported and the previous configuration stays in force.
"""

from __future__ import annotations

import logging
import math
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from baton.clock import Clock
from baton.engine.batcher import Batcher
from baton.errors import AuthError, ConfigError, InputError
from baton.settings import Settings
from baton.signals import signatures
from baton.signals.adapters import SignalAdapter, available, load_adapters
from baton.signals.adapters.base import Delivery
from baton.signals.signatures import MAX_SECRETS, TokenHeader, Verifier

__all__ = ["SourceConfig", "TokenBucket", "WebhooksConfig", "load_webhooks_config", "webhook_router"]

_log = logging.getLogger("baton.webhooks")
RELOAD_CHECK_SECONDS: Final = 2.0
_SIGNED: Final = frozenset(
    name for name, verifier in signatures.VERIFIERS.items() if not isinstance(verifier, TokenHeader)
)


class SourceConfig(BaseModel):
    """One webhook source: its secrets, how a token source sends its token, its rate limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secrets: Annotated[list[SecretStr], Field(min_length=1, max_length=MAX_SECRETS)]
    header: str | None = None
    scheme: Literal["Bearer", "Basic", "none"] | None = None
    rate: float = Field(default=20.0, gt=0, le=100_000, description="Requests per second.")
    burst: int = Field(default=100, ge=1, le=1_000_000, description="Most requests at once.")

    @model_validator(mode="after")
    def _secrets_not_blank(self) -> SourceConfig:
        if any(not secret.get_secret_value().strip() for secret in self.secrets):
            raise ValueError("a secret is empty")
        return self

    def verifier(self, source: str) -> Verifier:
        """The registered verifier, or a :class:`TokenHeader` for a token source's own header."""
        if self.header is None and self.scheme is None:
            return signatures.VERIFIERS.get(source) or TokenHeader()
        header = self.header or "Authorization"
        default: Literal["Bearer"] | None = "Bearer" if header.lower() == "authorization" else None
        scheme = default if self.scheme is None else None if self.scheme == "none" else self.scheme
        return TokenHeader(header=header, scheme=scheme)


class WebhooksConfig(BaseModel):
    """The webhooks file: ``sources`` maps a source name to its :class:`SourceConfig`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: dict[str, SourceConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _signed_sources_sign(self) -> WebhooksConfig:
        for name, source in self.sources.items():
            if name in _SIGNED and (source.header is not None or source.scheme is not None):
                raise ValueError(f"{name} signs its requests: header and scheme apply to token sources only")
        return self


def load_webhooks_config(path: Path) -> WebhooksConfig:
    """Read and validate the webhooks file; a :class:`ConfigError` says where it is wrong."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config = WebhooksConfig.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the webhooks file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        # Position and problem only: the parser's own message quotes the line, which may hold a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(
            f"{path}: not valid YAML ({where}{getattr(exc, 'problem', None) or 'syntax error'})"
        ) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    # A token header that is not a valid header name is refused now, not on every request.
    for name, source in config.sources.items():
        try:
            source.verifier(name)
        except ConfigError as exc:
            raise ConfigError(f"{path}: sources.{name}: {exc}") from None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning("%s holds secrets but other users may read it; chmod 600 it", path)
    return config


@dataclass
class TokenBucket:
    """``burst`` requests at once, refilled at ``rate`` per second. Times are seconds."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float) -> float:
        """Spend one token: 0 if allowed, else how many seconds until one is available."""
        if self.updated is not None:
            # max(): a clock that steps back must not drain the bucket.
            self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class _Source:
    name: str
    adapter: SignalAdapter
    verifier: Verifier
    secrets: tuple[str, ...] = field(repr=False)
    bucket: TokenBucket


class _Registry:
    """The configured sources, rebuilt when the webhooks file changes."""

    def __init__(self, *, path: Path, required: bool, installed: frozenset[str]) -> None:
        self.path, self.required, self.installed = path, required, installed
        self.sources: dict[str, _Source] = {}
        self.stamp: tuple[int, int] | None = None
        self.checked = 0.0
        self._load()

    def get(self, name: str) -> _Source | None:
        if time.monotonic() - self.checked >= RELOAD_CHECK_SECONDS:
            try:
                self._load()
            except ConfigError as exc:
                _log.error("webhooks file not reloaded, keeping the previous one: %s", exc)
        return self.sources.get(name)

    def _load(self) -> None:
        self.checked = time.monotonic()
        try:
            info = self.path.stat()
        except FileNotFoundError:
            if self.required:
                raise ConfigError(f"{self.path}: the webhooks file does not exist") from None
            self.sources, self.stamp = {}, None
            return
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp == self.stamp:
            return
        config = load_webhooks_config(self.path)
        unknown = sorted(set(config.sources) - self.installed)
        if unknown:
            raise ConfigError(f"{self.path}: no signal adapter for {', '.join(unknown)}")
        adapters = load_adapters(config.sources)
        sources = {}
        for name, source in config.sources.items():
            # A reload keeps a source's bucket (and what it has spent) unless its limits changed.
            old = self.sources.get(name)
            bucket = TokenBucket(source.rate, source.burst)
            if old is not None and (old.bucket.rate, old.bucket.burst) == (bucket.rate, bucket.burst):
                bucket = old.bucket
            sources[name] = _Source(
                name=name,
                adapter=adapters[name],
                verifier=source.verifier(name),
                secrets=tuple(secret.get_secret_value() for secret in source.secrets),
                bucket=bucket,
            )
        self.sources, self.stamp = sources, stamp
        _log.info("webhook sources configured: %s", ", ".join(sorted(sources)) or "none")


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def webhook_router(*, settings: Settings, batcher: Batcher | None, clock: Clock) -> APIRouter:
    """The webhook endpoint. Reads the webhooks file now, so a broken one fails at startup."""
    installed = frozenset(available())
    registry = _Registry(
        path=settings.webhooks_file or settings.workspace / "webhooks.yaml",
        required=settings.webhooks_file is not None,
        installed=installed,
    )
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/v1/webhooks/{source}",
        status_code=202,
        responses={
            200: {"description": "Only redeliveries, or nothing Baton follows: nothing new stored."},
            202: {"description": "Stored and decided (committed before this answer)."},
            400: {"description": "JSON nested too deeply or an array too long"},
            401: {"description": "Signature or token missing or wrong"},
            404: {"description": "No such webhook source"},
            413: {"description": "Body too large"},
            422: {"description": "Not the vendor's documented payload"},
            429: {"description": "Over the source's rate limit; see Retry-After"},
            503: {"description": "Source not configured, read-only server, or store unavailable"},
        },
    )
    async def receive(source: str, request: Request) -> JSONResponse:
        if source not in installed:
            return _error(404, "not_found", f"no webhook source {source!r}")
        entry = registry.get(source)
        if entry is None:
            return _error(
                503, "not_configured", f"webhook source {source!r} is not configured (see docs/signals.md)"
            )
        if batcher is None:
            return _error(503, "read_only", "this server does not accept events")
        body = await request.body()
        now = clock.now()
        try:
            entry.verifier(headers=request.headers, body=body, secrets=entry.secrets, now=now)
        except AuthError as exc:
            client = request.client.host if request.client else "-"
            _log.warning("webhook %s from %s refused: %s", source, client, exc)
            return _error(401, "unauthorized", str(exc))
        wait = entry.bucket.take(now.timestamp())
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            return _error(429, "rate_limited", f"over the {source} rate limit", {"Retry-After": retry})
        delivery = Delivery.from_bytes(
            body,
            received_at=now,
            headers=request.headers,
            max_depth=settings.max_json_depth,
            max_array=settings.max_json_array,
        )
        try:
            events = entry.adapter.parse(delivery)
        except ValidationError as exc:  # e.g. an id longer than any canonical event may hold
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or exc.title
            raise InputError(
                f"the {source} payload cannot be a Baton event: {where}: {first['msg']}"
            ) from None
        for event in events:
            if event.source != source and event.source in installed:
                raise InputError(f"events sent to {source} may not claim source {event.source!r}")
        results: list[dict[str, Any]] = []
        for event in events:  # in order, each committed before the next is handed over
            result = await batcher.ingest(event)
            results.append(
                {"event_id": result.event_id, "status": result.status, "ticket_id": result.ticket_id}
            )
        accepted = any(r["status"] == "accepted" for r in results)
        status = "accepted" if accepted else "duplicate" if results else "ignored"
        return JSONResponse(
            {"status": status, "source": source, "events": results}, status_code=202 if accepted else 200
        )

    return router
