"""A generic outbound webhook, signed per the Standard Webhooks specification.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

Every action is one ``POST`` of a JSON body ``{"type": "baton.<kind>", "data": {...}}`` with

* ``webhook-id``: the action's idempotency key. It stays the same on every retry, so the
  receiver can apply the effect once (the spec's "use the webhook-id as an idempotency key");
* ``webhook-timestamp``: integer Unix seconds of *this attempt* (a retry is signed afresh, which
  lets receivers reject replays outside their tolerance window);
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the
  base64 bytes after the ``whsec_`` prefix of the configured secret.

The body bytes signed are the bytes sent (compact JSON, serialised once). Redirects are not
followed and 3xx is a failure, as the spec recommends; 410 Gone is a permanent failure like other
4xx; Retry-After is honoured on 429 and 5xx. The payload carries no event ``timestamp``: the
outbox does not hand connectors the time the action was decided, and the attempt time would make
the body differ between retries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from baton.clock import Clock, SystemClock
from baton.connectors.addresses import Resolver
from baton.connectors.base import Delivery, OutboundAction
from baton.connectors.config import WebhookConfig, configured, http_config
from baton.connectors.http import HttpResponse, OutboundHttp
from baton.errors import PermanentConnectorError
from baton.settings import Settings

__all__ = ["WebhookConnector", "sign"]


def sign(key: bytes, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (one ``v1`` signature) for a message."""
    if "." in msg_id:
        # The spec: ids must not contain "." or a signature could be replayed across fields.
        raise PermanentConnectorError("webhook id must not contain '.'")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookConnector:
    """POSTs each action to one configured URL, signed."""

    name = "webhook"

    def __init__(
        self, config: WebhookConfig, *, clock: Clock | None = None, resolver: Resolver | None = None
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._key = config.signing_key()
        secret = config.secret.get_secret_value()
        self.http = OutboundHttp(config.http, clock=self.clock, resolver=resolver, secrets=(secret,))
        self.http.check_url(config.url)  # refuse a private target now, not at the first send

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> WebhookConnector:
        return configured(
            "webhook",
            WebhookConfig,
            {"url": settings.webhook_url, "secret": settings.webhook_secret, "http": http_config(settings)},
            lambda config: cls(config, clock=clock),
            needs={
                "BATON_WEBHOOK_URL": settings.webhook_url,
                "BATON_WEBHOOK_SECRET": settings.webhook_secret,
            },
        )

    def send(self, action: OutboundAction) -> Delivery:
        body = json.dumps(
            {"type": f"baton.{action.kind}", "data": _data(action)},
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        ).encode()
        timestamp = int(self.clock.now().timestamp())
        response = self.http.request(
            "POST",
            self.config.url,
            what="webhook",
            content=body,
            headers={
                "content-type": "application/json",
                "webhook-id": action.key,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(self._key, msg_id=action.key, timestamp=timestamp, body=body),
            },
            explain=_explain,
        )
        return Delivery(external_id=action.key, detail={"status": response.status})

    def close(self) -> None:
        self.http.close()


def _data(action: OutboundAction) -> dict[str, Any]:
    return {
        "ticket": action.ticket_id,
        "kind": action.kind,
        "key": action.key,
        "attempt": action.attempt,
        "params": dict(action.params),
    }


def _explain(response: HttpResponse) -> str | None:
    text = response.body[:200].decode("utf-8", errors="replace").strip()
    return text or None
