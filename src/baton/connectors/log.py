"""A connector that writes each action to the log: the demo's stand-in for Slack and e-mail."""

from __future__ import annotations

import logging

from baton.connectors.base import Delivery, OutboundAction

__all__ = ["LogConnector"]

_log = logging.getLogger("baton.connectors.log")


class LogConnector:
    name = "log"

    def send(self, action: OutboundAction) -> Delivery:
        _log.info(
            "action %s ticket=%s to=%s: %s",
            action.kind,
            action.ticket_id,
            action.params.get("to"),
            action.params.get("message"),
        )
        return Delivery(external_id=action.key[:16])
