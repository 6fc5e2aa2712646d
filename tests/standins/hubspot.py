"""A HubSpot CRM v3 stand-in: the endpoints the HubSpot connector uses, as HubSpot documents them.

* Auth: ``Authorization: Bearer <token>`` (a private app's token); none or another → 401
  ``{"status": "error", "message": "Authentication credentials not found...", "correlationId",
  "category": "INVALID_AUTHENTICATION"}``. A token without the scope an endpoint needs → 403
  ``MISSING_SCOPES`` naming it in ``errors[].context.requiredGranularScopes``: ``tickets`` for
  tickets, ``crm.objects.contacts.write`` / ``.read`` for notes (the notes guide's scopes).
  Errors follow https://developers.hubspot.com/docs/api-reference/error-handling.
* Rate limits (https://developers.hubspot.com/docs/api/usage-details): a rolling window of
  ``window_limit`` calls per ``window_ms``; answers carry ``X-HubSpot-RateLimit-Max``,
  ``-Remaining`` and ``-Interval-Milliseconds``; past it → 429 ``{"status": "error", "message":
  "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT", "policyName":
  "TEN_SECONDLY_ROLLING", "correlationId", "requestId"}`` without Retry-After. ``daily_limit``
  likewise with ``policyName`` ``DAILY``. Search has its own ``search_per_second`` limit and its
  answers carry no rate-limit headers (an assumption on its 429 body: ``policyName``
  ``SECONDLY``).
* ``PATCH /crm/v3/objects/tickets/<id>`` (https://developers.hubspot.com/docs/api/crm/tickets):
  ``{"properties": {...}}``; unknown property → 400 ``PROPERTY_DOESNT_EXIST``;
  ``hs_pipeline_stage`` not a stage of the ticket's pipeline (default pipeline ``0``: ``1`` New,
  ``2`` Waiting on contact, ``3`` Waiting on us, ``4`` Closed), ``hs_ticket_priority`` not an
  option (``LOW``, ``MEDIUM``, ``HIGH``) → 400 ``INVALID_OPTION``; an unknown owner → 400
  ``INVALID_OWNER_ID``; an unknown ticket → 404 ``OBJECT_NOT_FOUND``. Answers 200 with the ticket.
* ``POST /crm/v3/objects/notes`` (https://developers.hubspot.com/docs/api/crm/notes):
  ``hs_timestamp`` required, ``hs_note_body`` at most 65,536 characters; ``associations`` with
  HUBSPOT_DEFINED type 190 (note to company) or 228 (note to ticket) to existing records, else 400
  (an assumption on the exact body). Answers 201 with the note.
* ``POST /crm/v3/objects/notes/search`` (https://developers.hubspot.com/docs/api/crm/search):
  filter groups of ``EQ`` / ``CONTAINS_TOKEN`` filters (tokens are runs of letters and digits,
  case-insensitive, ``*`` a trailing wildcard); ``limit`` at most 200. Search is eventually
  consistent: with ``index_lag`` on, new notes are invisible to it until ``reindex()``.
* ``GET /account-info/v3/details``: ``portalId``, ``uiDomain`` and the rest of the account's details.

``lost_response(path)`` is the fault "HubSpot acted, the answer never arrived": the request takes
effect, then the connection closes without a response.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.standins.server import Fault, Received, Reply, StandIn

__all__ = ["ALL_SCOPES", "HubSpotStandIn", "Note"]

ALL_SCOPES = frozenset({"tickets", "crm.objects.contacts.read", "crm.objects.contacts.write"})
_TICKET_PROPERTIES = {
    "subject",
    "content",
    "hs_pipeline",
    "hs_pipeline_stage",
    "hs_ticket_priority",
    "hs_ticket_category",
    "hubspot_owner_id",
}
_NOTE_PROPERTIES = {"hs_note_body", "hs_timestamp", "hubspot_owner_id", "hs_attachment_ids"}
_COMPANY, _TICKET = 190, 228
_AFTER_EFFECT = Reply(599, b"the effect happened; the answer is lost")


@dataclass
class Note:
    id: str
    body: str
    timestamp: str
    associations: list[tuple[int, str]] = field(default_factory=list)


class HubSpotStandIn(StandIn):
    def __init__(
        self,
        token: str,
        *,
        scopes: Iterable[str] = ALL_SCOPES,
        portal_id: int = 4242,
        window_limit: int = 190,
        window_ms: int = 10_000,
        daily_limit: int = 625_000,
        search_per_second: int = 5,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        super().__init__(tls=tls)
        self.token = token
        self.scopes = set(scopes)
        self.portal_id = portal_id
        self.window_limit, self.window_ms, self.daily_limit = window_limit, window_ms, daily_limit
        self.search_per_second = search_per_second
        self.tickets: dict[str, dict[str, str]] = {}
        self.companies: set[str] = set()
        self.owners: set[str] = set()
        self.pipelines = {"0": {"1", "2", "3", "4"}}
        self.priorities = {"LOW", "MEDIUM", "HIGH"}
        self.notes: dict[str, Note] = {}
        self.index_lag = False
        self._unindexed: set[str] = set()
        self._calls: deque[float] = deque()
        self._searches: deque[float] = deque()
        self._daily = 0
        self._seq = 1000
        self._after_effect = threading.local()

    # -- the account ---------------------------------------------------------------------------

    def _id(self) -> str:
        self._seq += 1
        return str(self._seq)

    def add_ticket(self, **properties: str) -> str:
        ticket = self._id()
        self.tickets[ticket] = {"hs_pipeline": "0", "hs_pipeline_stage": "1", **properties}
        return ticket

    def add_company(self) -> str:
        company = self._id()
        self.companies.add(company)
        return company

    def add_owner(self) -> str:
        owner = self._id()
        self.owners.add(owner)
        return owner

    def reindex(self) -> None:
        with self._lock:
            self._unindexed.clear()

    def calls(self, method: str, path: str) -> list[Received]:
        return [r for r in self.requests if r.method == method and r.path == path]

    @staticmethod
    def lost_response(path: str | None = None) -> Fault:
        """The request takes effect, then the connection closes without an answer."""
        return Fault("close", reply=_AFTER_EFFECT, path=path)

    def _take_fault(self, path: str, body: bytes) -> Fault | None:
        fault = super()._take_fault(path, body)
        self._after_effect.active = fault is not None and fault.reply is _AFTER_EFFECT
        return fault

    def _record(self, request: Received) -> None:
        super()._record(request)
        if getattr(self._after_effect, "active", False):
            self._after_effect.active = False
            self._handle(request)  # the effect; the base then drops the connection unanswered

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, request: Received) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
                "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        search = request.path.endswith("/search")
        limited = self._limit(search)
        if limited is not None:
            return limited
        reply = self._route(request)
        if search:
            return reply
        used = len(self._calls)
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.window_ms),
            "X-HubSpot-RateLimit-Max": str(self.window_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(self.window_limit - used, 0)),
        }
        return Reply(reply.status, reply.body, {**reply.headers, **headers})

    def _limit(self, search: bool) -> Reply | None:
        now = time.monotonic()
        self._daily += 1
        if self._daily > self.daily_limit:
            return _rate_limited("DAILY", "daily", {})
        calls, span, limit = (
            (self._searches, 1.0, self.search_per_second)
            if search
            else (self._calls, self.window_ms / 1000, self.window_limit)
        )
        while calls and calls[0] <= now - span:
            calls.popleft()
        if len(calls) >= limit:
            if search:
                return _rate_limited("SECONDLY", "secondly", {})
            return _rate_limited(
                "TEN_SECONDLY_ROLLING",
                "ten_secondly_rolling",
                {
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.window_ms),
                    "X-HubSpot-RateLimit-Max": str(self.window_limit),
                    "X-HubSpot-RateLimit-Remaining": "0",
                },
            )
        calls.append(now)
        return None

    def _route(self, request: Received) -> Reply:
        path, method = request.path, request.method
        if path == "/account-info/v3/details" and method == "GET":
            return Reply.of(
                200,
                {
                    "portalId": self.portal_id,
                    "accountType": "STANDARD",
                    "timeZone": "US/Eastern",
                    "companyCurrency": "USD",
                    "additionalCurrencies": [],
                    "utcOffset": "-05:00",
                    "utcOffsetMilliseconds": -18_000_000,
                    "uiDomain": "app.hubspot.com",
                    "dataHostingLocation": "na1",
                },
            )
        body: Any = None
        if method in ("POST", "PATCH"):
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                return _error(400, "VALIDATION_ERROR", "Invalid input JSON on line 1")
            if not isinstance(body, dict):
                return _error(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        ticket = re.fullmatch(r"/crm/v3/objects/tickets/([^/]+)", path)
        if ticket and method == "PATCH":
            return self._scoped("tickets") or self._update_ticket(ticket.group(1), body)
        if path == "/crm/v3/objects/notes" and method == "POST":
            return self._scoped("crm.objects.contacts.write") or self._create_note(body)
        if path == "/crm/v3/objects/notes/search" and method == "POST":
            return self._scoped("crm.objects.contacts.read") or self._search(body)
        return _error(404, "OBJECT_NOT_FOUND", "resource not found")

    def _scoped(self, scope: str) -> Reply | None:
        if scope in self.scopes:
            return None
        return Reply.of(
            403,
            {
                "status": "error",
                "message": "This app hasn't been granted all required scopes to make this call. "
                "Read more about required scopes here: https://developers.hubspot.com/scopes.",
                "correlationId": str(uuid.uuid4()),
                "errors": [
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [scope]},
                    }
                ],
                "links": {"scopes": "https://developers.hubspot.com/scopes"},
                "category": "MISSING_SCOPES",
            },
        )

    # -- tickets -------------------------------------------------------------------------------

    def _update_ticket(self, ticket_id: str, body: dict[str, Any]) -> Reply:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return _error(
                404, "OBJECT_NOT_FOUND", f"Object not found.  objectId are usually numeric. {ticket_id}"
            )
        properties = body.get("properties")
        if not isinstance(properties, dict):
            return _error(400, "VALIDATION_ERROR", "Invalid input JSON: 'properties' is required")
        problems = [
            _problem(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST")
            for name in properties
            if name not in _TICKET_PROPERTIES
        ]
        pipeline = str(properties.get("hs_pipeline") or ticket["hs_pipeline"])
        stage = properties.get("hs_pipeline_stage")
        if "hs_pipeline" in properties and pipeline not in self.pipelines:
            problems.append(_problem("hs_pipeline", f"{pipeline} is not a valid pipeline", "INVALID_OPTION"))
        elif stage is not None and str(stage) not in self.pipelines.get(pipeline, set()):
            allowed = sorted(self.pipelines.get(pipeline, set()))
            problems.append(
                _problem(
                    "hs_pipeline_stage",
                    f"{stage} was not one of the allowed options: {allowed} for pipeline {pipeline}",
                    "INVALID_OPTION",
                )
            )
        priority = properties.get("hs_ticket_priority")
        if priority is not None and priority not in self.priorities:
            problems.append(
                _problem(
                    "hs_ticket_priority",
                    f"{priority} was not one of the allowed options: {sorted(self.priorities)}",
                    "INVALID_OPTION",
                )
            )
        owner = properties.get("hubspot_owner_id")
        if owner is not None and str(owner) not in self.owners:
            problems.append(
                _problem("hubspot_owner_id", f"{owner} is not a valid owner id", "INVALID_OWNER_ID")
            )
        if problems:
            return _error(400, "VALIDATION_ERROR", f"Property values were not valid: {json.dumps(problems)}")
        ticket.update({k: str(v) for k, v in properties.items()})
        return Reply.of(200, _object(ticket_id, ticket))

    # -- notes ---------------------------------------------------------------------------------

    def _create_note(self, body: dict[str, Any]) -> Reply:
        properties = body.get("properties")
        if not isinstance(properties, dict):
            return _error(400, "VALIDATION_ERROR", "Invalid input JSON: 'properties' is required")
        for name in properties:
            if name not in _NOTE_PROPERTIES:
                problem = _problem(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST")
                return _error(
                    400, "VALIDATION_ERROR", f"Property values were not valid: {json.dumps([problem])}"
                )
        if not properties.get("hs_timestamp"):
            return _error(400, "VALIDATION_ERROR", "Missing required property: hs_timestamp")
        text = str(properties.get("hs_note_body") or "")
        if len(text) > 65_536:
            return _error(400, "VALIDATION_ERROR", "hs_note_body is longer than 65536 characters")
        associations: list[tuple[int, str]] = []
        for item in body.get("associations") or []:
            try:
                to = str(item["to"]["id"])
                (kind,) = [
                    t["associationTypeId"]
                    for t in item["types"]
                    if t["associationCategory"] == "HUBSPOT_DEFINED"
                ]
            except (KeyError, TypeError, ValueError):
                return _error(400, "VALIDATION_ERROR", "Invalid input JSON: malformed association")
            known = {_COMPANY: self.companies, _TICKET: set(self.tickets)}.get(kind)
            if known is None:
                return _error(400, "VALIDATION_ERROR", f"{kind} is not a valid association type for notes")
            if to not in known:
                return _error(
                    400, "VALIDATION_ERROR", f"One or more associations are invalid: {to} does not exist"
                )
            associations.append((kind, to))
        note = Note(self._id(), text, str(properties["hs_timestamp"]), associations)
        self.notes[note.id] = note
        if self.index_lag:
            self._unindexed.add(note.id)
        return Reply.of(201, _object(note.id, {"hs_note_body": text, "hs_timestamp": note.timestamp}))

    def _search(self, body: dict[str, Any]) -> Reply:
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 0 < limit <= 200:
            return _error(400, "VALIDATION_ERROR", "limit must be between 1 and 200")
        groups = body.get("filterGroups") or [{"filters": []}]
        try:
            found = [
                note
                for note in self.notes.values()
                if note.id not in self._unindexed and any(_matches(note, g["filters"]) for g in groups)
            ]
        except (KeyError, TypeError, ValueError) as exc:
            return _error(400, "VALIDATION_ERROR", f"There was a problem with the request: {exc}")
        wanted = body.get("properties") or ["hs_note_body"]
        results = [
            _object(
                n.id,
                {
                    k: v
                    for k, v in {"hs_note_body": n.body, "hs_timestamp": n.timestamp}.items()
                    if k in wanted
                },
            )
            for n in found[:limit]
        ]
        return Reply.of(200, {"total": len(found), "results": results})


def _matches(note: Note, filters: list[dict[str, Any]]) -> bool:
    values = {"hs_note_body": note.body, "hs_timestamp": note.timestamp, "hs_object_id": note.id}
    for f in filters:
        value, wanted, operator = values.get(f["propertyName"], ""), str(f["value"]).lower(), f["operator"]
        if operator == "EQ":
            if value.lower() != wanted:
                return False
        elif operator == "CONTAINS_TOKEN":
            tokens = re.findall(r"[a-z0-9]+", value.lower())
            if wanted.endswith("*"):
                if not any(t.startswith(wanted[:-1]) for t in tokens):
                    return False
            elif wanted not in tokens:
                return False
        else:
            raise ValueError(f"unsupported operator {operator}")
    return True


def _object(object_id: str, properties: dict[str, str]) -> dict[str, Any]:
    stamp = "2026-03-02T09:00:00.000Z"
    return {
        "id": object_id,
        "properties": {**properties, "hs_object_id": object_id},
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
    }


def _problem(name: str, message: str, code: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": code, "name": name}


def _error(status: int, category: str, message: str) -> Reply:
    return Reply.of(
        status,
        {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category},
    )


def _rate_limited(policy: str, name: str, headers: dict[str, str]) -> Reply:
    body = {
        "status": "error",
        "message": f"You have reached your {name} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }
    return Reply.of(429, body, headers)
