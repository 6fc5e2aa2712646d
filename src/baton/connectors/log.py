"""A connector that writes each action to the log: the demo's stand-in for Slack and e-mail."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from baton.connectors.base import Connector, Delivery, OutboundAction

__all__ = ["LogConnector", "LogEverything"]

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


class LogEverything(Mapping[str, Connector]):
    """Every connector name answered by the log connector: a dry run of delivery (the demo), so
    a policy that speaks to Slack, e-mail and PagerDuty runs end to end without credentials."""

    def __init__(self) -> None:
        self._log = LogConnector()

    def __getitem__(self, name: str) -> Connector:
        return self._log

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
