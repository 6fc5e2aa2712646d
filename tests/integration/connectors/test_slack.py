"""The Slack connector against the Slack stand-in, over real HTTP on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from baton.connectors.base import OutboundAction
from baton.connectors.config import SlackConfig
from baton.connectors.slack import SlackConnector
from baton.errors import ConnectorError, PermanentConnectorError, TransientConnectorError
from tests.standins.fixtures import LOOPBACK, SLACK_TOKEN
from tests.standins.server import Fault
from tests.standins.slack import BOT, SlackStandIn


def _connector(standin: SlackStandIn, token: str = SLACK_TOKEN) -> SlackConnector:
    return SlackConnector(SlackConfig(token=SecretStr(token), api_url=f"{standin.url}/api/", http=LOOPBACK))


@pytest.fixture
def slack(slack_standin: SlackStandIn) -> Iterator[SlackConnector]:
    connector = _connector(slack_standin)
    yield connector
    connector.close()


def notify(n: int = 1, **params: object) -> OutboundAction:
    defaults: dict[str, object] = {
        "to": "ann",
        "address": "U0000001",
        "subject": "Escalated",
        "text": "T-1 needs you",
    }
    return OutboundAction(f"{n:064x}", "T-1", "slack", "notify", {**defaults, **params}, 1)


def channel_action(n: int = 1, **params: object) -> OutboundAction:
    return OutboundAction(f"{n:064x}", "T-42", "slack", "incident_channel", params, 1)


def test_a_notification_goes_to_the_members_direct_messages(
    slack: SlackConnector, slack_standin: SlackStandIn
) -> None:
    delivery = slack.send(notify(subject="Refund <!channel>", text="Acme & co <https://x|y>"))
    (message,) = slack_standin.messages
    assert message["channel"] == "D0000001" and delivery.detail == {
        "channel": "D0000001",
        "ts": message["ts"],
    }
    assert delivery.external_id == message["ts"]
    assert message["text"] == "*Refund &lt;!channel&gt;*\nAcme &amp; co &lt;https://x|y&gt;"
    assert message["metadata"] == {
        "event_type": "baton_action",
        "event_payload": {"key": notify().key, "ticket": "T-1"},
    }
    (call,) = slack_standin.calls("chat.postMessage")
    assert call.headers["authorization"] == f"Bearer {SLACK_TOKEN}"
    assert call.headers["content-type"] == "application/json; charset=utf-8"


def test_a_channel_post_and_a_thread_reply(slack: SlackConnector, slack_standin: SlackStandIn) -> None:
    general = slack_standin.by_name("general")
    assert general is not None
    first = slack.send(notify(1, channel=general.id, address=None))
    slack.send(notify(2, channel=general.id, thread_ts=first.detail["ts"], subject="", text="update"))
    parent, reply = slack_standin.messages
    assert parent["channel"] == reply["channel"] == general.id
    assert reply["thread_ts"] == parent["ts"] and reply["text"] == "update"


ERRORS = [
    (notify(address="C9999999"), PermanentConnectorError, "channel_not_found"),
    (notify(address=None), PermanentConnectorError, "no Slack address for ann"),
    (notify(subject="", text=""), PermanentConnectorError, "nothing to post"),
    (
        OutboundAction("k" * 64, "T-1", "slack", "page", {}, 1),
        PermanentConnectorError,
        "cannot perform 'page'",
    ),
]


@pytest.mark.parametrize(("sent", "error", "message"), ERRORS)
def test_requests_slack_refuses_are_permanent(
    slack: SlackConnector, sent: OutboundAction, error: type[ConnectorError], message: str
) -> None:
    with pytest.raises(error, match=message):
        slack.send(sent)


def test_archived_and_foreign_channels_are_permanent(
    slack: SlackConnector, slack_standin: SlackStandIn
) -> None:
    archived = slack_standin.add_channel("old-incident", archived=True)
    foreign = slack_standin.add_channel("sales", bot=False)
    with pytest.raises(PermanentConnectorError, match="is_archived"):
        slack.send(notify(address=archived))
    with pytest.raises(PermanentConnectorError, match="not_in_channel"):
        slack.send(notify(address=foreign))


FAULTS = [
    (SlackStandIn.rate_limited("3"), 3.0),  # HTTP 429 + Retry-After, as Slack documents
    (Fault.json(200, {"ok": False, "error": "ratelimited"}, {"retry-after": "5"}), 5.0),
    (Fault.json(200, {"ok": False, "error": "internal_error"}), None),
    (Fault.json(200, {"ok": False, "error": "service_unavailable"}), None),
    (Fault.status(500), None),
    (Fault.status(503, headers={"retry-after": "30"}), 30.0),
    (Fault.status(200, b"<html>maintenance</html>"), None),
    (Fault.hang(5), None),
    (Fault.reset(), None),
]


@pytest.mark.parametrize(("fault", "retry_after"), FAULTS)
def test_server_side_trouble_is_transient_with_slacks_retry_after(
    slack: SlackConnector, slack_standin: SlackStandIn, fault: Fault, retry_after: float | None
) -> None:
    slack_standin.inject(fault)
    with pytest.raises(TransientConnectorError) as caught:
        slack.send(notify())
    assert caught.value.retry_after == retry_after
    slack.send(notify())
    assert len(slack_standin.messages) == 1


def test_a_bad_token_is_permanent_and_never_repeated(
    slack_standin: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "xoxb-999-WRONG-SECRET-TOKEN"
    connector = _connector(slack_standin, token=wrong)
    try:
        with pytest.raises(PermanentConnectorError, match="invalid_auth") as caught:
            connector.send(notify())
        slack_standin.inject(Fault.json(200, {"ok": False, "error": f"token {wrong} revoked"}))
        with pytest.raises(PermanentConnectorError) as echoed:  # a vendor echoing the token back
            connector.send(notify())
    finally:
        connector.close()
    assert "[secret]" in str(echoed.value)
    for text in (str(caught.value), str(echoed.value), caplog.text):
        assert wrong not in text and SLACK_TOKEN not in text


def test_an_incident_channel_is_created_and_people_invited(
    slack: SlackConnector, slack_standin: SlackStandIn
) -> None:
    delivery = slack.send(channel_action(invite=["U0000001", "l2-api-oncall"], users="U0000002"))
    channel = slack_standin.by_name("inc-t-42")
    assert channel is not None and channel.private
    assert channel.members == {BOT, "U0000001", "U0000002"}
    assert delivery.external_id == channel.id
    assert delivery.detail == {
        "channel": channel.id,
        "name": "inc-t-42",
        "created": True,
        "invited": ["U0000002", "U0000001"],
        "not_invited": {"l2-api-oncall": "not a Slack user id"},
    }


def test_a_retried_channel_action_finds_its_channel_instead_of_making_another(
    slack: SlackConnector, slack_standin: SlackStandIn
) -> None:
    for n in range(300):  # enough channels that the lookup pages through conversations.list
        slack_standin.add_channel(f"noise-{n}")
    slack_standin.add_channel("secret-ops", private=True, bot=False)
    slack_standin.inject(Fault.status(502, path="conversations.invite"))  # created, then the invite failed
    with pytest.raises(TransientConnectorError):
        slack.send(channel_action(invite=["U0000001", "U0000002"]))
    delivery = slack.send(channel_action(invite=["U0000001", "U0000002", "U0009999"]))
    assert delivery.detail["created"] is False
    assert delivery.detail["invited"] == ["U0000001", "U0000002"]
    assert delivery.detail["not_invited"] == {"U0009999": "user_not_found"}
    assert [c.name for c in slack_standin.channels.values()].count("inc-t-42") == 1
    assert len(slack_standin.calls("conversations.list")) == 2  # 200 a page
    assert slack.send(channel_action(invite=["U0000001"])).detail["invited"] == ["U0000001"]  # already in


def test_a_name_held_by_a_channel_the_bot_cannot_use_is_permanent(
    slack: SlackConnector, slack_standin: SlackStandIn
) -> None:
    slack_standin.add_channel("inc-t-42", archived=True)
    slack_standin.add_channel("inc-private", private=True, bot=False)
    with pytest.raises(PermanentConnectorError, match="#inc-t-42 is taken"):
        slack.send(channel_action())
    with pytest.raises(PermanentConnectorError, match="#inc-private is taken"):
        slack.send(channel_action(name="inc-private"))
