"""Linear's webhook signature: HMAC-SHA256 of the raw body, and a fresh webhookTimestamp inside it."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from baton.errors import AuthError, ConfigError
from baton.signals.signatures import (
    LINEAR_SIGNATURE,
    LINEAR_TOLERANCE,
    VERIFIERS,
    sign_linear,
    verify,
    verify_linear,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRET = "lin_wh_5f0c2a9e71d4"
OLD = "lin_wh_0b8d3c61e2a7"


def body_at(when: datetime, **extra: object) -> bytes:
    payload = {"action": "update", "type": "Issue", "data": {"id": "i-1"}, **extra}
    payload["webhookTimestamp"] = int(when.timestamp() * 1000)
    return json.dumps(payload).encode()


def check(body: bytes, headers: dict[str, str], secrets: tuple[str, ...] = (SECRET,)) -> None:
    verify_linear(headers=headers, body=body, secrets=secrets, now=NOW)


def test_a_signed_fresh_body_is_accepted_with_either_secret_during_a_rotation() -> None:
    body = body_at(NOW - timedelta(seconds=5))
    check(body, sign_linear(body=body, secret=SECRET))
    check(body, sign_linear(body=body, secret=OLD), (SECRET, OLD))
    verify("linear", headers=sign_linear(body=body, secret=SECRET), body=body, secrets=[SECRET], now=NOW)
    assert VERIFIERS["linear"] is verify_linear


def test_the_signature_is_linears_documented_one() -> None:
    body = body_at(NOW)
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign_linear(body=body, secret=SECRET) == {"Linear-Signature": expected}
    check(body, {"linear-signature": expected.upper()})  # any header case; hex in either case


@pytest.mark.parametrize("seconds", [-60, 0, 59, 60])
def test_a_timestamp_within_a_minute_either_way_passes(seconds: int) -> None:
    body = body_at(NOW - timedelta(seconds=seconds))
    check(body, sign_linear(body=body, secret=SECRET))
    assert timedelta(seconds=60) == LINEAR_TOLERANCE


@pytest.mark.parametrize(
    ("seconds", "where"), [(61, "61 s old"), (3_600, "3600 s old"), (-61, "in the future")]
)
def test_a_replayed_or_future_body_is_refused_though_signed(seconds: int, where: str) -> None:
    body = body_at(NOW - timedelta(seconds=seconds))
    with pytest.raises(AuthError, match=f"outside the 60 s window .*{where}"):
        check(body, sign_linear(body=body, secret=SECRET))


def bad_cases() -> list[tuple[str, bytes, dict[str, str], str]]:
    body = body_at(NOW)
    good = sign_linear(body=body, secret=SECRET)[LINEAR_SIGNATURE]
    flipped = body.replace(b'"i-1"', b'"i-2"')
    return [
        ("wrong secret", body, sign_linear(body=body, secret="someone-else"), "signature mismatch"),
        ("body changed", flipped, {LINEAR_SIGNATURE: good}, "signature mismatch"),
        ("no header", body, {}, "missing Linear-Signature"),
        ("empty header", body, {LINEAR_SIGNATURE: " "}, "empty Linear-Signature"),
        ("two headers", body, {LINEAR_SIGNATURE: good, "linear-signature": good}, "more than one"),
        ("not hex", body, {LINEAR_SIGNATURE: "z" * 64}, "malformed"),
        ("short", body, {LINEAR_SIGNATURE: good[:-2]}, "malformed"),
        ("prefixed", body, {LINEAR_SIGNATURE: f"sha256={good}"}, "malformed"),
        ("huge header", body, {LINEAR_SIGNATURE: "a" * 10_000}, "too long"),
    ]


@pytest.mark.parametrize(
    ("case", "body", "headers", "fragment"), bad_cases(), ids=[c[0] for c in bad_cases()]
)
def test_forgeries_are_refused_with_a_reason_that_reveals_nothing(
    case: str, body: bytes, headers: dict[str, str], fragment: str
) -> None:
    with pytest.raises(AuthError, match=fragment) as caught:
        check(body, headers)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"[1, 2, 3]",
        b'{"action": "update"}',  # no timestamp
        b'{"webhookTimestamp": "1772452800000"}',  # a string
        b'{"webhookTimestamp": true}',
        b'{"webhookTimestamp": 1772452800000.5}',
        b'{"webhookTimestamp": ' + b"9" * 400 + b"}",  # far past any clock, no overflow
        b"[" * 5_000 + b"]" * 5_000,  # deeper than any parser should follow
    ],
)
def test_an_authentic_body_without_a_usable_timestamp_is_refused(body: bytes) -> None:
    with pytest.raises(AuthError, match="no webhookTimestamp"):
        check(body, sign_linear(body=body, secret=SECRET))


def test_caller_mistakes_are_not_the_senders_fault() -> None:
    body = body_at(NOW)
    headers = sign_linear(body=body, secret=SECRET)
    with pytest.raises(ConfigError):
        check(body, headers, ())
    with pytest.raises(TypeError):
        verify_linear(headers=headers, body=body.decode(), secrets=[SECRET], now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_linear(headers=headers, body=body, secrets=[SECRET], now=NOW.replace(tzinfo=None))


def test_the_generic_entry_point_keeps_linears_one_minute_window() -> None:
    body = body_at(NOW - timedelta(seconds=90))  # inside the others' 300 s, outside Linear's 60 s
    headers = sign_linear(body=body, secret=SECRET)
    with pytest.raises(AuthError):
        verify("linear", headers=headers, body=body, secrets=[SECRET], now=NOW)
    verify("linear", headers=headers, body=body, secrets=[SECRET], now=NOW, tolerance=timedelta(seconds=120))
