"""HubSpot through the CRM v3 API with a private app token
(https://developers.hubspot.com/docs/api/crm/tickets).

Kinds of action
    ``sync`` / ``status``
        Update the ticket (``PATCH /crm/v3/objects/tickets/<id>``, answered 200 with the ticket):
        ``hs_pipeline_stage`` from Baton's stage through ``stages`` (with ``hs_pipeline`` when
        ``pipeline`` is set), ``hs_ticket_priority`` through ``priorities``, ``hubspot_owner_id``
        from ``assignee`` (the person's HubSpot owner id). ``sync`` reads ``params.changes``;
        ``status`` reads ``status``, ``priority``, ``assignee``, ``team`` and ``tier`` from the
        params. The ticket is ``params.hubspot_ticket_id``, else ``params.external_id``, else
        ``params.links["hubspot"]``. A ticket has no team or tier: when those change they are
        logged, with ``params.note``, as a note on the ticket.
    ``activity``
        A note (``POST /crm/v3/objects/notes``, https://developers.hubspot.com/docs/api/crm/notes)
        with ``hs_note_body`` (``params.subject`` and ``params.text``, HTML-escaped) and
        ``hs_timestamp``, associated with ``params.company_id`` (type ``company_association_type``,
        190 "note to company") and with the ticket when one is known (``ticket_association_type``,
        228 "note to ticket").

Idempotency
    A ticket update is idempotent by nature. Notes take no idempotency key; each note's body ends
    with a marker token derived from the action key (``baton`` and its 64 hex digits), and a retry
    (``attempt > 1``) first searches for it (``POST /crm/v3/objects/notes/search``,
    ``hs_note_body CONTAINS_TOKEN <marker>``) and creates nothing when it is found. Search is
    eventually consistent, so a retry that finds nothing waits ``search_settle_seconds`` (30 by
    default) on every second attempt and searches again before the next one creates
    (:func:`~baton.connectors.base.settle_before_creating`): a second note needs HubSpot's index to
    lag longer than that.

Errors
    The body is ``{"status": "error", "message", "correlationId", "category", "errors"}``
    (https://developers.hubspot.com/docs/api-reference/error-handling); message, category and
    correlation id go into the error. 429 is transient: Retry-After when sent, else the
    ``X-HubSpot-RateLimit-Interval-Milliseconds`` window, else ``rate_limit_retry_after``; one
    second when ``policyName`` is ``SECONDLY``, ``daily_limit_retry_after`` when it is ``DAILY``.
    423 (a record locked by a sync, "retry after 2 seconds"), 409, 5xx and network failures are
    transient; 400, 401 (token revoked or rotated), 403 (missing scopes, named in the error) and
    404 are permanent.

Links
    Record URLs need the account's portal id and UI domain: ``portal_id`` / ``ui_domain`` when
    configured, else read once from ``GET /account-info/v3/details``; without them the link has
    no URL.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from baton.clock import Clock, SystemClock
from baton.connectors.addresses import Resolver
from baton.connectors.base import SETTLE_SECONDS, Delivery, OutboundAction, settle_before_creating
from baton.connectors.config import HttpConfig, _url, configured, http_config
from baton.connectors.http import HttpResponse, OutboundHttp
from baton.connectors.params import param_str as _str
from baton.errors import ConnectorError, PermanentConnectorError, TransientConnectorError
from baton.model import ExternalLink
from baton.settings import Settings

__all__ = ["HubSpotConfig", "HubSpotConnector", "marker", "reading", "ticket_id"]

_log = logging.getLogger("baton.connectors.hubspot")

STAGES = ("new", "open", "pending", "escalated", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
_FIELDS = ("assignee", "team", "tier", "priority", "status")
_ID = re.compile(r"^\d{1,20}$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
_BODY_LIMIT = 65_000  # hs_note_body holds 65,536 characters; the rest is room for the marker

# The default ticket pipeline ("0"): 1 New, 2 Waiting on contact, 3 Waiting on us, 4 Closed.
_STAGES = {"new": "1", "open": "3", "pending": "2", "escalated": "3", "solved": "4", "closed": "4"}
_READINGS = {"1": "new", "2": "pending", "3": "open", "4": "closed"}
_PRIORITIES = {"low": "LOW", "normal": "MEDIUM", "high": "HIGH", "urgent": "HIGH"}


class HubSpotConfig(BaseModel):
    """One HubSpot account, reached with a private app's access token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: SecretStr = Field(description="Private app access token (pat-...).")
    search_settle_seconds: float = Field(
        default=SETTLE_SECONDS,
        ge=0,
        le=3_600,
        description="How long a retried note that finds none waits for HubSpot's search to catch up "
        "before creating (0: create at once).",
    )
    api_url: str = Field(default="https://api.hubapi.com", description="Base URL of the API.")
    pipeline: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="hs_pipeline sent with the stage."
    )
    stages: dict[str, str] = Field(
        default_factory=lambda: dict(_STAGES), description="Baton stage -> hs_pipeline_stage id."
    )
    stage_readings: dict[str, str] = Field(
        default_factory=lambda: dict(_READINGS), description="Stage id -> the Baton stage it reads as."
    )
    priorities: dict[str, str] = Field(
        default_factory=lambda: dict(_PRIORITIES), description="Baton priority -> hs_ticket_priority."
    )
    company_association_type: int = Field(default=190, ge=1, description="Note to company.")
    ticket_association_type: int = Field(default=228, ge=1, description="Note to ticket.")
    portal_id: int | None = Field(default=None, ge=1, description="Account id in record URLs.")
    ui_domain: str = Field(default="app.hubspot.com", pattern=_HOST.pattern)
    rate_limit_retry_after: float = Field(default=10.0, gt=0, description="429 without any hint.")
    daily_limit_retry_after: float = Field(default=3_600.0, gt=0, description="429 of the daily limit.")
    http: HttpConfig = Field(default_factory=HttpConfig)

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _url(value)

    @field_validator("access_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: dict[str, str]) -> dict[str, str]:
        return _mapping(value, STAGES)

    @field_validator("stage_readings")
    @classmethod
    def _readings(cls, value: dict[str, str]) -> dict[str, str]:
        if not set(value.values()) <= set(STAGES):
            raise ValueError(f"stages must be among {', '.join(STAGES)}")
        return value

    @field_validator("priorities")
    @classmethod
    def _priorities(cls, value: dict[str, str]) -> dict[str, str]:
        return _mapping(value, PRIORITIES)


def _mapping(value: dict[str, str], words: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(value) - set(words))
    if unknown:
        raise ValueError(f"unknown Baton values {unknown}; use {', '.join(words)}")
    if any(not v.strip() or len(v) > 100 for v in value.values()):
        raise ValueError("values must be 1 to 100 characters")
    return {k: v.strip() for k, v in value.items()}


def reading(values: Mapping[str, str], written: str, requested: str) -> str:
    """The Baton word a written value reads back as (see ``salesforce.reading``): the one word
    mapped to it; when several share it, the word that names it, else the word requested."""
    sharing = [word for word, value in values.items() if value == written]
    if len(sharing) == 1:
        return sharing[0]
    named = written.strip().lower()
    return named if named in sharing else requested


def marker(key: str) -> str:
    """The token a note carries for its action: one word, so CONTAINS_TOKEN matches it whole."""
    return "baton" + re.sub(r"[^0-9a-z]", "", key.lower())[:64]


class _Seen:
    """Remembers the failed response of one request, for errors the status alone cannot classify."""

    def __init__(self) -> None:
        self.response: HttpResponse | None = None
        self.data: dict[str, Any] = {}

    def explain(self, response: HttpResponse) -> str | None:
        self.response = response
        data = _json(response)
        if not isinstance(data, dict):
            return None
        self.data = data
        parts = [str(data.get("category") or ""), str(data.get("message") or "")]
        if response.status == 401:
            parts.append("(the token is invalid, revoked or rotated: set BATON_HUBSPOT_ACCESS_TOKEN)")
        scopes = _scopes(data)
        if scopes:
            parts.append(f"(needs scope {' or '.join(scopes)})")
        if data.get("correlationId"):
            parts.append(f"[correlationId {data['correlationId']}]")
        return " ".join(p for p in parts if p) or None


def _scopes(data: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    errors = data.get("errors")
    contexts = [data.get("context")]
    contexts += [e.get("context") for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    for context in contexts:
        if isinstance(context, dict):
            for name in ("requiredGranularScopes", "requiredScopes", "missingScopes"):
                value = context.get(name)
                found += [str(s) for s in value] if isinstance(value, list) else []
    return list(dict.fromkeys(found))[:5]


class HubSpotConnector:
    """Writes Baton's changes to HubSpot tickets and logs notes on companies and tickets."""

    name = "hubspot"

    def __init__(
        self, config: HubSpotConfig, *, clock: Clock | None = None, resolver: Resolver | None = None
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._token = config.access_token.get_secret_value()
        self.http = OutboundHttp(config.http, clock=self.clock, resolver=resolver, secrets=(self._token,))
        self.http.check_url(config.api_url)
        self._api = config.api_url.rstrip("/")
        self._portal: tuple[int, str] | None = (
            (config.portal_id, config.ui_domain) if config.portal_id is not None else None
        )
        self._portal_known = config.portal_id is not None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> HubSpotConnector:
        token = settings.hubspot_access_token
        return configured(
            "hubspot",
            HubSpotConfig,
            {
                "access_token": token,
                "api_url": settings.hubspot_api_url,
                "search_settle_seconds": settings.hubspot_search_settle_seconds,
                "http": http_config(settings),
            },
            lambda config: cls(config, clock=clock),
            needs={"BATON_HUBSPOT_ACCESS_TOKEN": token},
        )

    def send(self, action: OutboundAction) -> Delivery:
        if action.kind in ("sync", "status"):
            return self._update_ticket(action)
        if action.kind == "activity":
            return self._activity(action)
        raise PermanentConnectorError(f"hubspot: cannot perform {action.kind!r}")

    def close(self) -> None:
        self.http.close()

    # -- tickets -------------------------------------------------------------------------------

    def ticket_properties(self, changes: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """The ticket properties for Baton's ``changes``, and what they read back as in Baton's words."""
        c = self.config
        properties: dict[str, str] = {}
        wrote: dict[str, str] = {}
        if "status" in changes:
            word = changes["status"].lower()
            stage = c.stages.get(word)
            if stage is None:
                raise PermanentConnectorError(
                    f"hubspot: no pipeline stage for status {changes['status'][:40]!r} (see stages)"
                )
            if c.pipeline:
                properties["hs_pipeline"] = c.pipeline
            properties["hs_pipeline_stage"] = stage
            wrote["status"] = c.stage_readings.get(stage) or reading(c.stages, stage, word)
        if "priority" in changes:
            word = changes["priority"].lower()
            if word not in c.priorities:
                raise PermanentConnectorError(
                    f"hubspot: no ticket priority for {changes['priority'][:40]!r} (see priorities)"
                )
            properties["hs_ticket_priority"] = c.priorities[word]
            wrote["priority"] = reading(c.priorities, c.priorities[word], word)
        if "assignee" in changes:
            properties["hubspot_owner_id"] = _object_id(changes["assignee"], "assignee (an owner id)")
            wrote["assignee"] = changes["assignee"]
        return properties, wrote

    def _update_ticket(self, action: OutboundAction) -> Delivery:
        ticket = ticket_id(action.params)
        if ticket is None:
            raise PermanentConnectorError(
                f"hubspot: no HubSpot ticket for ticket {action.ticket_id}: the action names no "
                "hubspot_ticket_id and the ticket has no hubspot link"
            )
        changes = _changes(action)
        properties, wrote = self.ticket_properties(changes)
        unmapped = {k: changes[k] for k in ("team", "tier") if k in changes}
        if not properties and not unmapped:
            raise PermanentConnectorError("hubspot: nothing to write (no status, priority, assignee)")
        detail: dict[str, Any] = {"ticket": ticket}
        if properties:
            body = {"properties": properties}
            self._call("PATCH", f"/crm/v3/objects/tickets/{ticket}", body, what="hubspot update ticket")
            detail["properties"] = properties
        if unmapped:
            note = _str(action.params.get("note")) or "Baton: " + ", ".join(
                f"{k} {v}" for k, v in unmapped.items()
            )
            text = "\n".join(f"{k}: {v}" for k, v in unmapped.items())
            targets = [(ticket, self.config.ticket_association_type)]
            found, created = self._note(action, _note_html(note, text, action), targets)
            detail.update(note=found, note_created=created)
        return Delivery(external_id=ticket, detail=detail, link=self._link(ticket), wrote=wrote)

    # -- notes ---------------------------------------------------------------------------------

    def _activity(self, action: OutboundAction) -> Delivery:
        params = action.params
        company = _str(params.get("company_id"))
        ticket = ticket_id(params)
        targets: list[tuple[str, int]] = []
        if company:
            targets.append((_object_id(company, "company_id"), self.config.company_association_type))
        if ticket:
            targets.append((ticket, self.config.ticket_association_type))
        if not targets:
            raise PermanentConnectorError(
                f"hubspot: no company_id and no HubSpot ticket to log the activity of {action.ticket_id} on"
            )
        subject = _str(params.get("subject")) or f"Baton: ticket {action.ticket_id}"
        found, created = self._note(action, _note_html(subject, _str(params.get("text")), action), targets)
        return Delivery(
            external_id=found,
            detail={"note": found, "company": company or None, "ticket": ticket, "created": created},
            link=self._link(ticket) if ticket else None,
        )

    def _note(self, action: OutboundAction, body: str, targets: list[tuple[str, int]]) -> tuple[str, bool]:
        """The action's note: found by its marker on a retry, else created. Its id, and whether
        this call created it."""
        token = marker(action.key)
        if action.attempt > 1:
            if (found := self._find_note(token)) is not None:
                return found, False
            settle_before_creating(
                action, what="hubspot create note", seconds=self.config.search_settle_seconds
            )
        stamp = self.clock.now().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payload = {
            "properties": {"hs_note_body": f"{body}<p>ref {token}</p>", "hs_timestamp": stamp},
            "associations": [
                {
                    "to": {"id": to},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": kind}],
                }
                for to, kind in targets
            ],
        }
        response = self._call("POST", "/crm/v3/objects/notes", payload, what="hubspot create note")
        created = _object_of(response)
        if created is None:  # the retry searches for the marker before creating another
            raise TransientConnectorError(f"hubspot create note: HTTP {response.status} names no note id")
        return created, True

    def _find_note(self, token: str) -> str | None:
        query = {
            "filterGroups": [
                {"filters": [{"propertyName": "hs_note_body", "operator": "CONTAINS_TOKEN", "value": token}]}
            ],
            "properties": ["hs_note_body"],
            "limit": 10,
        }
        response = self._call("POST", "/crm/v3/objects/notes/search", query, what="hubspot search notes")
        data = _json(response)
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):  # unknown: creating now could make a second note
            raise TransientConnectorError("hubspot search notes: the answer has no list of results")
        for result in results:
            if not isinstance(result, dict) or not _ID.match(str(result.get("id"))):
                continue
            properties = result.get("properties")
            text = properties.get("hs_note_body") if isinstance(properties, dict) else None
            if text is None or token in str(text):
                return str(result["id"])
        return None

    # -- the API -------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, what: str
    ) -> HttpResponse:
        headers = {"authorization": f"Bearer {self._token}", "accept": "application/json"}
        if body is not None:
            headers["content-type"] = "application/json"
        seen = _Seen()
        try:
            return self.http.request(
                method,
                self._api + path,
                what=what,
                content=json.dumps(body, ensure_ascii=False).encode() if body is not None else None,
                headers=headers,
                explain=seen.explain,
            )
        except TransientConnectorError as exc:
            if seen.response is not None and seen.response.status == 429 and exc.retry_after is None:
                raise TransientConnectorError(str(exc), retry_after=self._rate_delay(seen)) from None
            raise
        except PermanentConnectorError as exc:
            if seen.response is not None and seen.response.status == 423:
                raise TransientConnectorError(str(exc), retry_after=2.0) from None
            raise

    def _rate_delay(self, seen: _Seen) -> float:
        """How long a 429 without Retry-After asks to wait: the daily limit resets at the account's
        midnight, a secondly one in a second, the rolling window as long as its interval header says."""
        assert seen.response is not None
        c = self.config
        policy = str(seen.data.get("policyName") or "").upper()
        if policy == "DAILY":
            return min(c.daily_limit_retry_after, c.http.max_retry_after)
        if policy == "SECONDLY":  # a per-second limit, such as search's
            return 1.0
        interval = seen.response.headers.get("x-hubspot-ratelimit-interval-milliseconds", "")
        if interval.isdigit() and 0 < int(interval) <= 86_400_000:
            return min(int(interval) / 1000, c.http.max_retry_after)
        return min(c.rate_limit_retry_after, c.http.max_retry_after)

    def _link(self, ticket: str) -> ExternalLink:
        portal = self._account()
        url = f"https://{portal[1]}/contacts/{portal[0]}/record/0-5/{ticket}" if portal else None
        return ExternalLink(system="hubspot", id=ticket, url=url)

    def _account(self) -> tuple[int, str] | None:
        """Portal id and UI domain, looked up once. A failed lookup costs the link its URL, never
        the action (it runs after the effect)."""
        with self._lock:
            if self._portal_known:
                return self._portal
            try:
                response = self._call("GET", "/account-info/v3/details", what="hubspot account details")
            except ConnectorError as exc:
                _log.warning("hubspot: no portal id for record URLs: %s", exc)
                self._portal_known = not isinstance(exc, TransientConnectorError)
                return None
            data = _json(response)
            portal, domain = (
                (data.get("portalId"), data.get("uiDomain")) if isinstance(data, dict) else (0, 0)
            )
            domain = domain if isinstance(domain, str) and _HOST.match(domain) else self.config.ui_domain
            self._portal = (portal, domain) if isinstance(portal, int) and portal > 0 else None
            self._portal_known = True
            return self._portal


def ticket_id(params: Mapping[str, Any]) -> str | None:
    """The HubSpot ticket an action is about: ``hubspot_ticket_id``, ``external_id`` or the link."""
    links = params.get("links")
    linked = links.get("hubspot") if isinstance(links, Mapping) else None
    for value in (params.get("hubspot_ticket_id"), params.get("external_id"), linked):
        if text := _str(value):
            return _object_id(text, "ticket id")
    return None


def _changes(action: OutboundAction) -> dict[str, str]:
    raw = action.params.get("changes") if action.kind == "sync" else action.params
    if not isinstance(raw, Mapping):
        raise PermanentConnectorError("hubspot sync: params.changes is not a mapping")
    return {k: _str(raw.get(k)) for k in _FIELDS if _str(raw.get(k))}


def _object_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise PermanentConnectorError(f"hubspot: {what} {value[:40]!r} is not a HubSpot object id (digits)")
    return value


def _object_of(response: HttpResponse) -> str | None:
    data = _json(response)
    found = data.get("id") if isinstance(data, dict) else None
    return str(found) if isinstance(found, str | int) and _ID.match(str(found)) else None


def _note_html(subject: str, text: str, action: OutboundAction) -> str:
    """The note's HTML. Text that came from customers is escaped: HubSpot renders notes as HTML."""
    head = f"<p><strong>{html.escape(subject[:1_000], quote=False)}</strong></p>"
    tail = f"<p>Baton ticket {html.escape(action.ticket_id, quote=False)}</p>"
    room = _BODY_LIMIT - len(head) - len(tail)
    body = _paragraphs(text[:room])
    if len(body) > room:  # escaping grows text by at most five times (& -> &amp;)
        body = _paragraphs(text[: room // 5])
    return head + body + tail


def _paragraphs(text: str) -> str:
    parts = (html.escape(p.strip(), quote=False).replace("\n", "<br>") for p in text.split("\n\n"))
    return "".join(f"<p>{p}</p>" for p in parts if p)


def _json(response: HttpResponse) -> Any:
    """The body as JSON, or None. Deeply nested garbage (``[[[[...``) raises RecursionError, not
    ValueError, in the json module: a hostile vendor must not get that far."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None
