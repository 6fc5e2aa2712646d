"""Salesforce through the REST API with an OAuth access token
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/).

Kinds of action
    ``sync`` / ``status``
        Update the Case (``PATCH /services/data/<version>/sobjects/Case/<id>``, answered ``204 No
        Content``): ``Status`` from Baton's stage through ``status_values``, ``Priority`` through
        ``priority_values``, ``OwnerId`` from ``assignee`` (the person's Salesforce identity: a
        User or Queue id). ``sync`` reads ``params.changes``; ``status`` reads ``status``,
        ``priority``, ``assignee``, ``team`` and ``tier`` from the params themselves. The Case is
        ``params.case_id``, else ``params.external_id``, else ``params.links["salesforce"]``. A
        Case has no team or tier: when those change they are logged, with ``params.note``, as a
        completed Task on the Case (as ``activity`` does).
    ``activity``
        A completed Task (``Subject``, ``Description``, ``Status`` ``task_status``,
        ``ActivityDate`` ``params.date`` or today in UTC) related (``WhatId``) to
        ``params.account_id``, else to the Case.

Idempotency
    A Case update is idempotent by nature. sObject creation takes no idempotency key, so a Task
    is upserted by external ID (``PATCH /sobjects/Task/<task_external_id_field>/<action key>``,
    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm):
    the first call creates it (201), a retry updates the same Task (200, or 204 before API 46.0).
    The field must exist: a Text(64) custom Activity field marked *External ID* and *Unique*
    (``Baton_Key__c`` by default). With ``task_external_id_field=None`` Tasks are plainly created
    (``POST /sobjects/Task``) and a retry after a lost answer creates a second Task.

Errors
    The body is ``[{"message", "errorCode", "fields"}]``
    (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
    ``401 INVALID_SESSION_ID`` is permanent: the token expired or was revoked, and Baton does not
    refresh it. ``403 REQUEST_LIMIT_EXCEEDED`` is transient: the org's rolling 24-hour API limit
    (``TotalRequests``) waits ``limit_retry_after``; concurrency limits use the outbox backoff.
    ``UNABLE_TO_LOCK_ROW`` is transient whatever its status; other 4xx (``NOT_FOUND``,
    ``MALFORMED_ID``, a value outside a restricted picklist...) are permanent; 5xx, 409, 429 and
    network failures transient. The token is masked out of every message.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from baton.clock import Clock, SystemClock
from baton.connectors.addresses import Resolver
from baton.connectors.base import Delivery, OutboundAction
from baton.connectors.config import HttpConfig, _url, configured, http_config
from baton.connectors.http import HttpResponse, OutboundHttp
from baton.connectors.params import param_str as _str
from baton.errors import PermanentConnectorError, TransientConnectorError
from baton.model import ExternalLink
from baton.settings import Settings

__all__ = ["SalesforceConfig", "SalesforceConnector", "case_id", "reading"]

STAGES = ("new", "open", "pending", "escalated", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
_FIELDS = ("assignee", "team", "tier", "priority", "status")
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DAILY = "TotalRequests"  # the message of the org's 24-hour limit, as opposed to concurrency limits

_STATUS_VALUES = {
    "new": "New",
    "open": "Working",
    "escalated": "Escalated",
    "pending": "On Hold",
    "solved": "Closed",
    "closed": "Closed",
}
# Salesforce's default Case priorities are High, Medium and Low; urgent shares High.
_PRIORITY_VALUES = {"low": "Low", "normal": "Medium", "high": "High", "urgent": "High"}

_HINTS = {
    "INVALID_SESSION_ID": "the access token expired or was revoked; Baton does not refresh it: "
    "set BATON_SALESFORCE_ACCESS_TOKEN to a new one",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": "the value is not in the org's picklist; "
    "check status_values / priority_values",
    "REQUEST_LIMIT_EXCEEDED": "the org's API request limit",
}


class SalesforceConfig(BaseModel):
    """One Salesforce org, reached with an OAuth access token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="Instance URL, e.g. https://acme.my.salesforce.com.")
    access_token: SecretStr = Field(description="OAuth access token (sent as a bearer token).")
    api_version: str = Field(default="v61.0", pattern=r"^v\d{2,3}\.\d$")
    status_values: dict[str, str] = Field(
        default_factory=lambda: dict(_STATUS_VALUES), description="Baton stage -> Case Status value."
    )
    priority_values: dict[str, str] = Field(
        default_factory=lambda: dict(_PRIORITY_VALUES), description="Baton priority -> Case Priority."
    )
    task_external_id_field: str | None = Field(
        default="Baton_Key__c",
        pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}__c$",
        description="External ID field of Task that holds the action key; None: plain create.",
    )
    task_status: str = Field(default="Completed", min_length=1, max_length=255)
    limit_retry_after: float = Field(
        default=3_600.0, gt=0, description="Seconds to wait once the org's daily API limit is reached."
    )
    http: HttpConfig = Field(default_factory=HttpConfig)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _url(value)

    @field_validator("access_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("status_values")
    @classmethod
    def _statuses(cls, value: dict[str, str]) -> dict[str, str]:
        return _picklist(value, STAGES)

    @field_validator("priority_values")
    @classmethod
    def _priorities(cls, value: dict[str, str]) -> dict[str, str]:
        return _picklist(value, PRIORITIES)


def _picklist(value: dict[str, str], words: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(value) - set(words))
    if unknown:
        raise ValueError(f"unknown Baton values {unknown}; use {', '.join(words)}")
    if any(not v.strip() or len(v) > 255 for v in value.values()):
        raise ValueError("picklist values must be 1 to 255 characters")
    return {k: v.strip() for k, v in value.items()}


def reading(values: Mapping[str, str], written: str, requested: str) -> str:
    """The Baton word a written vendor value reads back as, so the item's webhook is recognised as
    Baton's own change: the one Baton word mapped to it; when several share it (urgent and high
    both write ``High``), the word that names it (``high``), else the word requested."""
    sharing = [word for word, value in values.items() if value == written]
    if len(sharing) == 1:
        return sharing[0]
    named = written.strip().lower()
    return named if named in sharing else requested


class _Seen:
    """Remembers the failed response of one request, for errors the status alone cannot classify."""

    def __init__(self) -> None:
        self.status = 0
        self.codes: list[str] = []
        self.messages = ""

    def explain(self, response: HttpResponse) -> str | None:
        self.status = response.status
        if response.status == 300:
            return "the external ID matches several records; mark the field Unique"
        data = _json(response)
        items = [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
        parts = []
        for item in items[:5]:
            code, message = str(item.get("errorCode") or ""), str(item.get("message") or "")
            fields = item.get("fields")
            where = f" [{', '.join(map(str, fields))}]" if isinstance(fields, list) and fields else ""
            hint = f" ({_HINTS[code]})" if code in _HINTS else ""
            self.codes.append(code)
            parts.append(f"{code}: {message}{where}{hint}")
        self.messages = " ".join(parts)
        return "; ".join(parts) or None


class SalesforceConnector:
    """Writes Baton's changes to Salesforce Cases and logs activities as Tasks."""

    name = "salesforce"

    def __init__(
        self, config: SalesforceConfig, *, clock: Clock | None = None, resolver: Resolver | None = None
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._token = config.access_token.get_secret_value()
        self.http = OutboundHttp(config.http, clock=self.clock, resolver=resolver, secrets=(self._token,))
        self.http.check_url(config.url)
        self._base = config.url.rstrip("/")
        self._api = f"{self._base}/services/data/{config.api_version}"

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> SalesforceConnector:
        url, token = settings.salesforce_url, settings.salesforce_access_token
        return configured(
            "salesforce",
            SalesforceConfig,
            {
                "url": url,
                "access_token": token,
                "api_version": settings.salesforce_api_version,
                "http": http_config(settings),
            },
            lambda config: cls(config, clock=clock),
            needs={"BATON_SALESFORCE_URL": url, "BATON_SALESFORCE_ACCESS_TOKEN": token},
        )

    def send(self, action: OutboundAction) -> Delivery:
        if action.kind in ("sync", "status"):
            return self._update_case(action)
        if action.kind == "activity":
            return self._activity(action)
        raise PermanentConnectorError(f"salesforce: cannot perform {action.kind!r}")

    def close(self) -> None:
        self.http.close()

    # -- cases -------------------------------------------------------------------------------

    def case_fields(self, changes: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """The Case fields for Baton's ``changes``, and what they read back as in Baton's words."""
        fields: dict[str, str] = {}
        wrote: dict[str, str] = {}
        mapped = (
            ("status", "Status", self.config.status_values),
            ("priority", "Priority", self.config.priority_values),
        )
        for name, field, values in mapped:
            if name not in changes:
                continue
            word = changes[name].lower()
            if word not in values:
                raise PermanentConnectorError(
                    f"salesforce: no Case {field} for {name} {changes[name][:40]!r} "
                    f"(known: {', '.join(values)}; see {name}_values)"
                )
            fields[field] = values[word]
            wrote[name] = reading(values, values[word], word)
        if "assignee" in changes:
            fields["OwnerId"] = _record_id(changes["assignee"], "assignee (a User or Queue id)")
            wrote["assignee"] = changes["assignee"]
        return fields, wrote

    def _update_case(self, action: OutboundAction) -> Delivery:
        case = case_id(action.params)
        if case is None:
            raise PermanentConnectorError(
                f"salesforce: no Case for ticket {action.ticket_id}: the action names no case_id "
                "and the ticket has no salesforce link"
            )
        changes = _changes(action)
        fields, wrote = self.case_fields(changes)
        unmapped = {k: changes[k] for k in ("team", "tier") if k in changes}
        if not fields and not unmapped:
            raise PermanentConnectorError("salesforce: nothing to write (no status, priority, assignee)")
        detail: dict[str, Any] = {"case": case}
        if fields:
            response = self._call("PATCH", f"/sobjects/Case/{case}", fields, what="salesforce update Case")
            detail["fields"] = fields
            detail.update(_usage(response))
        if unmapped:
            note = _str(action.params.get("note")) or "Baton: " + ", ".join(
                f"{k} {v}" for k, v in unmapped.items()
            )
            lines = [note, *(f"{k}: {v}" for k, v in unmapped.items()), f"Baton ticket {action.ticket_id}"]
            task, created = self._log_task(action.key, what=case, subject=note, description="\n".join(lines))
            detail.update(task=task, task_created=created)
        return Delivery(external_id=case, detail=detail, link=self._link("Case", case), wrote=wrote)

    # -- activities ----------------------------------------------------------------------------

    def _activity(self, action: OutboundAction) -> Delivery:
        params = action.params
        case = case_id(params)
        account = _str(params.get("account_id"))
        what = _record_id(account, "account_id") if account else case
        if what is None:
            raise PermanentConnectorError(
                f"salesforce: no account_id and no Case to log the activity of ticket {action.ticket_id} on"
            )
        subject = _str(params.get("subject")) or f"Baton: ticket {action.ticket_id}"
        text = _str(params.get("text"))
        description = "\n\n".join(p for p in (text, f"Baton ticket {action.ticket_id}") if p)
        task, created = self._log_task(
            action.key, what=what, subject=subject, description=description, date=params.get("date")
        )
        return Delivery(
            external_id=task,
            detail={"task": task, "what": what, "created": created},
            link=self._link("Case", case) if case else None,
        )

    def _log_task(
        self, key: str, *, what: str, subject: str, description: str, date: object = None
    ) -> tuple[str, bool]:
        """Upsert (or create) one completed Task; its id and whether this call created it."""
        body = {
            "Subject": subject[:255],
            "Description": description[:32_000],
            "Status": self.config.task_status,
            "ActivityDate": _date(date) or self.clock.now().astimezone(dt.UTC).date().isoformat(),
            "WhatId": what,
        }
        field = self.config.task_external_id_field
        if field is None:
            response = self._call("POST", "/sobjects/Task", body, what="salesforce create Task")
            found = _answered_id(response, "id")
            if found is None:  # created, most likely: a retry would create a second one
                raise PermanentConnectorError(
                    f"salesforce create Task: HTTP {response.status} names no record id; not retried, "
                    "to avoid a duplicate Task (set task_external_id_field to make Tasks idempotent)"
                )
            return found, True
        if not _KEY.match(key):
            raise PermanentConnectorError("salesforce: the action key is not usable as an external ID")
        path = f"/sobjects/Task/{field}/{key}"
        response = self._call("PATCH", path, body, what="salesforce upsert Task")
        found = _answered_id(response, "id")
        if found is None and response.status == 204:  # an update before API 46.0: no body
            found = _answered_id(
                self._call("GET", path, what="salesforce read Task", params={"fields": "Id"}), "Id"
            )
        if found is None:  # retrying is safe: the upsert finds the Task it made
            raise TransientConnectorError(
                f"salesforce upsert Task: HTTP {response.status} names no record id"
            )
        return found, response.status == 201

    # -- the REST API ----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
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
                params=params,
                explain=seen.explain,
            )
        except PermanentConnectorError as exc:
            if "REQUEST_LIMIT_EXCEEDED" in seen.codes:
                daily = _DAILY in seen.messages
                raise TransientConnectorError(
                    str(exc), retry_after=self.config.limit_retry_after if daily else None
                ) from None
            if "UNABLE_TO_LOCK_ROW" in seen.codes:  # another transaction holds the record
                raise TransientConnectorError(str(exc)) from None
            raise

    def _link(self, sobject: str, record: str) -> ExternalLink:
        return ExternalLink(
            system="salesforce", id=record, url=f"{self._base}/lightning/r/{sobject}/{record}/view"
        )


def case_id(params: Mapping[str, Any]) -> str | None:
    """The Case an action is about: ``case_id``, ``external_id`` or the ticket's salesforce link."""
    links = params.get("links")
    linked = links.get("salesforce") if isinstance(links, Mapping) else None
    for value in (params.get("case_id"), params.get("external_id"), linked):
        if text := _str(value):
            return _record_id(text, "case id")
    return None


def _changes(action: OutboundAction) -> dict[str, str]:
    raw = action.params.get("changes") if action.kind == "sync" else action.params
    if not isinstance(raw, Mapping):
        raise PermanentConnectorError("salesforce sync: params.changes is not a mapping")
    return {k: _str(raw.get(k)) for k in _FIELDS if _str(raw.get(k))}


def _record_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise PermanentConnectorError(
            f"salesforce: {what} {value[:40]!r} is not a Salesforce record id (15 or 18 letters and digits)"
        )
    return value


def _answered_id(response: HttpResponse, name: str) -> str | None:
    data = _json(response)
    found = data.get(name) if isinstance(data, dict) else None
    return found if isinstance(found, str) and _ID.match(found) else None


def _usage(response: HttpResponse) -> dict[str, str]:
    """``Sforce-Limit-Info: api-usage=25/15000``: the org's API calls in the last 24 hours."""
    match = re.search(r"api-usage=(\d+/\d+)", response.headers.get("sforce-limit-info", ""))
    return {"api_usage": match.group(1)} if match else {}


def _date(value: object) -> str | None:
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise PermanentConnectorError(f"salesforce: date {str(value)[:40]!r} is not YYYY-MM-DD") from None


def _json(response: HttpResponse) -> Any:
    """The body as JSON, or None. Deeply nested garbage (``[[[[...``) raises RecursionError, not
    ValueError, in the json module: a hostile vendor must not get that far."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None
