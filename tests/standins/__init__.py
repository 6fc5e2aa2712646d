"""Local stand-ins for the vendors connectors talk to: real HTTP on 127.0.0.1, the documented
endpoints, status codes, rate-limit headers and error bodies, fault injection and a record of
every request. Fixtures are in :mod:`tests.standins.fixtures`."""

from tests.standins.pagerduty import PagerDutyStandIn
from tests.standins.server import Fault, Received, Reply, StandIn
from tests.standins.slack import SlackStandIn
from tests.standins.webhook import WebhookStandIn

__all__ = ["Fault", "PagerDutyStandIn", "Received", "Reply", "SlackStandIn", "StandIn", "WebhookStandIn"]
