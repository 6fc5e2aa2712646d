"""The signed webhook connector against its stand-in, over real HTTP on loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime

import pytest
from pydantic import SecretStr

from baton.clock import FakeClock
from baton.connectors.base import OutboundAction
from baton.connectors.config import WebhookConfig
from baton.connectors.webhook import WebhookConnector
from baton.errors import ConnectorError, PermanentConnectorError, TransientConnectorError
from tests.conftest import START
from tests.standins.fixtures import LOOPBACK, WEBHOOK_SECRET
from tests.standins.server import Fault
from tests.standins.webhook import WebhookStandIn

PATH_TOKEN = "T0KEN-IN-THE-PATH"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def hook(clock: FakeClock) -> Iterator[WebhookStandIn]:
    with WebhookStandIn(WEBHOOK_SECRET, now=lambda: clock.now().timestamp()) as standin:
        yield standin


@pytest.fixture
def connector(hook: WebhookStandIn, clock: FakeClock) -> Iterator[WebhookConnector]:
    config = WebhookConfig(
        url=f"{hook.url}/hooks/{PATH_TOKEN}", secret=SecretStr(WEBHOOK_SECRET), http=LOOPBACK
    )
    built = WebhookConnector(config, clock=clock)
    yield built
    built.close()


def action(n: int = 1, attempt: int = 1) -> OutboundAction:
    return OutboundAction(
        key=f"{n:064x}",
        ticket_id=f"T-{n}",
        connector="webhook",
        kind="notify",
        params={"to": "ann", "subject": "Refund request", "text": "Acme asks for a refund"},
        attempt=attempt,
    )


def test_a_delivery_is_signed_and_carries_the_idempotency_key(
    hook: WebhookStandIn, connector: WebhookConnector, clock: FakeClock
) -> None:
    delivery = connector.send(action())
    assert delivery.external_id == action().key and delivery.detail == {"status": 200}
    (received,) = hook.requests
    assert received.path == f"/hooks/{PATH_TOKEN}" and hook.rejected == []
    assert received.headers["webhook-id"] == action().key
    assert received.headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
    assert received.headers["content-type"] == "application/json"
    assert received.json() == {
        "type": "baton.notify",
        "data": {
            "ticket": "T-1",
            "kind": "notify",
            "key": action().key,
            "attempt": 1,
            "params": {"to": "ann", "subject": "Refund request", "text": "Acme asks for a refund"},
        },
    }


def test_a_retry_is_signed_afresh_and_applied_once(
    hook: WebhookStandIn, connector: WebhookConnector, clock: FakeClock
) -> None:
    connector.send(action(attempt=1))
    clock.advance(timedelta(minutes=2))
    connector.send(action(attempt=2))
    first, second = hook.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 120
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert len(hook.effects) == 1 and hook.rejected == []


def _in(seconds: int) -> dict[str, str]:
    """A Retry-After date ``seconds`` after the response's own Date header."""
    date = START + timedelta(hours=1)
    return {
        "date": format_datetime(date, usegmt=True),
        "retry-after": format_datetime(date + timedelta(seconds=seconds), usegmt=True),
    }


FAULTS = [
    (Fault.status(500), TransientConnectorError, None),
    (Fault.status(502, b"bad gateway"), TransientConnectorError, None),
    (Fault.status(503, headers={"retry-after": "120"}), TransientConnectorError, 120.0),
    (Fault.status(503, headers=_in(90)), TransientConnectorError, 90.0),
    (Fault.rate_limited("7"), TransientConnectorError, 7.0),
    (Fault.status(408), TransientConnectorError, None),
    (Fault.status(409), TransientConnectorError, None),
    (Fault.status(425), TransientConnectorError, None),
    (Fault.hang(5), TransientConnectorError, None),
    (Fault.reset(), TransientConnectorError, None),
    (Fault.close(), TransientConnectorError, None),
    (Fault.status(400, b'{"error": "bad payload"}'), PermanentConnectorError, None),
    (Fault.status(401), PermanentConnectorError, None),
    (Fault.status(403), PermanentConnectorError, None),
    (Fault.status(404), PermanentConnectorError, None),
    (Fault.status(410), PermanentConnectorError, None),
    (Fault.status(422), PermanentConnectorError, None),
    (Fault.redirect("https://hooks.example.com/moved"), PermanentConnectorError, None),
]


@pytest.mark.parametrize(("fault", "error", "retry_after"), FAULTS)
def test_each_failure_is_retried_or_dead_lettered_as_it_should(
    hook: WebhookStandIn,
    connector: WebhookConnector,
    fault: Fault,
    error: type[ConnectorError],
    retry_after: float | None,
) -> None:
    hook.inject(fault)
    with pytest.raises(ConnectorError) as caught:
        connector.send(action())
    assert type(caught.value) is error
    if isinstance(caught.value, TransientConnectorError):
        assert caught.value.retry_after == retry_after
    assert PATH_TOKEN not in str(caught.value)  # messages name the origin, never the path
    assert len(hook.requests) == 1
    connector.send(action())  # the fault was one-off: the next attempt goes through
    assert len(hook.effects) == 1


def test_a_slow_receiver_within_the_limits_is_fine_and_a_hung_one_times_out(
    hook: WebhookStandIn, connector: WebhookConnector
) -> None:
    hook.inject(Fault.slow(0.3))
    connector.send(action(1))
    hook.inject(Fault.hang(5))
    with pytest.raises(TransientConnectorError, match="timed out"):
        connector.send(action(2))


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_total_deadline(
    hook: WebhookStandIn, connector: WebhookConnector
) -> None:
    """Every byte arrives well within the 1 s read timeout; the answer as a whole would take
    minutes. The exchange ends at total_timeout (3 s), which is what keeps it inside the lease."""
    hook.inject(Fault.drip(0.5))
    started = time.monotonic()
    with pytest.raises(TransientConnectorError, match="timed out"):
        connector.send(action())
    assert LOOPBACK.total_timeout <= time.monotonic() - started < LOOPBACK.total_timeout + 0.6


def test_a_receiver_with_another_secret_refuses_and_that_is_permanent(
    clock: FakeClock, hook: WebhookStandIn
) -> None:
    other = "whsec_" + "b3RoZXIgc2VjcmV0IG9mIHR3ZW50eS1mb3VyIGJ5dGVz"
    config = WebhookConfig(url=f"{hook.url}/hooks", secret=SecretStr(other), http=LOOPBACK)
    connector = WebhookConnector(config, clock=clock)
    try:
        with pytest.raises(PermanentConnectorError, match="HTTP 401") as caught:
            connector.send(action())
    finally:
        connector.close()
    assert hook.rejected == ["no valid signature"] and other not in str(caught.value)


def test_a_stale_timestamp_is_refused_by_the_receiver(
    hook: WebhookStandIn, connector: WebhookConnector, clock: FakeClock
) -> None:
    hook.now = lambda: (clock.now() + timedelta(minutes=10)).timestamp()  # the receiver's clock runs ahead
    with pytest.raises(PermanentConnectorError, match="HTTP 401"):
        connector.send(action())
    assert hook.rejected == ["timestamp outside the tolerance window"]


def test_secrets_never_reach_messages_or_logs(
    hook: WebhookStandIn, connector: WebhookConnector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    messages = []
    for fault in (
        Fault.status(500),
        Fault.status(400),
        Fault.rate_limited("1"),
        Fault.reset(),
        Fault.hang(5),
    ):
        hook.inject(fault)
        with pytest.raises(ConnectorError) as caught:
            connector.send(action())
        messages.append(str(caught.value))
    connector.send(action())
    text = caplog.text + "\n".join(messages)
    assert caplog.text  # the requests were logged...
    for secret in (WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"), PATH_TOKEN):
        assert secret not in text  # ...without the secret or the path
