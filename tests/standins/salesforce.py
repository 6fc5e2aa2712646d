"""A Salesforce REST API stand-in: the sObject resources the Salesforce connector uses.

As documented (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/):

* Auth: ``Authorization: Bearer <token>``; none or another → 401
  ``[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]``. Every error
  body is a list of ``{"message", "errorCode", "fields"}`` (errorcodes.htm).
* The org's API limit: each authenticated call counts; past ``api_limit`` → 403
  ``REQUEST_LIMIT_EXCEEDED`` "TotalRequests Limit exceeded."; every answer carries
  ``Sforce-Limit-Info: api-usage=<used>/<limit>`` (headers_api_usage.htm).
* ``PATCH /services/data/vXX.X/sobjects/Case/<id>`` (dome_update_fields.htm): 204 and no body;
  unknown fields → 400 ``INVALID_FIELD``; ``Status`` / ``Priority`` outside the org's picklists →
  400 ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`` (an assumption: it treats both as restricted
  picklists); ``OwnerId`` not a known User or Queue → 400 ``INVALID_CROSS_REFERENCE_KEY``; an
  unknown Case → 404 ``NOT_FOUND``.
* ``POST /sobjects/Task`` (dome_sobject_create.htm): 201 ``{"id", "success", "errors"}``.
* ``PATCH /sobjects/Task/<field>/<value>`` (dome_upsert.htm): creates (201) or updates (200; 204
  without a body before API 46.0) the Task whose external ID ``field`` equals ``value``, case
  insensitively; ``{"id", "success", "errors", "created"}`` (``created`` from 46.0); a field that
  is not the org's external ID field → 404 ``NOT_FOUND`` "Provided external ID field does not
  exist or is not accessible"; the field in the body → 400 ``INVALID_FIELD``; several matches →
  300 with the matching records' URLs. ``GET`` on it reads the Task (``?fields=``).
* Task validation: ``Status`` in the Task picklist, ``ActivityDate`` as ``YYYY-MM-DD``
  (``JSON_PARSER_ERROR``), ``Subject`` at most 255 characters (``STRING_TOO_LONG``), ``WhatId``
  an existing Account or Case (``INVALID_CROSS_REFERENCE_KEY``, an assumption on the code).

``lost_response(path)`` is the fault "Salesforce acted, the answer never arrived": the request
takes effect, then the connection closes without a response.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from tests.standins.server import Fault, Received, Reply, StandIn

__all__ = ["SalesforceStandIn", "Task"]

_PATH = re.compile(r"^/services/data/v(\d+)\.\d/sobjects/(\w+)(?:/([^/]+))?(?:/([^/]+))?$")
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_CASE_FIELDS = {"Status", "Priority", "OwnerId", "Subject", "Description"}
_TASK_FIELDS = {"Subject", "Description", "Status", "ActivityDate", "WhatId", "WhoId", "Priority", "OwnerId"}
_TASK_STATUSES = {"Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"}
_AFTER_EFFECT = Reply(599, b"the effect happened; the answer is lost")


@dataclass
class Task:
    id: str
    fields: dict[str, Any]
    key: str | None = None
    updates: int = 0


@dataclass
class _Org:
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: set[str] = field(default_factory=set)
    owners: set[str] = field(default_factory=set)
    tasks: dict[str, Task] = field(default_factory=dict)


class SalesforceStandIn(StandIn):
    def __init__(
        self,
        token: str,
        *,
        api_limit: int = 15_000,
        external_id_field: str | None = "Baton_Key__c",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        super().__init__(tls=tls)
        self.token = token
        self.api_limit = api_limit
        self.used = 0
        self.external_id_field = external_id_field
        self.statuses = {"New", "Working", "Escalated", "On Hold", "Closed"}
        self.priorities = {"High", "Medium", "Low"}
        self.org = _Org()
        self._seq = 0
        self._after_effect = threading.local()

    # -- the org -------------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:012d}AAA"

    def add_case(self, **fields: Any) -> str:
        case = self._id("500")
        self.org.cases[case] = {"Status": "New", "Priority": "Medium", "OwnerId": None, **fields}
        return case

    def add_account(self) -> str:
        account = self._id("001")
        self.org.accounts.add(account)
        return account

    def add_owner(self, prefix: str = "005") -> str:
        owner = self._id(prefix)
        self.org.owners.add(owner)
        return owner

    @property
    def tasks(self) -> list[Task]:
        return list(self.org.tasks.values())

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
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid", fields=None)
        self.used += 1
        limit = {"Sforce-Limit-Info": f"api-usage={self.used}/{self.api_limit}"}
        if self.used > self.api_limit:
            return _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", headers=limit)
        reply = self._route(request)
        return Reply(reply.status, reply.body, {**reply.headers, **limit})

    def _route(self, request: Received) -> Reply:
        match = _PATH.match(request.path)
        if match is None:
            return _not_found()
        major, sobject, first, second = match.groups()
        version = int(major)
        if request.method in ("POST", "PATCH"):
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                return _error(400, "JSON_PARSER_ERROR", "Unexpected character: was expecting a JSON value")
            if not isinstance(body, dict):
                return _error(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of SObject")
        else:
            body = {}
        if sobject == "Case" and first and not second:
            if request.method != "PATCH":
                return _not_allowed(request.method, "GET,HEAD,PATCH,DELETE")
            return self._update_case(first, body)
        if sobject == "Task" and not first:
            if request.method != "POST":
                return _not_allowed(request.method, "GET,HEAD,POST")
            return self._create_task(body)
        if sobject == "Task" and first and second:
            if first != self.external_id_field:
                return _error(
                    404,
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {first}",
                )
            if request.method == "GET":
                return self._read_task(second, request.query.get("fields"))
            if request.method != "PATCH":
                return _not_allowed(request.method, "GET,HEAD,PATCH,DELETE,POST")
            return self._upsert_task(first, second, body, version)
        return _not_found()

    # -- cases ---------------------------------------------------------------------------------

    def _update_case(self, case_id: str, body: dict[str, Any]) -> Reply:
        if not _ID.match(case_id):
            return _error(
                404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {case_id}"
            )
        case = self.org.cases.get(case_id)
        if case is None:
            return _not_found()
        for name, value in body.items():
            if name not in _CASE_FIELDS:
                return _error(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Case")
            picklist = {"Status": self.statuses, "Priority": self.priorities}.get(name)
            if picklist is not None and value not in picklist:
                return _error(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{name}: bad value for restricted picklist field: {value}",
                    fields=(name,),
                )
            if name == "OwnerId" and value not in self.org.owners:
                return _error(
                    400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", fields=("OwnerId",)
                )
        case.update(body)
        return Reply(204)

    # -- tasks ---------------------------------------------------------------------------------

    def _task_problem(self, body: dict[str, Any], *, allow_key: bool) -> Reply | None:
        allowed = _TASK_FIELDS | ({self.external_id_field} if allow_key and self.external_id_field else set())
        for name in body:
            if name not in allowed:
                return _error(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Task")
        if "Status" in body and body["Status"] not in _TASK_STATUSES:
            return _error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Status: bad value for restricted picklist field: {body['Status']}",
                fields=("Status",),
            )
        if len(str(body.get("Subject") or "")) > 255:
            return _error(
                400, "STRING_TOO_LONG", "Subject: data value too large (max length=255)", fields=("Subject",)
            )
        if "ActivityDate" in body:
            try:
                date.fromisoformat(str(body["ActivityDate"]))
            except ValueError:
                return _error(
                    400,
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of date from {body['ActivityDate']}",
                )
        what = body.get("WhatId")
        if what is not None and what not in self.org.accounts and what not in self.org.cases:
            return _error(
                400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", fields=("WhatId",)
            )
        return None

    def _create_task(self, body: dict[str, Any]) -> Reply:
        problem = self._task_problem(body, allow_key=True)
        if problem is not None:
            return problem
        task = Task(self._id("00T"), {"Status": "Not Started", **body})
        if self.external_id_field:
            task.key = body.get(self.external_id_field)
        self.org.tasks[task.id] = task
        return Reply.of(201, {"id": task.id, "success": True, "errors": []})

    def _matching(self, value: str) -> list[Task]:
        return [t for t in self.org.tasks.values() if t.key is not None and t.key.lower() == value.lower()]

    def _upsert_task(self, field_name: str, value: str, body: dict[str, Any], version: int) -> Reply:
        if field_name in body or "Id" in body:
            return _error(
                400,
                "INVALID_FIELD",
                f"Unable to create/update fields: {field_name}. Please check the security settings "
                "of this field and verify that it is read/write for your profile or permission set.",
                fields=(field_name,),
            )
        problem = self._task_problem(body, allow_key=False)
        if problem is not None:
            return problem
        matches = self._matching(value)
        if len(matches) > 1:
            return Reply.of(300, [f"/services/data/v{version}.0/sobjects/Task/{t.id}" for t in matches])
        if matches:
            task = matches[0]
            task.fields.update(body)
            task.updates += 1
            if version < 46:
                return Reply(204)
            return Reply.of(200, {"id": task.id, "success": True, "errors": [], "created": False})
        task = Task(self._id("00T"), {"Status": "Not Started", **body}, key=value)
        self.org.tasks[task.id] = task
        answer: dict[str, Any] = {"id": task.id, "success": True, "errors": []}
        if version >= 46:
            answer["created"] = True
        return Reply.of(201, answer)

    def _read_task(self, value: str, fields: str | None) -> Reply:
        matches = self._matching(value)
        if not matches:
            return _not_found()
        task = matches[0]
        record = {"Id": task.id, **task.fields}
        wanted = [f.strip() for f in (fields or "").split(",") if f.strip()]
        if wanted:
            record = {k: v for k, v in record.items() if k in wanted}
        return Reply.of(200, {"attributes": {"type": "Task", "url": f"/sobjects/Task/{task.id}"}, **record})


def _error(
    status: int,
    code: str,
    message: str,
    *,
    fields: tuple[str, ...] | None = (),
    headers: dict[str, str] | None = None,
) -> Reply:
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = list(fields)
    return Reply.of(status, [item], headers)


def _not_found() -> Reply:
    return _error(404, "NOT_FOUND", "The requested resource does not exist")


def _not_allowed(method: str, allowed: str) -> Reply:
    return _error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}")
