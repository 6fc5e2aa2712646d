"""The vendor stand-ins as fixtures for every connector integration test."""

from tests.standins.fixtures import pagerduty_standin, slack_standin, webhook_standin

__all__ = ["pagerduty_standin", "slack_standin", "webhook_standin"]
