"""Connector configuration: validation, secrets kept out of messages, building from settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from baton.connectors.config import (
    HttpConfig,
    PagerDutyConfig,
    SlackConfig,
    WebhookConfig,
    config_error,
    http_config,
    parse_service_keys,
)
from baton.connectors.pagerduty import PagerDutyConnector
from baton.connectors.registry import available, build_connectors
from baton.connectors.slack import SlackConnector
from baton.connectors.webhook import WebhookConnector
from baton.errors import ConfigError
from baton.settings import load_settings

GOOD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the spec's example, 24 bytes

BAD_SECRETS = [
    ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with 'whsec_'"),
    ("whsec_not base64!!", "followed by base64"),
    ("whsec_c2hvcnQ=", "between 24 and 64 bytes"),
    ("whsec_" + "QUFB" * 30, "between 24 and 64 bytes"),
]


@pytest.mark.parametrize(("secret", "problem"), BAD_SECRETS)
def test_webhook_secrets_are_checked_without_repeating_them(secret: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WebhookConfig(url="https://hooks.example.com/", secret=SecretStr(secret))
    error = config_error("webhook", caught.value)
    assert problem in str(error) and secret not in str(error)


def test_urls_must_be_http_with_a_host_and_no_credentials() -> None:
    for url, problem in [
        ("ftp://x.example/", "http:// or https://"),
        ("https://u:p@x.example/", "credentials"),
        ("not a url", "http:// or https://"),
    ]:
        with pytest.raises(ValidationError, match=problem):
            SlackConfig(token=SecretStr("xoxb-1"), api_url=url)


def test_allow_entries_are_normalised_and_checked() -> None:
    config = HttpConfig(allow=("127.0.0.1", "10.0.0.0/8", "Hooks.Internal.", "*.corp.example", "fd00::/8"))
    assert config.allow == ("127.0.0.1/32", "10.0.0.0/8", "hooks.internal", "*.corp.example", "fd00::/8")
    with pytest.raises(ValidationError, match="neither an IP address"):
        HttpConfig(allow=("http://x",))
    with pytest.raises(ValidationError, match="at least connect_timeout"):
        HttpConfig(connect_timeout=10, total_timeout=5)


def test_pagerduty_needs_a_key_and_reads_service_keys() -> None:
    with pytest.raises(ValidationError, match="routing_key or at least one service key"):
        PagerDutyConfig()
    keys = parse_service_keys(SecretStr("platform=KEY1, billing = KEY2,"))
    assert {k: v.get_secret_value() for k, v in keys.items()} == {"platform": "KEY1", "billing": "KEY2"}
    with pytest.raises(ConfigError, match="entry 1 is not service=key") as caught:
        parse_service_keys(SecretStr("KEYWITHOUTSERVICE"))
    assert "KEYWITHOUTSERVICE" not in str(caught.value)


def test_timeouts_must_end_before_the_outbox_lease() -> None:
    assert http_config(load_settings({})).total_timeout == 15.0
    with pytest.raises(ConfigError, match="shorter than lease_seconds"):
        http_config(load_settings({"BATON_LEASE_SECONDS": "15"}))
    short = {"BATON_LEASE_SECONDS": "2", "BATON_HTTP_CONNECT_TIMEOUT": "1", "BATON_HTTP_TOTAL_TIMEOUT": "1.5"}
    assert http_config(load_settings(short)).total_timeout == 1.5


ENV = {
    "BATON_CONNECTORS": "webhook,slack,pagerduty,log",
    "BATON_WEBHOOK_URL": "https://hooks.example.com/baton",
    "BATON_WEBHOOK_SECRET": GOOD_SECRET,
    "BATON_SLACK_TOKEN": "xoxb-1-2-SECRET",
    "BATON_PAGERDUTY_ROUTING_KEY": "R0UTINGKEY000000000000000SECRET0",
    "BATON_PAGERDUTY_SERVICE_KEYS": "platform=PLATFORMKEY00000000000000SECRET",
    "BATON_OUTBOUND_ALLOW": "127.0.0.1/32, hooks.internal",
}


def test_the_registry_builds_configured_connectors_from_settings() -> None:
    assert {"webhook", "slack", "pagerduty", "log", "fake"} <= set(available())
    settings = load_settings(ENV)
    assert "SECRET" not in repr(settings) and "whsec_" not in repr(settings)
    built = build_connectors(settings)
    assert isinstance(built["webhook"], WebhookConnector)
    assert isinstance(built["slack"], SlackConnector)
    assert isinstance(built["pagerduty"], PagerDutyConnector)
    assert built["webhook"].config.http.allow == ("127.0.0.1/32", "hooks.internal")
    assert set(built["pagerduty"].config.service_keys) == {"platform"}
    for connector in built.values():
        close = getattr(connector, "close", None)
        if close:
            close()


WEBHOOK = {"BATON_CONNECTORS": "webhook", "BATON_WEBHOOK_URL": ENV["BATON_WEBHOOK_URL"]}
SECRETS = [v for k, v in ENV.items() if "SECRET" in k or "TOKEN" in k or "KEY" in k]

CONFIG_ERRORS = [
    ({"BATON_CONNECTORS": "webhook"}, "needs BATON_WEBHOOK_URL"),
    ({"BATON_CONNECTORS": "slack"}, "needs BATON_SLACK_TOKEN"),
    ({"BATON_CONNECTORS": "pagerduty"}, "routing_key or at least one service key"),
    ({**WEBHOOK, "BATON_WEBHOOK_SECRET": GOOD_SECRET, "BATON_WEBHOOK_URL": "https://10.0.0.7/h"}, "private"),
    (
        {**WEBHOOK, "BATON_WEBHOOK_SECRET": GOOD_SECRET, "BATON_WEBHOOK_URL": "http://x.example/"},
        "plain http",
    ),
    ({**WEBHOOK, "BATON_WEBHOOK_SECRET": "whsec_U0VDUkVU"}, "between 24 and 64 bytes"),
    ({**WEBHOOK, "BATON_WEBHOOK_SECRET": "SECRET-without-prefix"}, "must start with 'whsec_'"),
    (
        {
            "BATON_CONNECTORS": "slack",
            "BATON_SLACK_TOKEN": "xoxb-SECRET",
            "BATON_OUTBOUND_ALLOW": "not a host!",
        },
        "invalid http configuration",
    ),
]


@pytest.mark.parametrize(("env", "problem"), CONFIG_ERRORS)
def test_bad_connector_settings_are_config_errors_without_secrets(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        build_connectors(load_settings(env))
    for secret in [*SECRETS, *(v for k, v in env.items() if "SECRET" in k or "TOKEN" in k)]:
        assert secret not in str(caught.value)
    assert "U0VDUkVU" not in str(caught.value)  # not even the part after the prefix
