"""Zendesk Support through the Ticketing API with an API token (HTTP basic, ``{email}/token``):
https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/. Every action names an existing
ticket: ``params.ticket_id``, else ``external_id``, else ``links["zendesk"]`` (digits only).

Kinds of action
    ``update``: ``GET /api/v2/tickets/{id}``, then one ``PUT /api/v2/tickets/{id}`` with
        ``{"ticket": {...}}`` holding only what differs from what was read: ``assignee_id``
        (``params.assignee``, a user id; an e-mail address goes as ``assignee_email``), ``group_id``
        (``params.group``, or ``params.team`` through ``groups``), ``priority``, ``status``
        (Zendesk's or Baton's words, ``STATUSES``), ``additional_tags`` (``tags``, ``add_tags``),
        ``remove_tags``, and an internal note with ``params.note``. Field changes carry
        ``safe_update: true`` and ``updated_stamp`` (the ``updated_at`` just read): a change made
        in Zendesk in between is refused with 409 instead of overwritten, and the retry reads again.
    ``sync``: the same write from ``params.changes`` (``assignee``, ``team``, ``tier``,
        ``priority``, ``status``), with ``params.note`` as an internal note; what Zendesk cannot
        hold (``tier``, a team without a group, a return to New) is added to that note.
    ``note`` / ``reply`` / ``notify``: a comment through the ticket update, internal, public,
        and internal addressed to ``params.to`` / Zendesk user ``params.address``; ``subject`` and
        ``text`` as ``body``, or ``params.html`` as ``html_body``.
    ``tag``: ``PUT /api/v2/tickets/{id}/tags`` ``{"tags": [...]}`` adds tags (a set union).

Baton's ``escalated`` is Zendesk's ``open``. Zendesk closes solved tickets itself and refuses any
change to a closed one, so ``closed`` is written as ``solved`` (and the note says so).

Delivery: ``external_id`` is the ticket id, ``link`` ``("zendesk", id, "<site>/agent/tickets/<id>")``,
and ``wrote`` what the ticket now holds of Baton's fields in Baton's words as Zendesk's webhook
reads them back (``escalated`` is reported as ``open``), whether this attempt set it or an earlier
one whose answer was lost did.

Duplicates: Zendesk documents ``Idempotency-Key`` for ticket creation only, and a retry here sends
a different body on purpose (a fresh ``updated_stamp``, only what is still missing), which a key
cache would refuse; no key is sent. Field writes are idempotent by reading first. Comments are
not: each ends with ``— baton:<first 8 characters of the action key>``, and a retry
(``attempt > 1``) looks for it among the ticket's newest ``comment_lookback`` comments first.

Errors: 401, 403, 404 (``RecordNotFound``), 422 (``RecordInvalid``) and other 4xx are permanent,
with Zendesk's ``error``, ``description`` and ``details`` in the message; 409, 429 (Retry-After)
and 5xx are transient. The token never appears in a message.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from baton.clock import Clock
from baton.connectors.addresses import Resolver
from baton.connectors.base import Delivery, OutboundAction
from baton.connectors.config import HttpConfig, _url, configured, http_config
from baton.connectors.http import HttpResponse, OutboundHttp
from baton.errors import ConfigError, PermanentConnectorError, TransientConnectorError
from baton.model import ExternalLink
from baton.settings import Settings

__all__ = [
    "PRIORITIES",
    "STATUSES",
    "ZendeskConfig",
    "ZendeskConnector",
    "marker",
    "normal_tag",
    "ticket_ref",
]

_log = logging.getLogger("baton.connectors.zendesk")

PRIORITIES = ("low", "normal", "high", "urgent")
# Zendesk's and Baton's words -> the Zendesk status written
STATUSES = {"new": "new", "open": "open", "escalated": "open", "pending": "pending", "hold": "hold"}
STATUSES |= {"solved": "solved", "closed": "solved"}
_STAGE = {"new": "new", "open": "open", "pending": "pending", "hold": "open", "solved": "solved"}
_ID = re.compile(r"[0-9]{1,19}")
_EMAIL = re.compile(r"[^@\s/:]+@[^@\s/:]+")
_TEXT_LIMIT = 60_000  # Zendesk's comment limit is about 64 KB (an assumption; not documented exactly)
_PAGE = 50


class ZendeskConfig(BaseModel):
    """Zendesk Support with an agent's API token.

    ``groups`` maps Baton team names to Zendesk group ids (a team without one goes into the note);
    ``comment_lookback`` is how many of a ticket's newest comments a retry searches for its marker.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="The Zendesk site, e.g. https://acme.zendesk.com.")
    email: str = Field(min_length=3, max_length=254, description="The agent the API token belongs to.")
    api_token: SecretStr = Field(description="An API token (Admin Center > Apps and integrations > APIs).")
    groups: dict[str, int] = Field(default_factory=dict)
    comment_lookback: int = Field(default=100, ge=1, le=1_000)
    http: HttpConfig = Field(default_factory=HttpConfig)

    @field_validator("url")
    @classmethod
    def _site(cls, value: str) -> str:
        url = httpx.URL(_url(value))
        if url.path not in ("", "/") or url.query or url.fragment:
            raise ValueError("must be the site's address without a path, e.g. https://acme.zendesk.com")
        return value.rstrip("/")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.fullmatch(value.strip()):
            raise ValueError("must be an e-mail address")
        return value.strip()

    @field_validator("api_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if not token or token != token.strip() or any(c.isspace() for c in token):
            raise ValueError("must be non-empty and contain no spaces")
        return value

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: dict[str, int]) -> dict[str, int]:
        if any(not name.strip() or gid <= 0 for name, gid in value.items()):
            raise ValueError("maps team names to positive Zendesk group ids")
        return value


class _Ticket(BaseModel):
    """The part of Zendesk's ticket this connector reads; strict, so a malformed answer is caught."""

    model_config = ConfigDict(extra="ignore", strict=True)

    id: int
    status: str
    updated_at: str
    priority: str | None = None
    assignee_id: int | None = None
    group_id: int | None = None
    tags: list[str] = Field(default_factory=list)


@dataclass
class _Plan:
    """What one ticket update writes: Zendesk fields, Baton's words for them, lines for the note."""

    fields: dict[str, Any] = field(default_factory=dict)
    wrote: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def ticket_ref(params: Mapping[str, Any]) -> str:
    """The Zendesk ticket id an action names, as digits (it goes into the URL path)."""
    raw = params.get("ticket_id")
    if raw is None or raw == "":
        raw = params.get("external_id")
    if raw is None or raw == "":
        links = params.get("links")
        raw = links.get("zendesk") if isinstance(links, Mapping) else None
    text = _str(raw)
    if not text:
        raise PermanentConnectorError(
            "zendesk: the action names no Zendesk ticket (params.ticket_id, external_id or links.zendesk)"
        )
    if not _ID.fullmatch(text) or int(text) == 0:
        raise PermanentConnectorError(f"zendesk: {text[:40]!r} is not a Zendesk ticket id")
    return str(int(text))


def marker(key: str) -> str:
    """What a comment carries so a retry can find it: ``baton:`` and the key's first 8 characters."""
    return f"baton:{key[:8]}"


def normal_tag(raw: str) -> str:
    """A tag as Zendesk keeps it (assumed: lower case, no spaces; a space would split it in two)."""
    tag = re.sub(r"\s+", "_", raw.strip().lower())
    if not tag:
        raise PermanentConnectorError("zendesk: an empty tag")
    return tag


class ZendeskConnector:
    """Updates, comments on and tags existing tickets in one Zendesk Support account."""

    name = "zendesk"

    def __init__(
        self, config: ZendeskConfig, *, clock: Clock | None = None, resolver: Resolver | None = None
    ) -> None:
        self.config = config
        token = config.api_token.get_secret_value()
        credential = base64.b64encode(f"{config.email}/token:{token}".encode()).decode()
        self._auth = f"Basic {credential}"
        self.http = OutboundHttp(config.http, clock=clock, resolver=resolver, secrets=(token, credential))
        self.http.check_url(config.url)
        self._teams = {gid: team for team, gid in config.groups.items()}

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> ZendeskConnector:
        url, email, token = settings.zendesk_url, settings.zendesk_email, settings.zendesk_api_token
        return configured(
            "zendesk",
            ZendeskConfig,
            {
                "url": url,
                "email": email,
                "api_token": token,
                "groups": _pairs(settings.zendesk_groups),
                "http": http_config(settings),
            },
            lambda config: cls(config, clock=clock),
            needs={"BATON_ZENDESK_URL": url, "BATON_ZENDESK_EMAIL": email, "BATON_ZENDESK_API_TOKEN": token},
        )

    def send(self, action: OutboundAction) -> Delivery:
        kind, params = action.kind, action.params
        if kind not in ("update", "sync", "note", "reply", "notify", "tag"):
            raise PermanentConnectorError(f"zendesk: cannot perform {kind!r}")
        ticket = ticket_ref(params)
        if kind == "tag":
            return self._tag(ticket, params)
        if kind in ("note", "reply", "notify"):
            return self._comment(action, ticket)
        if kind == "sync":
            changes = params.get("changes")
            if not isinstance(changes, Mapping):
                raise PermanentConnectorError("zendesk sync: params.changes is not a mapping")
            note = _str(params.get("note")) or _str(changes.get("note"))
            return self._update(action, ticket, changes, note=note, strict=False)
        want = {**params, "add_tags": _list(params.get("tags")) + _list(params.get("add_tags"))}
        return self._update(action, ticket, want, note=_str(params.get("note")), strict=True)

    def close(self) -> None:
        self.http.close()

    # -- kinds -----------------------------------------------------------------------------

    def _tag(self, ticket: str, params: Mapping[str, Any]) -> Delivery:
        tags = _tags(params.get("tags"))
        if not tags:
            raise PermanentConnectorError("zendesk tag: params.tags names no tag")
        data = self._call("PUT", f"/api/v2/tickets/{ticket}/tags", what="add tags", body={"tags": tags})
        if not isinstance(data.get("tags"), list):
            raise TransientConnectorError("zendesk add tags: the answer has no tag list")
        return self._delivery(ticket, {"tags": tags})

    def _comment(self, action: OutboundAction, ticket: str) -> Delivery:
        params = action.params
        lines = [_str(params.get("subject")), _str(params.get("text"))]
        if action.kind == "notify":
            to, address = _str(params.get("to")), _str(params.get("address"))
            user = f"Zendesk user {address}" if address else ""
            who = f"{to} ({user})" if to and user else to or user
            lines.insert(0, f"For {who}:" if who else "")
        html = _str(params.get("html"))
        if not html and not any(lines[-2:]):
            raise PermanentConnectorError(
                f"zendesk {action.kind}: nothing to post (no subject, text or html)"
            )
        if action.attempt > 1 and (found := self._find(ticket, marker(action.key))) is not None:
            return self._delivery(ticket, {"comment_id": found, "recovered": True})
        public = action.kind == "reply"
        comment = _comment_body(action.key, "\n\n".join(s for s in lines if s), html=html, public=public)
        data = self._call(
            "PUT", f"/api/v2/tickets/{ticket}", what="add comment", body={"ticket": {"comment": comment}}
        )
        return self._delivery(ticket, _written(data))

    def _update(
        self, action: OutboundAction, ticket: str, want: Mapping[str, Any], *, note: str, strict: bool
    ) -> Delivery:
        current = self._show(ticket)
        if current.status == "closed":
            raise PermanentConnectorError(
                f"zendesk: ticket {ticket} is closed; Zendesk allows no change to a closed ticket"
            )
        plan = self._plan(current, want, strict=strict)
        text = "\n".join(s for s in (note, *plan.lines) if s)
        body: dict[str, Any] = dict(plan.fields)
        if plan.fields:
            body.update(safe_update=True, updated_stamp=current.updated_at)
        found = None
        if text and action.attempt > 1:
            found = self._find(ticket, marker(action.key))
        if text and found is None:
            body["comment"] = _comment_body(action.key, text, html="", public=False)
        if not body:
            detail: dict[str, Any] = {"unchanged": True} | ({"comment_id": found} if found else {})
            return self._delivery(ticket, detail, wrote=plan.wrote)
        data = self._call("PUT", f"/api/v2/tickets/{ticket}", what="update ticket", body={"ticket": body})
        detail = {"fields": sorted(plan.fields)} | _written(data)
        return self._delivery(ticket, detail, wrote=plan.wrote)

    def _plan(self, current: _Ticket, want: Mapping[str, Any], *, strict: bool) -> _Plan:
        """The fields to write, given what the ticket holds; with ``strict`` (a policy's
        ``update``) what Zendesk cannot hold is an error, else (``sync``) a line of the note."""
        plan = _Plan()

        def cannot(line: str) -> None:
            if strict:
                raise PermanentConnectorError(f"zendesk update: {line}")
            plan.lines.append(f"Baton: {line}")

        who = _str(want.get("assignee"))
        if _ID.fullmatch(who) or _EMAIL.fullmatch(who):
            plan.wrote["assignee"] = who
            if not who.isdigit():
                plan.fields["assignee_email"] = who  # Zendesk resolves the agent; cannot compare first
            elif current.assignee_id != int(who):
                plan.fields["assignee_id"] = int(who)
        elif who or ("assignee" in want and not strict):
            cannot(
                f"assignee {who!r} is not a Zendesk user id or e-mail"
                if who
                else "the assignee has no Zendesk id"
            )
        team, group = _str(want.get("team")), _str(want.get("group"))
        if group and not _ID.fullmatch(group):
            raise PermanentConnectorError(f"zendesk update: group {group[:40]!r} is not a Zendesk group id")
        gid = int(group) if group else self.config.groups.get(team) if team else None
        if team and gid is None:
            cannot(f"team {team!r} has no Zendesk group (configure groups)")
        if gid is not None:
            if name := team or self._teams.get(gid):
                plan.wrote["team"] = name
            if current.group_id != gid:
                plan.fields["group_id"] = gid
        if tier := _str(want.get("tier")):
            cannot(f"tier {tier} (Zendesk has no tier field)")
        if priority := _str(want.get("priority")).lower():
            if priority not in PRIORITIES:
                raise PermanentConnectorError(
                    f"zendesk: priority {priority!r} is not one of {', '.join(PRIORITIES)}"
                )
            plan.wrote["priority"] = priority
            if current.priority != priority:
                plan.fields["priority"] = priority
        if stage := _str(want.get("status")).lower():
            self._status(plan, current, stage, cannot)
        if add := [t for t in _tags(want.get("add_tags")) if t not in current.tags]:
            plan.fields["additional_tags"] = add
        if remove := [t for t in _tags(want.get("remove_tags")) if t in current.tags]:
            plan.fields["remove_tags"] = remove
        return plan

    @staticmethod
    def _status(plan: _Plan, current: _Ticket, stage: str, cannot: Callable[[str], None]) -> None:
        status = STATUSES.get(stage)
        if status is None:
            raise PermanentConnectorError(f"zendesk: status {stage!r} is not one of {', '.join(STATUSES)}")
        if status == "new" and current.status != "new":
            cannot("stage new (a Zendesk ticket cannot go back to New)")
            return
        if stage == "closed":
            plan.lines.append("Baton: closed; set to solved, Zendesk closes solved tickets itself")
        plan.wrote["status"] = _STAGE[status]
        if current.status != status:
            plan.fields["status"] = status

    # -- reads -----------------------------------------------------------------------------

    def _show(self, ticket: str) -> _Ticket:
        data = self._call("GET", f"/api/v2/tickets/{ticket}", what="show ticket")
        try:
            return _Ticket.model_validate(data.get("ticket"))
        except ValidationError as exc:
            where = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'ticket'}: {e['msg']}" for e in exc.errors()[:3]
            )
            raise TransientConnectorError(
                f"zendesk show ticket: the answer is not a Zendesk ticket ({where})"
            ) from None

    def _find(self, ticket: str, mark: str) -> int | None:
        """The id of the newest comment carrying ``mark`` among the last ``comment_lookback``."""
        seen, after = 0, ""
        while seen < self.config.comment_lookback:
            query = {"sort_order": "desc", "page[size]": str(min(_PAGE, self.config.comment_lookback - seen))}
            if after:
                query["page[after]"] = after
            data = self._call("GET", f"/api/v2/tickets/{ticket}/comments", what="list comments", params=query)
            comments, meta = data.get("comments"), data.get("meta")
            if not isinstance(comments, list):
                raise TransientConnectorError("zendesk list comments: the answer has no comment list")
            for comment in comments:
                if isinstance(comment, dict) and any(
                    isinstance(comment.get(k), str) and mark in comment[k]
                    for k in ("body", "plain_body", "html_body")
                ):
                    return comment.get("id") if isinstance(comment.get("id"), int) else 0
            seen += len(comments)
            more = isinstance(meta, dict) and meta.get("has_more") is True
            after = str(meta.get("after_cursor") or "") if isinstance(meta, dict) else ""
            if not (more and after and comments):
                return None
        return None

    # -- the API ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One request (paths are built here, never taken from an answer); the decoded object."""
        headers = {"authorization": self._auth, "accept": "application/json"}
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["content-type"] = "application/json"
        response = self.http.request(
            method,
            self.config.url + path,
            what=f"zendesk {what}",
            content=content,
            headers=headers,
            params=params,
            explain=_explain,
        )
        _watch_limits(response)
        if response.truncated:
            raise TransientConnectorError(f"zendesk {what}: the answer is larger than max_response_bytes")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise TransientConnectorError(f"zendesk {what}: the answer is not a JSON object")
        return data

    def _delivery(
        self, ticket: str, detail: dict[str, Any], *, wrote: Mapping[str, str] | None = None
    ) -> Delivery:
        link = ExternalLink(system="zendesk", id=ticket, url=f"{self.config.url}/agent/tickets/{ticket}")
        return Delivery(
            external_id=ticket, detail={"ticket": ticket, **detail}, link=link, wrote=dict(wrote or {})
        )


def _comment_body(key: str, text: str, *, html: str, public: bool) -> dict[str, Any]:
    """A comment with the action's marker as its last line."""
    if html:
        return {"html_body": f"{html[:_TEXT_LIMIT]}<p>— {marker(key)}</p>", "public": public}
    text = text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"
    return {"body": f"{text}\n\n— {marker(key)}", "public": public}


def _written(data: Mapping[str, Any]) -> dict[str, Any]:
    """The audit id and the new comment's id from an update's answer (``audit.events``)."""
    audit = data.get("audit")
    if not isinstance(audit, dict):
        return {}
    found: dict[str, Any] = {"audit_id": audit["id"]} if isinstance(audit.get("id"), int) else {}
    events = audit.get("events")
    for event in events if isinstance(events, list) else []:
        if isinstance(event, dict) and event.get("type") == "Comment" and isinstance(event.get("id"), int):
            found["comment_id"] = event["id"]
    return found


def _watch_limits(response: HttpResponse) -> None:
    """Warn when the account's per-minute budget is nearly spent (``ratelimit-remaining``)."""
    left = response.headers.get("ratelimit-remaining") or response.headers.get("x-rate-limit-remaining")
    limit = response.headers.get("ratelimit-limit") or response.headers.get("x-rate-limit")
    if left and limit and left.isdigit() and limit.isdigit() and int(left) * 10 <= int(limit):
        _log.warning("zendesk: %s of %s API requests left this minute", left, limit)


def _explain(response: HttpResponse) -> str | None:
    """Zendesk's ``{"error", "description", "details": {field: [{"description"}]}}`` as one line."""
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    error, description = data.get("error"), data.get("description")
    if isinstance(error, dict):  # newer endpoints: {"error": {"title", "message"}}
        description = description or error.get("message")
        error = error.get("title")
    parts = [p for p in (error, description) if isinstance(p, str) and p]
    details = data.get("details")
    if isinstance(details, dict):
        for name, problems in list(details.items())[:5]:
            for problem in (problems if isinstance(problems, list) else [problems])[:3]:
                text = problem.get("description") if isinstance(problem, dict) else problem
                if isinstance(text, str) and text:
                    parts.append(f"{name}: {text}")
    return "; ".join(parts) or None


def _str(value: object) -> str:
    return str(value).strip() if value is not None and not isinstance(value, bool) else ""


def _tags(value: object) -> list[str]:
    return list(dict.fromkeys(normal_tag(t) for t in _list(value)))


def _list(value: object) -> list[str]:
    if value is None:
        return []
    items = (
        value.split(",") if isinstance(value, str) else value if isinstance(value, list | tuple) else [value]
    )
    return [s for s in (_str(v) for v in items) if s]


def _pairs(raw: str) -> dict[str, str]:
    """``team=id,team=id`` from one setting; the config model checks the ids."""
    pairs: dict[str, str] = {}
    for i, item in enumerate(p.strip() for p in raw.split(",")):
        if not item:
            continue
        team, sep, gid = item.partition("=")
        if not sep or not team.strip() or not gid.strip():
            raise ConfigError(f"BATON_ZENDESK_GROUPS: entry {i + 1} is not team=group-id")
        pairs[team.strip()] = gid.strip()
    return pairs
