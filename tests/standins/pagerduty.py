"""A PagerDuty Events API v2 stand-in (https://developer.pagerduty.com/docs/events-api-v2/overview/).

``POST /v2/enqueue`` with a JSON event:

* 202 ``{"status": "success", "message": "Event processed", "dedup_key": ...}`` when valid; a
  trigger without ``dedup_key`` gets a generated one;
* 400 ``{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`` for
  bad JSON, an unknown routing key (an assumption: PagerDuty's exact answer to a well-formed but
  unknown key is not documented), a bad ``event_action`` or ``severity``, a missing
  ``payload.summary``/``source``/``severity`` on a trigger, a missing ``dedup_key`` on
  acknowledge/resolve, a ``dedup_key`` over 255 or a ``summary`` over 1024 characters.

De-duplication as documented: a trigger for an open alert's ``dedup_key`` is added to that alert
(``triggers`` counts them) instead of opening another; acknowledge/resolve apply to the open alert
only when sent with the routing key that opened it, and are otherwise dropped; a trigger after a
resolve opens a new alert. Rate limits are injected: ``Fault.rate_limited("30")`` gives the
documented 429.

Each alert is its own incident here (no alert grouping), and :func:`incident_webhook`
writes the v3 webhook PagerDuty would then send about it
(https://developer.pagerduty.com/docs/webhooks/v3-overview/): ``event.data`` is the
``incident``, whose ``incident_key`` is the ``dedup_key`` of the event that opened it, or, for
``incident.annotated``, an ``incident_note`` naming the incident by its id only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.standins.server import Received, Reply, StandIn

__all__ = ["Alert", "PagerDutyStandIn", "incident_webhook"]

_SEVERITIES = {"critical", "error", "warning", "info"}
_ACTIONS = {"trigger", "acknowledge", "resolve"}


@dataclass
class Alert:
    dedup_key: str
    routing_key: str
    summary: str
    severity: str
    incident: int
    status: str = "triggered"
    triggers: int = 1

    @property
    def incident_id(self) -> str:
        """PagerDuty's id of the incident (seven characters, as PagerDuty's are)."""
        return f"Q{self.incident:06X}"


class PagerDutyStandIn(StandIn):
    def __init__(self, routing_keys: Iterable[str], *, tls: tuple[Path, Path] | None = None) -> None:
        super().__init__(tls=tls)
        self.routing_keys = set(routing_keys)
        self.alerts: list[Alert] = []
        self.dropped: list[dict[str, Any]] = []

    def open_alert(self, dedup_key: str) -> Alert | None:
        return next((a for a in self.alerts if a.dedup_key == dedup_key and a.status != "resolved"), None)

    def handle(self, request: Received) -> Reply:
        if request.path != "/v2/enqueue":
            return Reply.of(404, {"status": "error", "message": "Not Found"})
        if request.method != "POST":
            return Reply.of(405, {"status": "error", "message": "Method Not Allowed"})
        try:
            event = json.loads(request.body)
        except ValueError:
            return _invalid(["Invalid JSON"])
        if not isinstance(event, dict):
            return _invalid(["Event must be a JSON object"])
        errors = self._problems(event)
        if errors:
            return _invalid(errors)
        action, key = event["event_action"], event.get("dedup_key")
        alert = self.open_alert(key) if key else None
        if action == "trigger":
            key = key or uuid.uuid4().hex
            if alert is not None and alert.routing_key == event["routing_key"]:
                alert.triggers += 1
            else:
                payload = event["payload"]
                self.alerts.append(
                    Alert(
                        key,
                        event["routing_key"],
                        payload["summary"],
                        payload["severity"],
                        len(self.alerts) + 1,
                    )
                )
        elif alert is not None and alert.routing_key == event["routing_key"]:
            alert.status = "acknowledged" if action == "acknowledge" else "resolved"
        else:
            self.dropped.append(event)
        return Reply.of(202, {"status": "success", "message": "Event processed", "dedup_key": key})

    def _problems(self, event: dict[str, Any]) -> list[str]:
        errors: list[str] = []
        if event.get("routing_key") not in self.routing_keys:
            errors.append("Invalid routing key")
        action = event.get("event_action")
        if action not in _ACTIONS:
            errors.append("'event_action' is invalid")
        key = event.get("dedup_key")
        if key is not None and (not isinstance(key, str) or len(key) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not key:
            errors.append("'dedup_key' is missing or blank")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                return [*errors, "'payload' is missing"]
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors.append("'payload.summary' is missing or blank")
            elif len(summary) > 1024:
                errors.append("'payload.summary' is longer than 1024 characters")
            if not isinstance(payload.get("source"), str) or not payload["source"].strip():
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in _SEVERITIES:
                errors.append("'payload.severity' is invalid (must be critical, error, warning or info)")
        return errors


def _invalid(errors: list[str]) -> Reply:
    return Reply.of(400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors})


def incident_webhook(alert: Alert, event_type: str, *, event_id: str, note: str = "") -> bytes:
    """The body of the v3 webhook PagerDuty sends about ``alert``'s incident."""
    url = f"https://acme.pagerduty.com/incidents/{alert.incident_id}"
    incident: dict[str, Any] = {
        "id": alert.incident_id,
        "type": "incident",
        "self": f"https://api.pagerduty.com/incidents/{alert.incident_id}",
        "html_url": url,
        "number": alert.incident,
        "status": alert.status,
        "incident_key": alert.dedup_key,
        "title": alert.summary,
        "urgency": "high" if alert.severity in ("critical", "error") else "low",
        "priority": None,
        "assignees": [],
    }
    data: dict[str, Any] = incident
    if event_type == "incident.annotated":
        reference = {"id": alert.incident_id, "type": "incident_reference", "html_url": url}
        data = {"incident": reference, "id": "PNOTE01", "content": note, "type": "incident_note"}
    event = {
        "id": event_id,
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": "2026-03-02T09:10:00Z",
        "agent": None,
        "client": {"name": "PagerDuty"},
        "data": data,
    }
    return json.dumps({"event": event}).encode()
