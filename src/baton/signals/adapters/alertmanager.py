"""Prometheus Alertmanager: the webhook receiver payload, version 4.

Alertmanager posts one notification per alert group
(https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)::

    {"version": "4", "groupKey": "...", "truncatedAlerts": 0, "status": "firing|resolved",
     "receiver": "...", "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...},
     "externalURL": "...",
     "alerts": [{"status": "firing|resolved", "labels": {...}, "annotations": {...},
                 "startsAt": "<rfc3339>", "endsAt": "<rfc3339>", "generatorURL": "...",
                 "fingerprint": "..."}]}

The group is the ticket: its ``groupKey`` is the external id (hashed when longer than an id may
be), and one notification is one incident however many alerts it carries. Each alert gives one
event, alert.fired or alert.resolved, whose id is the alert's own state, ``fingerprint:status:
startsAt``, not the notification's: Alertmanager repeats a group's notification every
``repeat_interval`` and whenever an alert joins or leaves, and only alerts that changed are news.
Labels and annotations are kept in the event's data; ``severity`` becomes the ticket severity and
a priority (critical and page: urgent, error and high: high, warning: normal, info: low).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from baton.errors import InputError
from baton.model import Event, EventType, ExternalLink, Priority
from baton.signals.adapters._template import normalise
from baton.signals.adapters.base import (
    Delivery,
    Draft,
    build_events,
    clip_id,
    obj,
    parse_time,
    seq,
    text,
)

__all__ = ["AlertmanagerAdapter"]

_PRIORITIES: Final = {
    "critical": Priority.URGENT,
    "page": Priority.URGENT,
    "error": Priority.HIGH,
    "high": Priority.HIGH,
    "warning": Priority.NORMAL,
    "info": Priority.LOW,
    "none": Priority.LOW,
}
_MAX_LABELS: Final = 64


class AlertmanagerAdapter:
    """Alertmanager webhook receivers (entry point ``alertmanager``)."""

    source = "alertmanager"

    def parse(self, delivery: Delivery) -> list[Event]:
        """One event per alert in the notification."""
        body = delivery.payload
        if not isinstance(body, dict):
            raise InputError("an Alertmanager webhook body is a JSON object")
        if text(body, "version") != "4":
            raise InputError('unsupported Alertmanager webhook version (expected "4")')
        group_key = text(body, "groupKey")
        if group_key is None:
            raise InputError("Alertmanager webhook body has no groupKey")
        common = obj(body, "commonAnnotations")
        external = ExternalLink(system=self.source, id=clip_id(group_key), url=text(body, "externalURL"))
        events: list[Event] = []
        for alert in seq(body, "alerts"):
            if not isinstance(alert, dict):
                raise InputError("Alertmanager alerts are JSON objects")
            events.extend(self._alert(alert, common, external, body, delivery))
        return events

    def _alert(
        self,
        alert: dict[str, Any],
        common: dict[str, Any],
        external: ExternalLink,
        body: dict[str, Any],
        delivery: Delivery,
    ) -> list[Event]:
        status = text(alert, "status")
        if status not in ("firing", "resolved"):
            raise InputError(f"Alertmanager alert status must be firing or resolved, not {status!r}")
        labels = _strings(obj(alert, "labels"))
        annotations = _strings(obj(alert, "annotations"))
        starts = parse_time(text(alert, "startsAt"))
        ends = parse_time(text(alert, "endsAt"))
        fingerprint = text(alert, "fingerprint") or _fingerprint(labels)
        firing = status == "firing"
        severity = labels.get("severity")
        summary = annotations.get("summary") or text(common, "summary") or labels.get("alertname")
        # A fired alert states what the ticket is about; a resolution only says that it ended.
        fields = (
            {
                "subject": summary,
                "body": annotations.get("description") or text(common, "description"),
                "severity": severity,
                "priority": _PRIORITIES.get(normalise(severity)) if severity else None,
                "channel": "alert",
            }
            if firing
            else {}
        )
        draft = Draft(
            type=EventType.ALERT_FIRED if firing else EventType.ALERT_RESOLVED,
            occurred_at=(starts if firing else ends) or delivery.received_at,
            fields=fields,
            data={
                "fingerprint": fingerprint,
                "group_key": text(body, "groupKey"),
                "receiver": text(body, "receiver"),
                "labels": labels,
                "annotations": annotations,
                "generator_url": text(alert, "generatorURL"),
                "starts_at": starts.isoformat() if starts else None,
                "ends_at": ends.isoformat() if ends else None,
                "truncated_alerts": body.get("truncatedAlerts") or None,
            },
        )
        state = f"{fingerprint}:{status}:{starts.isoformat() if starts else text(alert, 'startsAt')}"
        return build_events(source=self.source, delivery_id=state, external=external, drafts=[draft])


def _strings(mapping: dict[str, Any]) -> dict[str, str]:
    """Labels and annotations are string maps; keep at most a bounded number, cut long values."""
    kept: dict[str, str] = {}
    for key, value in list(mapping.items())[:_MAX_LABELS]:
        if isinstance(value, str) and len(key) <= 128:
            kept[key] = value[:2_000]
    return kept


def _fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager before 0.19 sent no fingerprint: derive one from the sorted label set."""
    canonical = "\0".join(f"{k}\0{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
