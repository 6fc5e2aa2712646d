"""Pytest fixtures for the stand-ins, one per vendor, and the HTTP settings that reach them.

A test package uses them by importing them into its ``conftest.py``::

    from tests.standins.fixtures import pagerduty_standin, slack_standin, webhook_standin

Each fixture starts a fresh stand-in on a free loopback port and stops it after the test.
``LOOPBACK`` is the :class:`~baton.connectors.config.HttpConfig` that allows 127.0.0.1 (and only
that) with short timeouts, so fault tests run in well under a second.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from baton.connectors.config import HttpConfig
from tests.standins.pagerduty import PagerDutyStandIn
from tests.standins.slack import SlackStandIn
from tests.standins.webhook import WebhookStandIn

__all__ = [
    "LOOPBACK",
    "PAGERDUTY_KEY",
    "PAGERDUTY_OTHER_KEY",
    "SLACK_TOKEN",
    "WEBHOOK_SECRET",
    "pagerduty_standin",
    "slack_standin",
    "webhook_standin",
]

WEBHOOK_SECRET = "whsec_c3RhbmQtaW4gc2lnbmluZyBrZXk6IDMyIGJ5dGVzISE="  # 32 bytes
SLACK_TOKEN = "xoxb-000000000-standin-token-SECRET"
PAGERDUTY_KEY = "R0UT1NGKEY00000000000000SECRET01"  # 32 characters, like an integration key
PAGERDUTY_OTHER_KEY = "R0UT1NGKEY00000000000000SECRET02"

LOOPBACK = HttpConfig(allow=("127.0.0.1/32",), connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)


@pytest.fixture
def webhook_standin() -> Iterator[WebhookStandIn]:
    with WebhookStandIn(WEBHOOK_SECRET) as standin:
        yield standin


@pytest.fixture
def slack_standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(SLACK_TOKEN) as standin:
        yield standin


@pytest.fixture
def pagerduty_standin() -> Iterator[PagerDutyStandIn]:
    with PagerDutyStandIn([PAGERDUTY_KEY, PAGERDUTY_OTHER_KEY]) as standin:
        yield standin
