"""From HTTP outcomes to connector errors: status codes, Retry-After, what messages may say."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from baton.connectors.config import HttpConfig
from baton.connectors.http import HttpResponse, OutboundHttp, error_for, origin, parse_retry_after
from baton.errors import PermanentConnectorError, TransientConnectorError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

STATUSES = [
    (200, None),
    (201, None),
    (202, None),
    (204, None),
    (301, PermanentConnectorError),
    (302, PermanentConnectorError),
    (307, PermanentConnectorError),
    (400, PermanentConnectorError),
    (401, PermanentConnectorError),
    (403, PermanentConnectorError),
    (404, PermanentConnectorError),
    (410, PermanentConnectorError),
    (413, PermanentConnectorError),
    (422, PermanentConnectorError),
    (408, TransientConnectorError),
    (409, TransientConnectorError),
    (425, TransientConnectorError),
    (429, TransientConnectorError),
    (500, TransientConnectorError),
    (502, TransientConnectorError),
    (503, TransientConnectorError),
    (504, TransientConnectorError),
]


@pytest.mark.parametrize(("status", "expected"), STATUSES)
def test_each_status_means_success_a_retry_or_a_dead_letter(status: int, expected: type | None) -> None:
    error = error_for(status, f"HTTP {status}", retry_after=12.0)
    if expected is None:
        assert error is None
        return
    assert type(error) is expected
    if isinstance(error, TransientConnectorError):
        assert error.retry_after == 12.0 and error.retryable


def _date(seconds_after: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW.timestamp() + seconds_after, UTC), usegmt=True)


RETRY_AFTER = [
    (None, None, None),
    ("", None, None),
    ("120", None, 120.0),
    ("0", None, 0.0),
    ("1.5", None, 1.5),  # not RFC delay-seconds, but harmless to honour
    ("86400", None, 3600.0),  # capped
    ("99999999999999999999999", None, 3600.0),
    (_date(90), None, 90.0),  # an HTTP-date, measured from our clock
    (_date(-30), None, 0.0),  # in the past: now
    (_date(90), _date(60), 30.0),  # measured from the response's own Date header
    ("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:27:00 GMT", 60.0),
    ("soon", None, None),
    ("-5", None, None),
    ("\uff11\uff12", None, None),  # fullwidth digits are not delay-seconds
    ("\u0661\u0662", None, None),  # nor Arabic-Indic ones
]


@pytest.mark.parametrize(("value", "date", "seconds"), RETRY_AFTER)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    value: str | None, date: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, now=NOW, date=date, cap=3600) == seconds


def test_origins_name_scheme_host_and_port_only() -> None:
    assert origin(httpx.URL("https://hooks.example.com/T0/B1/SECRET?token=x")) == "https://hooks.example.com"
    assert origin(httpx.URL("http://127.0.0.1:8080/a")) == "http://127.0.0.1:8080"
    assert origin(httpx.URL("https://[::1]:8443/")) == "https://[::1]:8443"


def test_messages_are_masked_and_cut() -> None:
    http = OutboundHttp(HttpConfig(), secrets=["xoxb-123-SECRET", ""])
    assert http.clean("bad token xoxb-123-SECRET here") == "bad token [secret] here"
    assert len(http.clean("x" * 2_000)) == 500


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000, b"not json", b"\xff\xfe"])
def test_a_hostile_response_body_is_a_value_error_not_a_crash(body: bytes) -> None:
    with pytest.raises(ValueError):
        HttpResponse(200, httpx.Headers(), body).json()
