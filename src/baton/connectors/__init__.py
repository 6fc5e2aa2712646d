"""Connectors: how actions leave Baton. Each implements one method, ``send``; retries, idempotency,
ordering and audit are the outbox's job (``baton.engine.outbox``), written once for all of them."""

from baton.connectors.base import Connector, Delivery, OutboundAction

__all__ = ["Connector", "Delivery", "OutboundAction"]
