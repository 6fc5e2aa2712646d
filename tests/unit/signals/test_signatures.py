"""The verdict matrix for webhook authenticity: every source against every way to get it wrong."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from baton.errors import AuthError, ConfigError
from baton.signals import signatures
from baton.signals.signatures import (
    HUB_SIGNATURE,
    MAX_HEADER_LENGTH,
    PAGERDUTY_SIGNATURE,
    SLACK_SIGNATURE,
    SLACK_TIMESTAMP,
    VERIFIERS,
    ZENDESK_SIGNATURE,
    ZENDESK_TIMESTAMP,
    TokenHeader,
    Verifier,
    sign_intercom,
    sign_jira,
    sign_pagerduty,
    sign_slack,
    sign_token,
    sign_zendesk,
    verifier_for,
    verify,
    verify_intercom,
    verify_jira,
    verify_pagerduty,
    verify_slack,
    verify_zendesk,
)

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
# Non-ASCII on purpose: json.dumps escapes it by default, one more way re-serialising changes bytes.
BODY = '{"ticket": {"id": 42, "subject": "Printer on fire", "requester": "Zoë"}, "via": "web"}'.encode()
OLD = "old-secret-8c1f0b7e"
NEW = "new-secret-2d94a6c3"
WRONG = "wrong-secret-77e0d1aa"


# --- the signed schemes, as one table ---------------------------------------------------------------


@dataclass(frozen=True)
class Scheme:
    name: str
    verify: Verifier
    sign: Callable[[bytes, str, datetime], dict[str, str]]
    signature_header: str
    timestamp_header: str | None
    prefix: str  # what precedes the digest in the signature header
    malformed_digests: tuple[str, ...]  # right prefix, wrong digest shape

    def __str__(self) -> str:
        return self.name


_FULLWIDTH_ZERO = "\uff10"
_HEX_SHAPES = ("g" * 64, "ab " * 32, "0" * 63, "0" * 66, _FULLWIDTH_ZERO * 64, "")
SIGNED = [
    Scheme(
        "zendesk",
        verify_zendesk,
        lambda body, secret, at: sign_zendesk(body=body, secret=secret, timestamp=at),
        ZENDESK_SIGNATURE,
        ZENDESK_TIMESTAMP,
        "",
        ("!!!!", "AAAA", "A" * 43, "QUJD" * 11, "tRDSF7URY8BLCDlaBcQ7FHu051Zk-aAB0NKMP53teMw=", "é" * 44),
    ),
    Scheme(
        "pagerduty",
        verify_pagerduty,
        lambda body, secret, at: sign_pagerduty(body=body, secrets=[secret]),
        PAGERDUTY_SIGNATURE,
        None,
        "v1=",
        _HEX_SHAPES,
    ),
    Scheme(
        "jira",
        verify_jira,
        lambda body, secret, at: sign_jira(body=body, secret=secret),
        HUB_SIGNATURE,
        None,
        "sha256=",
        _HEX_SHAPES,
    ),
    Scheme(
        "intercom",
        verify_intercom,
        lambda body, secret, at: sign_intercom(body=body, secret=secret),
        HUB_SIGNATURE,
        None,
        "sha1=",
        ("g" * 40, "ab " * 20, "0" * 39, "0" * 42, _FULLWIDTH_ZERO * 40, ""),
    ),
    Scheme(
        "slack",
        verify_slack,
        lambda body, secret, at: sign_slack(body=body, secret=secret, timestamp=at),
        SLACK_SIGNATURE,
        SLACK_TIMESTAMP,
        "v0=",
        _HEX_SHAPES,
    ),
]
TIMESTAMPED = [scheme for scheme in SIGNED if scheme.timestamp_header]
UNTIMESTAMPED = [scheme for scheme in SIGNED if not scheme.timestamp_header]


def rejects(
    verifier: Verifier,
    *,
    headers: Mapping[str, str],
    match: str,
    body: bytes = BODY,
    secrets: tuple[str, ...] = (NEW,),
    now: datetime = NOW,
    tolerance: timedelta = signatures.DEFAULT_TOLERANCE,
) -> None:
    """Assert an AuthError whose reason leaks neither a secret nor the signature values."""
    with pytest.raises(AuthError, match=match) as caught:
        verifier(headers=headers, body=body, secrets=secrets, now=now, tolerance=tolerance)
    reason = str(caught.value)
    for secret in (*secrets, OLD, NEW, WRONG, OLD_TOKEN, NEW_TOKEN):
        assert secret not in reason
    for value in headers.values():
        if len(value) >= 16:
            assert value not in reason
    assert len(reason) < 200


def accepts(
    verifier: Verifier,
    *,
    headers: Mapping[str, str],
    body: bytes = BODY,
    secrets: tuple[str, ...] = (NEW,),
    now: datetime = NOW,
    tolerance: timedelta = signatures.DEFAULT_TOLERANCE,
) -> None:
    # Returning at all is the verdict: a rejection raises.
    verifier(headers=headers, body=body, secrets=secrets, now=now, tolerance=tolerance)


def flip_bit(data: bytes, index: int) -> bytes:
    flipped = bytearray(data)
    flipped[index] ^= 0x01
    return bytes(flipped)


# --- the matrix ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_a_correctly_signed_request_verifies(scheme: Scheme) -> None:
    accepts(scheme.verify, headers=scheme.sign(BODY, NEW, NOW))


@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_an_empty_body_can_be_signed(scheme: Scheme) -> None:
    # Zendesk's docs call out bodiless requests (GET, DELETE); nothing here should special-case them.
    accepts(scheme.verify, headers=scheme.sign(b"", NEW, NOW), body=b"")


@pytest.mark.parametrize("index", [0, len(BODY) // 2, len(BODY) - 1], ids=["first", "middle", "last"])
@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_one_flipped_bit_in_the_body_is_rejected(scheme: Scheme, index: int) -> None:
    headers = scheme.sign(BODY, NEW, NOW)
    rejects(scheme.verify, headers=headers, body=flip_bit(BODY, index), match="^signature mismatch$")


@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_a_request_signed_with_another_secret_is_rejected(scheme: Scheme) -> None:
    rejects(scheme.verify, headers=scheme.sign(BODY, WRONG, NOW), match="^signature mismatch$")


ROTATION = [
    # signed with, configured, accepted
    (OLD, (OLD, NEW), True),
    (NEW, (OLD, NEW), True),
    (OLD, (NEW, OLD), True),
    (NEW, (NEW, OLD), True),
    (OLD, (NEW,), False),  # the old secret was removed: its signatures stop working
    (NEW, (OLD,), False),  # the new secret is not configured yet
    (WRONG, (OLD, NEW), False),
]


@pytest.mark.parametrize(("signed_with", "configured", "accepted"), ROTATION)
@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_rotation(scheme: Scheme, signed_with: str, configured: tuple[str, ...], accepted: bool) -> None:
    headers = scheme.sign(BODY, signed_with, NOW)
    if accepted:
        accepts(scheme.verify, headers=headers, secrets=configured)
    else:
        rejects(scheme.verify, headers=headers, secrets=configured, match="^signature mismatch$")


@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_a_missing_signature_header_is_rejected(scheme: Scheme) -> None:
    headers = scheme.sign(BODY, NEW, NOW)
    del headers[scheme.signature_header]
    rejects(scheme.verify, headers=headers, match=f"^missing {scheme.signature_header} header$")


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_a_missing_timestamp_header_is_rejected(scheme: Scheme) -> None:
    assert scheme.timestamp_header
    headers = scheme.sign(BODY, NEW, NOW)
    del headers[scheme.timestamp_header]
    rejects(scheme.verify, headers=headers, match=f"^missing {scheme.timestamp_header} header$")


WINDOW = [
    # signed this long before now (negative: after), tolerance, accepted
    (timedelta(seconds=0), timedelta(seconds=300), True),
    (timedelta(seconds=300), timedelta(seconds=300), True),
    (timedelta(seconds=-300), timedelta(seconds=300), True),
    (timedelta(seconds=301), timedelta(seconds=300), False),
    (timedelta(seconds=-301), timedelta(seconds=300), False),
    (timedelta(days=3), timedelta(seconds=300), False),
    (timedelta(seconds=301), timedelta(seconds=600), True),
    (timedelta(seconds=1), timedelta(0), False),
]


@pytest.mark.parametrize(("age", "tolerance", "accepted"), WINDOW)
@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_the_replay_window(scheme: Scheme, age: timedelta, tolerance: timedelta, accepted: bool) -> None:
    headers = scheme.sign(BODY, NEW, NOW - age)
    if accepted:
        accepts(scheme.verify, headers=headers, tolerance=tolerance)
    else:
        window = int(tolerance.total_seconds())
        direction = "old" if age > timedelta(0) else "in the future"
        rejects(
            scheme.verify,
            headers=headers,
            tolerance=tolerance,
            match=rf"^timestamp outside the {window} s window \(\d+ s {direction}\)$",
        )


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_a_stale_timestamp_cannot_be_refreshed_without_the_secret(scheme: Scheme) -> None:
    # The timestamp is signed: moving it into the window breaks the signature.
    assert scheme.timestamp_header
    headers = scheme.sign(BODY, NEW, NOW - timedelta(hours=1))
    headers[scheme.timestamp_header] = scheme.sign(BODY, NEW, NOW)[scheme.timestamp_header]
    rejects(scheme.verify, headers=headers, match="^signature mismatch$")


@pytest.mark.parametrize("scheme", UNTIMESTAMPED, ids=str)
def test_schemes_without_a_signed_timestamp_do_not_judge_age(scheme: Scheme) -> None:
    # Documented limit: these vendors sign no time, so replay is caught by delivery-id dedup downstream.
    accepts(scheme.verify, headers=scheme.sign(BODY, NEW, NOW - timedelta(days=30)))


RESERIALISED = {
    "compact": lambda doc: json.dumps(doc, separators=(",", ":")),
    "indented": lambda doc: json.dumps(doc, indent=2),
    "sorted keys": lambda doc: json.dumps(doc, sort_keys=True),
    "unicode kept": lambda doc: json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
}


@pytest.mark.parametrize("dump", RESERIALISED.values(), ids=RESERIALISED.keys())
@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_a_reserialised_body_is_rejected(scheme: Scheme, dump: Callable[[object], str]) -> None:
    reserialised = dump(json.loads(BODY)).encode()
    assert reserialised != BODY and json.loads(reserialised) == json.loads(BODY)
    rejects(
        scheme.verify, headers=scheme.sign(BODY, NEW, NOW), body=reserialised, match="^signature mismatch$"
    )


@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_header_names_are_case_insensitive(scheme: Scheme) -> None:
    for case in (str.lower, str.upper):
        headers = {case(name): value for name, value in scheme.sign(BODY, NEW, NOW).items()}
        accepts(scheme.verify, headers=headers)


@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_a_repeated_signature_header_is_rejected(scheme: Scheme) -> None:
    headers = scheme.sign(BODY, NEW, NOW)
    headers[scheme.signature_header.lower()] = scheme.sign(BODY, WRONG, NOW)[scheme.signature_header]
    rejects(scheme.verify, headers=headers, match=f"^more than one {scheme.signature_header} header$")


@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_a_repeated_header_in_a_real_request_is_rejected(scheme: Scheme) -> None:
    # Starlette keeps every copy of a repeated header; the verifier must see them all and refuse.
    signed = scheme.sign(BODY, NEW, NOW)
    raw = [(name.lower().encode(), value.encode()) for name, value in signed.items()]
    raw.append((scheme.signature_header.lower().encode(), signed[scheme.signature_header].encode()))
    rejects(
        scheme.verify, headers=Headers(raw=raw), match=f"^more than one {scheme.signature_header} header$"
    )
    accepts(scheme.verify, headers=Headers(raw=raw[:-1]))


# --- hostile header values -------------------------------------------------------------------------


# PagerDuty skips entries that are not v1=..., so for it garbage reads as "no v1 signature".
BAD_VALUE = "^(malformed|no v1 signature in) "


def _hostile_signatures(scheme: Scheme) -> list[tuple[str, str]]:
    cases = [
        ("", "^empty "),
        (" \t ", "^empty "),
        ("\x00", BAD_VALUE),
        ("é" * 64, BAD_VALUE),
        ("\u202e" + "0" * 64, BAD_VALUE),
        (scheme.prefix + "0" * (MAX_HEADER_LENGTH + 1), "too long$"),
        ("A" * 1_000_000, "too long$"),
        ("v1=" * 5000, "too long$"),
    ]
    cases += [(scheme.prefix + digest, BAD_VALUE) for digest in scheme.malformed_digests]
    return cases


HOSTILE_SIGNATURES = [
    pytest.param(scheme, value, match, id=f"{scheme}-{i}")
    for scheme in SIGNED
    for i, (value, match) in enumerate(_hostile_signatures(scheme))
]


@pytest.mark.parametrize(("scheme", "value", "match"), HOSTILE_SIGNATURES)
def test_hostile_signature_values_are_auth_errors(scheme: Scheme, value: str, match: str) -> None:
    headers = scheme.sign(BODY, NEW, NOW)
    headers[scheme.signature_header] = value
    rejects(scheme.verify, headers=headers, match=match)


HOSTILE_TIMESTAMPS = {
    SLACK_TIMESTAMP: [
        "now",
        "-1",
        "+1777896000",
        "1777896000.0",
        "1e9",
        "0x69f88a40",
        "1_777_896_000",
        "".join(chr(0xFF10 + int(d)) for d in "1777896000"),  # fullwidth digits: int() takes them
        "\u0663" * 10,  # Arabic-Indic digits
        "9" * 40,  # would overflow a datetime
        "1777896000 1777896000",
        "",
    ],
    ZENDESK_TIMESTAMP: [
        "yesterday",
        "2026-05-04T12:00:00",  # no offset: naive
        "2026-05-04",
        "2026-13-45T00:00:00Z",
        "2026-05-04é12:00:00+00:00",
        "2026-05-04T12:00:00+99:00",
        "1777896000",
        "9" * 40,
        "",
    ],
}


@pytest.mark.parametrize(
    ("scheme", "value"),
    [
        pytest.param(scheme, value, id=f"{scheme}-{i}")
        for scheme in TIMESTAMPED
        for i, value in enumerate(HOSTILE_TIMESTAMPS[scheme.timestamp_header or ""])
    ],
)
def test_hostile_timestamp_values_are_auth_errors(scheme: Scheme, value: str) -> None:
    assert scheme.timestamp_header
    headers = scheme.sign(BODY, NEW, NOW)
    headers[scheme.timestamp_header] = value
    rejects(scheme.verify, headers=headers, match="^(malformed|empty) |no UTC offset|outside the")


@pytest.mark.parametrize("scheme", SIGNED, ids=str)
@given(value=st.text(max_size=300))
def test_any_text_in_any_header_gives_auth_error_or_passes(scheme: Scheme, value: str) -> None:
    for header in filter(None, (scheme.signature_header, scheme.timestamp_header)):
        headers = scheme.sign(BODY, NEW, NOW)
        headers[header] = value
        # Anything but AuthError (or success) propagates and fails the test.
        with contextlib.suppress(AuthError):
            scheme.verify(headers=headers, body=BODY, secrets=(NEW,), now=NOW)


# --- scheme-specific details -----------------------------------------------------------------------


def test_pagerduty_accepts_a_rotation_header_holding_both_signatures() -> None:
    # During rotation PagerDuty sends one v1 entry per secret, comma-separated.
    headers = sign_pagerduty(body=BODY, secrets=[OLD, NEW])
    assert headers[PAGERDUTY_SIGNATURE].count("v1=") == 2
    accepts(verify_pagerduty, headers=headers, secrets=(NEW,))
    accepts(verify_pagerduty, headers=headers, secrets=(OLD,))
    rejects(verify_pagerduty, headers=headers, secrets=(WRONG,), match="^signature mismatch$")


@pytest.mark.parametrize(
    ("template", "accepted"),
    [
        ("v2=zzz,{v1}", True),  # unknown versions are skipped, as the docs say
        ("{v1}, v2=abc", True),
        (" {v1} ,", True),
        ("v0=abc,V1=abc", False),
        ("v1", False),
    ],
)
def test_pagerduty_reads_only_v1_entries(template: str, accepted: bool) -> None:
    v1 = sign_pagerduty(body=BODY, secrets=[NEW])[PAGERDUTY_SIGNATURE]
    headers = {PAGERDUTY_SIGNATURE: template.format(v1=v1)}
    if accepted:
        accepts(verify_pagerduty, headers=headers)
    else:
        rejects(verify_pagerduty, headers=headers, match=f"^no v1 signature in {PAGERDUTY_SIGNATURE} header$")


def test_pagerduty_rejects_a_header_with_a_malformed_v1_entry() -> None:
    v1 = sign_pagerduty(body=BODY, secrets=[NEW])[PAGERDUTY_SIGNATURE]
    rejects(verify_pagerduty, headers={PAGERDUTY_SIGNATURE: f"{v1},v1=nothex"}, match="^malformed ")


@pytest.mark.parametrize(
    ("verifier", "headers"),
    [
        # Jira must not be talked down to SHA-1, nor Intercom's verifier fed a SHA-256 tag.
        (verify_jira, sign_intercom(body=BODY, secret=NEW)),
        (verify_intercom, sign_jira(body=BODY, secret=NEW)),
        (verify_jira, {HUB_SIGNATURE: sign_jira(body=BODY, secret=NEW)[HUB_SIGNATURE].upper()}),
        (verify_jira, {HUB_SIGNATURE: sign_jira(body=BODY, secret=NEW)[HUB_SIGNATURE][len("sha256=") :]}),
    ],
    ids=["sha1-to-jira", "sha256-to-intercom", "uppercase-method", "no-method"],
)
def test_hub_signatures_must_name_the_expected_method(verifier: Verifier, headers: dict[str, str]) -> None:
    rejects(verifier, headers=headers, match=f"^malformed {HUB_SIGNATURE} header")


def test_hex_digits_may_be_either_case() -> None:
    signed = sign_jira(body=BODY, secret=NEW)[HUB_SIGNATURE]
    accepts(verify_jira, headers={HUB_SIGNATURE: "sha256=" + signed[len("sha256=") :].upper()})


@pytest.mark.parametrize("version", ["v1", "V0", "", "v0 "])
def test_slack_accepts_only_v0(version: str) -> None:
    headers = sign_slack(body=BODY, secret=NEW, timestamp=NOW)
    headers[SLACK_SIGNATURE] = version + headers[SLACK_SIGNATURE][2:]
    rejects(verify_slack, headers=headers, match=f"^malformed {SLACK_SIGNATURE} header$")


def test_zendesk_timestamps_in_other_offsets_are_compared_as_instants() -> None:
    headers = sign_zendesk(body=BODY, secret=NEW, timestamp=NOW)
    assert headers[ZENDESK_TIMESTAMP] == "2026-05-04T12:00:00Z"
    # Same instant, written in another offset: the window accepts it, but it is not the signed text.
    headers[ZENDESK_TIMESTAMP] = "2026-05-04T14:00:00+02:00"
    rejects(verify_zendesk, headers=headers, match="^signature mismatch$")


@pytest.mark.parametrize("junk", ["*", "\n", " ", "-", "=="])
def test_zendesk_signature_with_junk_inside_is_malformed(junk: str) -> None:
    # A lenient base64 decoder would drop the junk and accept the signature; the header must be exact.
    headers = sign_zendesk(body=BODY, secret=NEW, timestamp=NOW)
    signature = headers[ZENDESK_SIGNATURE]
    headers[ZENDESK_SIGNATURE] = signature[:10] + junk + signature[10:]
    rejects(verify_zendesk, headers=headers, match=f"^malformed {ZENDESK_SIGNATURE} header$")


# --- independently computed vectors ----------------------------------------------------------------

# Slack's worked example from https://api.slack.com/authentication/verifying-requests-from-slack.
SLACK_DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_DOC_TIMESTAMP = "1531420618"
SLACK_DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554"
    b"%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SLACK_DOC_NOW = datetime.fromtimestamp(int(SLACK_DOC_TIMESTAMP), UTC) + timedelta(seconds=42)


@dataclass(frozen=True)
class Vector:
    """A signature computed outside this code base, and how our signer should reproduce it."""

    verifier: Verifier
    headers: dict[str, str]
    body: bytes
    secret: str
    now: datetime
    resign: Callable[[], dict[str, str]]


# The other values were computed with the OpenSSL CLI, not with Python, e.g. for Zendesk:
#   printf '%s' '2026-05-04T12:00:00Z{"ticket":...}' \
#     | openssl dgst -sha256 -hmac 'zendesk-vector-secret' -binary | base64
# and `openssl dgst -sha256 -hmac <secret> -r` (hex) for PagerDuty and Jira, `-sha1` for Intercom.
_ZD_BODY = b'{"ticket":{"id":42,"subject":"Printer on fire"}}'
_PD_BODY = b'{"event":{"id":"01DEN3LQ8W0ZQ1XRJ5N2Z9W3BT","event_type":"incident.triggered"}}'
_JIRA_BODY = b'{"webhookEvent":"jira:issue_created","issue":{"key":"SUP-7"}}'
_IC_BODY = b'{"type":"notification_event","topic":"conversation.user.replied"}'
VECTORS = {
    "slack-docs": Vector(
        verify_slack,
        {SLACK_SIGNATURE: SLACK_DOC_SIGNATURE, SLACK_TIMESTAMP: SLACK_DOC_TIMESTAMP},
        SLACK_DOC_BODY,
        SLACK_DOC_SECRET,
        SLACK_DOC_NOW,
        lambda: sign_slack(
            body=SLACK_DOC_BODY,
            secret=SLACK_DOC_SECRET,
            timestamp=datetime.fromtimestamp(int(SLACK_DOC_TIMESTAMP), UTC),
        ),
    ),
    "zendesk-openssl": Vector(
        verify_zendesk,
        {
            ZENDESK_SIGNATURE: "BIOz6WDJD6l6oIXwwBbOvPB9Zr4LnLacvFnSjNMAfwI=",
            ZENDESK_TIMESTAMP: "2026-05-04T12:00:00Z",
        },
        _ZD_BODY,
        "zendesk-vector-secret",
        NOW,
        lambda: sign_zendesk(body=_ZD_BODY, secret="zendesk-vector-secret", timestamp=NOW),
    ),
    "pagerduty-openssl": Vector(
        verify_pagerduty,
        {PAGERDUTY_SIGNATURE: "v1=33d216ec17f51ff5b832671df6b5cc8ddbbe58af4714d637b00bea64a5a531ee"},
        _PD_BODY,
        "pagerduty-vector-secret",
        NOW,
        lambda: sign_pagerduty(body=_PD_BODY, secrets=["pagerduty-vector-secret"]),
    ),
    "jira-openssl": Vector(
        verify_jira,
        {HUB_SIGNATURE: "sha256=046ea8e3f4aa6944604a29fb1dcecf44d1cba1308614365093056c8aa837d8d5"},
        _JIRA_BODY,
        "jira-vector-secret",
        NOW,
        lambda: sign_jira(body=_JIRA_BODY, secret="jira-vector-secret"),
    ),
    "intercom-openssl": Vector(
        verify_intercom,
        {HUB_SIGNATURE: "sha1=eb9bfa09c458c0361be2263bbdc16dae8736dbce"},
        _IC_BODY,
        "intercom-vector-secret",
        NOW,
        lambda: sign_intercom(body=_IC_BODY, secret="intercom-vector-secret"),
    ),
}


@pytest.mark.parametrize("vector", VECTORS.values(), ids=VECTORS.keys())
def test_independent_vectors_verify(vector: Vector) -> None:
    accepts(
        vector.verifier, headers=vector.headers, body=vector.body, secrets=(vector.secret,), now=vector.now
    )
    rejects(
        vector.verifier,
        headers=vector.headers,
        body=vector.body + b" ",
        secrets=(vector.secret,),
        now=vector.now,
        match="^signature mismatch$",
    )


@pytest.mark.parametrize("vector", VECTORS.values(), ids=VECTORS.keys())
def test_signers_reproduce_the_independent_vectors(vector: Vector) -> None:
    assert vector.resign() == vector.headers


def test_the_slack_docs_vector_is_stale_a_day_later() -> None:
    vector = VECTORS["slack-docs"]
    rejects(
        verify_slack,
        headers=vector.headers,
        body=vector.body,
        secrets=(vector.secret,),
        now=vector.now + timedelta(days=1),
        match="outside the 300 s window",
    )


# --- shared-token sources --------------------------------------------------------------------------

TOKEN_SOURCES = ["freshdesk", "alertmanager", "servicenow", "generic"]
OLD_TOKEN = "old-token-5b0c9e1f"
NEW_TOKEN = "new-token-a4d2e880"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


TOKEN_CASES = [
    # headers, configured tokens, expected error (None: accepted)
    pytest.param(bearer(NEW_TOKEN), (NEW_TOKEN,), None, id="right-token"),
    pytest.param({"authorization": f"bearer {NEW_TOKEN}"}, (NEW_TOKEN,), None, id="any-case"),
    pytest.param(bearer(WRONG), (NEW_TOKEN,), "^token mismatch$", id="wrong-token"),
    pytest.param(bearer(NEW_TOKEN[:-1]), (NEW_TOKEN,), "^token mismatch$", id="prefix-of-token"),
    pytest.param(bearer(NEW_TOKEN + "x"), (NEW_TOKEN,), "^token mismatch$", id="token-plus-one"),
    pytest.param({}, (NEW_TOKEN,), "^missing Authorization header$", id="missing"),
    pytest.param({"X-Other": NEW_TOKEN}, (NEW_TOKEN,), "^missing Authorization header$", id="other-header"),
    pytest.param(bearer(OLD_TOKEN), (OLD_TOKEN, NEW_TOKEN), None, id="rotation-old"),
    pytest.param(bearer(NEW_TOKEN), (OLD_TOKEN, NEW_TOKEN), None, id="rotation-new"),
    pytest.param(bearer(OLD_TOKEN), (NEW_TOKEN,), "^token mismatch$", id="old-after-rotation"),
    pytest.param(
        {"Authorization": NEW_TOKEN}, (NEW_TOKEN,), "does not use the Bearer scheme", id="no-scheme"
    ),
    pytest.param({"Authorization": "Bearer "}, (NEW_TOKEN,), "^malformed Authorization", id="no-token"),
    pytest.param({"Authorization": ""}, (NEW_TOKEN,), "^empty Authorization", id="empty"),
    pytest.param(
        {"Authorization": "Basic " + NEW_TOKEN}, (NEW_TOKEN,), "does not use the Bearer scheme", id="basic"
    ),
    pytest.param(bearer("x" * 1_000_000), (NEW_TOKEN,), "too long$", id="huge"),
    pytest.param(bearer("\x00é\u202e"), (NEW_TOKEN,), "^token mismatch$", id="control-and-unicode"),
]


@pytest.mark.parametrize(("headers", "configured", "error"), TOKEN_CASES)
@pytest.mark.parametrize("source", TOKEN_SOURCES)
def test_token_sources(
    source: str, headers: dict[str, str], configured: tuple[str, ...], error: str | None
) -> None:
    verifier = verifier_for(source)
    if error is None:
        accepts(verifier, headers=headers, secrets=configured)
    else:
        rejects(verifier, headers=headers, secrets=configured, match=error)


def test_a_custom_token_header_carries_the_bare_token() -> None:
    custom = TokenHeader(header="X-Baton-Token", scheme=None)
    accepts(
        custom, headers=sign_token(token=NEW_TOKEN, header="X-Baton-Token", scheme=None), secrets=(NEW_TOKEN,)
    )
    accepts(custom, headers={"x-baton-token": NEW_TOKEN}, secrets=(NEW_TOKEN,))
    rejects(custom, headers={"X-Baton-Token": WRONG}, secrets=(NEW_TOKEN,), match="^token mismatch$")
    rejects(custom, headers=bearer(NEW_TOKEN), secrets=(NEW_TOKEN,), match="^missing X-Baton-Token header$")


def test_basic_authentication_compares_user_and_password() -> None:
    basic = TokenHeader(scheme="Basic")
    headers = sign_token(token="baton:s3cret-pass", scheme="Basic")
    assert headers == {"Authorization": "Basic YmF0b246czNjcmV0LXBhc3M="}  # base64 of baton:s3cret-pass
    accepts(basic, headers=headers, secrets=("baton:s3cret-pass",))
    rejects(basic, headers=headers, secrets=("baton:other",), match="^token mismatch$")
    rejects(
        basic, headers={"Authorization": "Basic !!!"}, secrets=("baton:x",), match="^malformed Authorization"
    )


def test_the_default_token_verifier_matches_sign_token() -> None:
    accepts(verifier_for("generic"), headers=sign_token(token=NEW_TOKEN), secrets=(NEW_TOKEN,))


@pytest.mark.parametrize(
    ("header", "scheme"),
    [("Bad Header", "Bearer"), ("", None), ("X-Token:", None), ("Authorization", "Digest")],
)
def test_token_header_configuration_is_validated(header: str, scheme: str | None) -> None:
    with pytest.raises(ConfigError):
        TokenHeader(header=header, scheme=scheme)  # type: ignore[arg-type]


# --- registry and caller errors --------------------------------------------------------------------


def test_the_registry_covers_every_source() -> None:
    assert set(VERIFIERS) == {
        "zendesk",
        "pagerduty",
        "jira",
        "intercom",
        "slack",
        "linear",
        "freshdesk",
        "alertmanager",
        "servicenow",
        "generic",
    }
    for scheme in SIGNED:
        assert VERIFIERS[scheme.name] is scheme.verify


def test_the_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        VERIFIERS["evil"] = verify_jira  # type: ignore[index]


def test_an_unknown_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no webhook verifier for source 'github'"):
        verifier_for("github")


def test_verify_dispatches_by_source_name() -> None:
    verify(
        "slack", headers=sign_slack(body=BODY, secret=NEW, timestamp=NOW), body=BODY, secrets=[NEW], now=NOW
    )
    with pytest.raises(AuthError, match=r"^missing X-Hub-Signature header$"):
        verify(
            "jira",
            headers=sign_slack(body=BODY, secret=NEW, timestamp=NOW),
            body=BODY,
            secrets=[NEW],
            now=NOW,
        )


BAD_CALLS: list[tuple[dict[str, object], type[Exception]]] = [
    ({"secrets": ()}, ConfigError),
    ({"secrets": (OLD, NEW, WRONG)}, ConfigError),
    ({"secrets": "k2"}, ConfigError),  # a lone string (short enough to pass the count check)
    ({"secrets": ("",)}, ConfigError),
    ({"secrets": (NEW, "")}, ConfigError),
    ({"now": datetime(2026, 5, 4, 12, 0)}, ValueError),  # naive on purpose
    ({"tolerance": timedelta(seconds=-1)}, ValueError),
    ({"body": BODY.decode()}, TypeError),
]


@pytest.mark.parametrize(("change", "error"), BAD_CALLS)
@pytest.mark.parametrize("source", sorted(VERIFIERS))
def test_caller_mistakes_are_not_auth_errors(
    source: str, change: dict[str, object], error: type[Exception]
) -> None:
    arguments: dict[str, object] = {"headers": {}, "body": BODY, "secrets": (NEW,), "now": NOW} | change
    with pytest.raises(error) as caught:
        verifier_for(source)(**arguments)  # type: ignore[arg-type]
    assert not isinstance(caught.value, AuthError)


def test_signers_refuse_naive_timestamps() -> None:
    naive = datetime(2026, 5, 4, 12, 0)  # naive on purpose
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_zendesk(body=BODY, secret=NEW, timestamp=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_slack(body=BODY, secret=NEW, timestamp=naive)


def test_every_public_name_exists() -> None:
    assert sorted(signatures.__all__) == sorted(set(signatures.__all__))
    for name in signatures.__all__:
        assert hasattr(signatures, name), name
