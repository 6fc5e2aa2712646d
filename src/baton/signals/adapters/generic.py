"""The generic format: Baton's canonical event JSON, for systems that can be taught to send it.

The body is one canonical event (the JSON Schema is published by ``baton schema event`` and in the
OpenAPI document of ``POST /v1/events``) or a JSON array of them. Each event names its own
``source`` and ``event_id``, so a redelivery is recognised by those, as for ``POST /v1/events``.
The difference from that endpoint is authentication: ``/v1/webhooks/generic`` takes a per-source
shared token from the webhooks configuration instead of a Baton API token. It may not speak for the
vendor sources that have adapters of their own (the endpoint refuses those sources).
"""

from __future__ import annotations

from pydantic import ValidationError

from baton.errors import InputError
from baton.model import Event
from baton.signals.adapters.base import Delivery
from baton.signals.canonical import validation_message

__all__ = ["GenericAdapter"]


class GenericAdapter:
    """Canonical events over a webhook (entry point ``generic``)."""

    source = "generic"

    def parse(self, delivery: Delivery) -> list[Event]:
        """Validate the body as one canonical event or an array of them."""
        items = delivery.payload if isinstance(delivery.payload, list) else [delivery.payload]
        events = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise InputError(f"event {index}: an event is a JSON object")
            try:
                events.append(Event.model_validate(item))
            except ValidationError as exc:
                raise InputError(f"event {index}: {validation_message(exc)}") from None
        return events
