"""PagerDuty through the Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/overview/).

One ``POST /v2/enqueue`` per action, with the integration key as ``routing_key``
(https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):

* kinds ``page`` and ``notify``; ``params.event_action`` is ``trigger`` (the default),
  ``acknowledge`` or ``resolve``;
* ``dedup_key`` is ``baton/<ticket>`` (``baton/<ticket>/<service>`` when the action names a
  service), or ``params.dedup_key``: the same ticket always maps to the same alert, so a resolve
  finds the trigger it answers, and a retried trigger lands on the open alert instead of opening a
  second one (PagerDuty: "subsequent events for the same dedup_key will be applied to the open
  alert"). That is the idempotency this API offers; a trigger after a resolve opens a new alert;
* ``payload``: ``summary`` (``params.summary``, else subject, else text; at most 1024
  characters), ``source`` (``params.source`` or the configured one), ``severity`` (``critical``,
  ``error``, ``warning`` or ``info``; Baton's priorities ``urgent``/``high``/``normal``/``low``
  map onto them), ``component`` (the service), ``class``, ``group``, ``timestamp``, and
  ``custom_details`` with the ticket, the action key and the text;
* the routing key is ``service_keys[params.service]`` when there is one, else ``routing_key``;
* kind ``sync`` (``sync: {pagerduty: {fields: [status]}}`` in the policy): a ticket that became
  ``solved`` or ``closed`` resolves its alert; a trigger's delivery links the alert to the
  ticket by its dedup key, which is what makes the ticket eligible for that sync (and names the
  alert: with pages to several services, the latest is the one resolved).

The link (system ``pagerduty``, id the dedup key) is also how PagerDuty's own webhooks find the
ticket: the incident an Events API trigger opens has that dedup key as its ``incident_key``,
which every v3 ``incident`` webhook carries, and the PagerDuty signal adapter links incidents by
it (and by their incident id, for the note and responder events that carry only the id). With
alert grouping on, PagerDuty may add the alert to an incident opened under another key; that
incident's webhooks then open a ticket of their own.

Responses: 202 is success (the body's ``dedup_key`` becomes the external id); 400 is a permanent
failure ("check that the JSON is valid"), with PagerDuty's ``message`` and ``errors`` in the
error; 429 and 5xx are transient ("retry after some time"), Retry-After honoured when sent.
The routing key is a secret: it is masked out of every error message.
"""

from __future__ import annotations

import json
from typing import Any

from baton.clock import Clock, SystemClock
from baton.connectors.addresses import Resolver
from baton.connectors.base import Delivery, OutboundAction
from baton.connectors.config import PagerDutyConfig, configured, http_config, parse_service_keys
from baton.connectors.http import HttpResponse, OutboundHttp
from baton.connectors.params import param_str as _str
from baton.errors import PermanentConnectorError
from baton.model import ExternalLink
from baton.settings import Settings

__all__ = ["PagerDutyConnector", "dedup_key", "severity"]

_ACTIONS = frozenset({"trigger", "acknowledge", "resolve"})
_SEVERITIES = {
    "critical": "critical",
    "error": "error",
    "warning": "warning",
    "info": "info",
    "urgent": "critical",
    "high": "error",
    "normal": "warning",
    "low": "info",
}


def dedup_key(ticket_id: str, service: str | None = None) -> str:
    """The alert a ticket's pages share (PagerDuty allows 255 characters)."""
    key = f"baton/{ticket_id}" + (f"/{service}" if service else "")
    if len(key) > 255:
        raise PermanentConnectorError("pagerduty: dedup_key longer than 255 characters")
    return key


def severity(value: object) -> str:
    """PagerDuty's severity for a policy's value; unknown values are refused, not guessed."""
    found = _SEVERITIES.get(str(value).strip().lower())
    if found is None:
        raise PermanentConnectorError(
            f"pagerduty: severity {value!r} is not one of critical, error, warning, info "
            "(or urgent, high, normal, low)"
        )
    return found


class PagerDutyConnector:
    """Triggers, acknowledges and resolves PagerDuty alerts, one per ticket (and service)."""

    name = "pagerduty"

    def __init__(
        self, config: PagerDutyConfig, *, clock: Clock | None = None, resolver: Resolver | None = None
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        keys = [config.routing_key, *config.service_keys.values()]
        secrets = [k.get_secret_value() for k in keys if k is not None]
        self.http = OutboundHttp(config.http, clock=self.clock, resolver=resolver, secrets=secrets)
        self.http.check_url(config.events_url)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> PagerDutyConnector:
        values = {
            "routing_key": settings.pagerduty_routing_key,
            "service_keys": parse_service_keys(settings.pagerduty_service_keys),
            "events_url": settings.pagerduty_events_url,
            "http": http_config(settings),
        }
        return configured("pagerduty", PagerDutyConfig, values, lambda config: cls(config, clock=clock))

    def send(self, action: OutboundAction) -> Delivery:
        if action.kind == "sync":
            return self._sync(action)
        if action.kind not in ("page", "notify"):
            raise PermanentConnectorError(f"pagerduty: cannot perform {action.kind!r}")
        return self._enqueue(action, self.event(action))

    def _sync(self, action: OutboundAction) -> Delivery:
        """The ticket was solved or closed: resolve its alert, named by the link's dedup key
        (``params.external_id``). Other changes have nothing to say to PagerDuty."""
        changes = action.params.get("changes")
        status = changes.get("status") if isinstance(changes, dict) else None
        if status not in ("solved", "closed"):
            return Delivery(detail={"skipped": "nothing to resolve"})
        key = _str(action.params.get("external_id")) or dedup_key(action.ticket_id)
        prefix = dedup_key(action.ticket_id) + "/"
        service = key[len(prefix) :] if key.startswith(prefix) else None  # its routing key
        params = {"event_action": "resolve", "dedup_key": key, "service": service}
        resolve = OutboundAction(
            action.key, action.ticket_id, action.connector, "page", params, action.attempt
        )
        done = self._enqueue(resolve, self.event(resolve))
        return Delivery(external_id=done.external_id, detail=done.detail, wrote={"status": str(status)})

    def _enqueue(self, action: OutboundAction, event: dict[str, Any]) -> Delivery:
        response = self.http.request(
            "POST",
            self.config.events_url,
            what=f"pagerduty {event['event_action']}",
            content=json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode(),
            headers={"content-type": "application/json"},
            explain=_explain,
        )
        try:
            answered = response.json()
        except ValueError:
            answered = {}
        key = answered.get("dedup_key") if isinstance(answered, dict) else None
        # The alert is linked to the ticket by its dedup key: the incident's ``incident_key`` in
        # PagerDuty's webhooks, so they join this ticket, and what a ``sync`` to ``pagerduty``
        # (``sync: {pagerduty: {fields: [status]}}``) resolves when the ticket is solved.
        return Delivery(
            external_id=str(key or event["dedup_key"]),
            detail={"event_action": event["event_action"], "dedup_key": event["dedup_key"]},
            link=ExternalLink(system="pagerduty", id=str(event["dedup_key"]))
            if event["event_action"] == "trigger"
            else None,
        )

    def event(self, action: OutboundAction) -> dict[str, Any]:
        """The Events API v2 body for ``action`` (routing key included)."""
        params = action.params
        service = _str(params.get("service")) or None
        event_action = _str(params.get("event_action")) or "trigger"
        if event_action not in _ACTIONS:
            raise PermanentConnectorError(
                f"pagerduty: event_action {event_action!r} is not one of {sorted(_ACTIONS)}"
            )
        key = self.config.service_keys.get(service or "") or self.config.routing_key
        if key is None:
            raise PermanentConnectorError(f"pagerduty: no routing key for service {service!r}")
        event: dict[str, Any] = {
            "routing_key": key.get_secret_value(),
            "event_action": event_action,
            "dedup_key": _str(params.get("dedup_key")) or dedup_key(action.ticket_id, service),
        }
        if event_action != "trigger":
            return event
        subject, text = _str(params.get("subject")), _str(params.get("text"))
        summary = _str(params.get("summary")) or subject or text or f"Baton ticket {action.ticket_id}"
        payload: dict[str, Any] = {
            "summary": summary[:1024],
            "source": _str(params.get("source")) or self.config.source,
            "severity": severity(params.get("severity", "error")),
            "timestamp": self.clock.now().isoformat(),
            "custom_details": {"ticket": action.ticket_id, "baton_key": action.key, "text": text[:8_000]},
        }
        if service:
            payload["component"] = service
        for field in ("class", "group"):
            if value := _str(params.get(field)):
                payload[field] = value
        event["payload"] = payload
        event["client"] = "Baton"
        return event

    def close(self) -> None:
        self.http.close()


def _explain(response: HttpResponse) -> str | None:
    """PagerDuty's ``{"status", "message", "errors": [...]}`` as one line."""
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    errors = data.get("errors")
    parts = [str(data.get("message") or "")] + ([str(e) for e in errors] if isinstance(errors, list) else [])
    return "; ".join(p for p in parts if p) or None
