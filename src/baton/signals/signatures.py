"""Is this webhook really from the vendor? One pure verifier per signing scheme.

Every verifier has the shape of :class:`Verifier`: it takes the request headers, the body bytes
exactly as received, the source's configured secrets and the current time, and returns ``None`` or
raises :class:`~baton.errors.AuthError`. The reason in the error names headers only, never a
secret, an expected signature or the received value, so it is safe to log and to send back.

The schemes, as the vendors document them (sources are cited next to each verifier):

============  ==============================================  ========================================
source        headers                                         what is signed, and how it is encoded
============  ==============================================  ========================================
zendesk       X-Zendesk-Webhook-Signature,                    HMAC-SHA256(timestamp + body), base64;
              X-Zendesk-Webhook-Signature-Timestamp           the timestamp is ISO 8601
pagerduty     X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]   HMAC-SHA256(body), hex; one per secret
jira          X-Hub-Signature: sha256=<hex>                   HMAC-SHA256(body), hex
intercom      X-Hub-Signature: sha1=<hex>                     HMAC-SHA1(body), hex
slack         X-Slack-Signature: v0=<hex>,                    HMAC-SHA256("v0:" + ts + ":" + body),
              X-Slack-Request-Timestamp                       hex; the timestamp is Unix seconds
linear        Linear-Signature: <hex>                         HMAC-SHA256(body), hex; the body's
                                                              webhookTimestamp (Unix ms) is checked
freshdesk,    Authorization: Bearer <token>, or another       nothing is signed: the source sends a
alertmanager, header per source (see :class:`TokenHeader`)    shared token, compared in constant time
servicenow,
generic
============  ==============================================  ========================================

What every verifier guarantees:

* Comparison is constant-time (:func:`hmac.compare_digest`), and every configured secret and every
  offered signature is compared without an early exit, so timing says nothing about which came close.
* The MAC is computed over the raw bytes given. A body that was parsed and re-serialised (other
  spacing, other key order) no longer verifies, which is the point: callers must pass what came
  off the wire.
* During a rotation two secrets are configured and a request signed with either is accepted; once
  the old one is removed from configuration, requests signed with it are rejected.
* Where the vendor signs a timestamp, a request more than ``tolerance`` (300 s by default) away
  from ``now`` in either direction is rejected. This bounds replay to the window; inside it, and
  for vendors that sign no timestamp, duplicates must be dropped by delivery id downstream.
* Malformed input (bad base64, non-hex digits, a non-numeric or unparsable timestamp, repeated or
  oversized headers) is an ``AuthError``, never another exception.
* Pure: no clock (``now`` is passed in), no I/O, no environment.

Caller mistakes are not the sender's fault and are not ``AuthError``: no secret, an empty one or
more than two raise :class:`~baton.errors.ConfigError`; a naive ``now`` or a negative tolerance
raises ``ValueError``; a ``str`` body (already decoded, so not what was signed) ``TypeError``.

The ``sign_*`` helpers produce the headers a vendor would send, for tests and for the local
stand-in servers that post signed webhooks in integration tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final, Literal, Protocol

from baton.errors import AuthError, ConfigError

__all__ = [
    "DEFAULT_TOLERANCE",
    "HUB_SIGNATURE",
    "LINEAR_SIGNATURE",
    "LINEAR_TOLERANCE",
    "MAX_HEADER_LENGTH",
    "MAX_SECRETS",
    "PAGERDUTY_SIGNATURE",
    "SLACK_SIGNATURE",
    "SLACK_TIMESTAMP",
    "VERIFIERS",
    "ZENDESK_SIGNATURE",
    "ZENDESK_TIMESTAMP",
    "TokenHeader",
    "Verifier",
    "sign_intercom",
    "sign_jira",
    "sign_linear",
    "sign_pagerduty",
    "sign_slack",
    "sign_token",
    "sign_zendesk",
    "verifier_for",
    "verify",
    "verify_intercom",
    "verify_jira",
    "verify_linear",
    "verify_pagerduty",
    "verify_slack",
    "verify_zendesk",
]

DEFAULT_TOLERANCE: Final = timedelta(seconds=300)
# One secret normally, two while rotating. More would keep a retired (perhaps leaked) secret valid
# for longer than a rotation needs.
MAX_SECRETS: Final = 2
# The longest signature header we expect is PagerDuty's with a few comma-separated v1 entries
# (about 70 characters each). Anything far longer is not from a vendor and is refused before parsing.
MAX_HEADER_LENGTH: Final = 4096

ZENDESK_SIGNATURE: Final = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP: Final = "X-Zendesk-Webhook-Signature-Timestamp"
PAGERDUTY_SIGNATURE: Final = "X-PagerDuty-Signature"
HUB_SIGNATURE: Final = "X-Hub-Signature"
SLACK_SIGNATURE: Final = "X-Slack-Signature"
SLACK_TIMESTAMP: Final = "X-Slack-Request-Timestamp"
LINEAR_SIGNATURE: Final = "Linear-Signature"
LINEAR_TOLERANCE: Final = timedelta(seconds=60)
"""Linear asks receivers to refuse a ``webhookTimestamp`` more than a minute from their clock."""

_SHA256_SIZE: Final = 32
_SHA1_SIZE: Final = 20
_HEX: Final = re.compile(r"[0-9a-fA-F]+")
# ASCII digits only: int() would also take "+1", " 1", "1_000" and non-ASCII (Arabic-Indic,
# fullwidth) digits. Eleven digits reach past the year 5000, enough for any honest clock.
_UNIX_SECONDS: Final = re.compile(r"[0-9]{1,11}")
_MAX_UNIX_MS: Final = 10**14  # the year 5138; anything larger is not a clock reading
# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class Verifier(Protocol):
    """Checks one webhook request; returns ``None`` when authentic, raises ``AuthError`` if not."""

    def __call__(
        self,
        *,
        headers: Mapping[str, str],
        body: bytes,
        secrets: Sequence[str],
        now: datetime,
        tolerance: timedelta = DEFAULT_TOLERANCE,
    ) -> None: ...


# --- signed schemes --------------------------------------------------------------------------------


def verify_zendesk(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> None:
    """Zendesk webhooks: ``base64(HMAC-SHA256(secret, TIMESTAMP + BODY))``.

    Per https://developer.zendesk.com/documentation/webhooks/verifying/ the signature is in
    ``X-Zendesk-Webhook-Signature`` and the signed timestamp in
    ``X-Zendesk-Webhook-Signature-Timestamp``, an ISO 8601 UTC time such as
    ``2021-07-25T10:00:00Z``. The signing secret is used as the key as-is (not base64-decoded),
    as in Zendesk's own Node example.
    """
    keys = _prepare(body=body, secrets=secrets, now=now, tolerance=tolerance)
    offered = _base64_digest(_header(headers, ZENDESK_SIGNATURE), _SHA256_SIZE, ZENDESK_SIGNATURE)
    stamp = _header(headers, ZENDESK_TIMESTAMP)
    _check_window((now - _iso_time(stamp, ZENDESK_TIMESTAMP)).total_seconds(), tolerance)
    # Zendesk's older "event connectors" page shows BODY + TIMESTAMP; the Support webhooks page,
    # which is what sends these headers, says TIMESTAMP + BODY.
    _require_match(_macs(keys, stamp.encode("ascii") + body, "sha256"), [offered])


def verify_pagerduty(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> None:
    """PagerDuty v3 webhooks: ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256(secret, body)>``.

    Per PagerDuty's "Verifying Signatures" (github.com/PagerDuty/developer-docs,
    docs/webhooks/04-Signatures.md) the header may hold several comma-separated signatures during
    a secret rotation; entries of other versions are ignored and one matching ``v1`` suffices.
    PagerDuty signs no timestamp, so ``now`` and ``tolerance`` are only validated.
    """
    keys = _prepare(body=body, secrets=secrets, now=now, tolerance=tolerance)
    offered = [
        _hex_digest(digest, _SHA256_SIZE, PAGERDUTY_SIGNATURE)
        for version, digest in _versioned_entries(_header(headers, PAGERDUTY_SIGNATURE))
        if version == "v1"
    ]
    if not offered:
        raise AuthError(f"no v1 signature in {PAGERDUTY_SIGNATURE} header")
    _require_match(_macs(keys, body, "sha256"), offered)


def verify_jira(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> None:
    """Jira webhooks registered with a secret: ``X-Hub-Signature: sha256=<hex>`` over the body.

    Per https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks and
    https://confluence.atlassian.com/adminjiraserver/managing-webhooks-938846912.html (WebSub
    ``method=signature`` form, HMAC-SHA256 keyed with the webhook secret). No timestamp is signed.
    Only ``sha256`` is accepted, so a sender cannot downgrade to a weaker method.
    """
    keys = _prepare(body=body, secrets=secrets, now=now, tolerance=tolerance)
    _verify_hub(headers, body, keys, "sha256", _SHA256_SIZE)


def verify_intercom(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> None:
    """Intercom webhooks: ``X-Hub-Signature: sha1=<hex HMAC-SHA1(client_secret, body)>``.

    Per https://developers.intercom.com/intercom-api-reference/v1.0/reference/signed-notifications
    ("the hexadecimal (40-byte) representation of a SHA-1 signature computed using the HMAC
    algorithm as defined in RFC2104"). SHA-1 is weak as a hash but HMAC-SHA1 is still sound as a
    MAC; it is what Intercom sends. No timestamp is signed.
    """
    keys = _prepare(body=body, secrets=secrets, now=now, tolerance=tolerance)
    _verify_hub(headers, body, keys, "sha1", _SHA1_SIZE)


def verify_slack(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> None:
    """Slack-style signing: ``X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:{ts}:{body}")>``.

    Per https://api.slack.com/authentication/verifying-requests-from-slack: ``ts`` is the
    ``X-Slack-Request-Timestamp`` header in Unix seconds, and Slack itself recommends rejecting
    requests more than five minutes away from local time.
    """
    keys = _prepare(body=body, secrets=secrets, now=now, tolerance=tolerance)
    version, sep, digest = _header(headers, SLACK_SIGNATURE).partition("=")
    if version != "v0" or not sep:
        raise AuthError(f"malformed {SLACK_SIGNATURE} header")
    offered = _hex_digest(digest, _SHA256_SIZE, SLACK_SIGNATURE)
    stamp = _header(headers, SLACK_TIMESTAMP)
    if not _UNIX_SECONDS.fullmatch(stamp):
        raise AuthError(f"malformed {SLACK_TIMESTAMP} header")
    _check_window(now.timestamp() - int(stamp), tolerance)
    _require_match(_macs(keys, b"v0:" + stamp.encode("ascii") + b":" + body, "sha256"), [offered])


def verify_linear(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = LINEAR_TOLERANCE,
) -> None:
    """Linear webhooks: ``Linear-Signature: <hex HMAC-SHA256(secret, body)>``, and the body's
    ``webhookTimestamp`` (Unix milliseconds) within ``tolerance`` (60 s) of ``now``.

    Per https://linear.app/developers/webhooks ("Securing webhooks"): the signature covers the raw
    body only; the time of sending is a field of that body, so it is covered by the signature, and
    Linear recommends refusing a ``webhookTimestamp`` more than a minute away to guard against
    replays. The signature is checked first: an unauthenticated body is never parsed. A body that
    authenticates but carries no whole-number ``webhookTimestamp`` is refused too.
    """
    keys = _prepare(body=body, secrets=secrets, now=now, tolerance=tolerance)
    offered = _hex_digest(_header(headers, LINEAR_SIGNATURE), _SHA256_SIZE, LINEAR_SIGNATURE)
    _require_match(_macs(keys, body, "sha256"), [offered])
    try:
        stamp = json.loads(body).get("webhookTimestamp")
    except (ValueError, AttributeError, RecursionError):  # not JSON, or not an object
        stamp = None
    if isinstance(stamp, bool) or not isinstance(stamp, int) or abs(stamp) > _MAX_UNIX_MS:
        raise AuthError("no webhookTimestamp (Unix milliseconds) in the signed body")
    _check_window(now.timestamp() - stamp / 1000, tolerance)


# --- shared-token sources --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenHeader:
    """A source that signs nothing and proves itself with a shared token in one header.

    ServiceNow outbound REST messages, Freshdesk "Trigger webhook" automation actions and
    Alertmanager ``webhook_configs`` cannot sign a body, but each can send fixed credentials: a
    bearer token or basic authentication (Alertmanager ``http_config``; a ServiceNow REST message's
    basic auth profile; Freshdesk's "requires authentication" option), or a custom header set on
    the sender (ServiceNow REST message HTTP headers). ``scheme`` says how the value is read:

    * ``"Bearer"``: ``Authorization: Bearer <token>``; the secret is the token.
    * ``"Basic"``: ``Authorization: Basic base64(user:password)``; the secret is ``user:password``.
    * ``None``: the whole value of a custom header (``X-Baton-Token: <token>``) is the token.

    A token proves only that the sender knows it: it does not protect the body, and a captured
    request can be replayed. Prefer a signing source where the vendor offers one, and TLS always.
    """

    header: str = "Authorization"
    scheme: Literal["Bearer", "Basic"] | None = "Bearer"

    def __post_init__(self) -> None:
        if not _HEADER_NAME.fullmatch(self.header):
            raise ConfigError(f"not a valid HTTP header name: {self.header!r}")
        if self.scheme not in ("Bearer", "Basic", None):
            raise ConfigError(f"unsupported authorization scheme: {self.scheme!r}")

    def __call__(
        self,
        *,
        headers: Mapping[str, str],
        body: bytes,
        secrets: Sequence[str],
        now: datetime,
        tolerance: timedelta = DEFAULT_TOLERANCE,
    ) -> None:
        """Accept the request if the header carries one of the configured tokens."""
        keys = _prepare(body=body, secrets=secrets, now=now, tolerance=tolerance)
        offered = self._credential(_header(headers, self.header))
        # Hash both sides first so compare_digest always sees equal lengths: its running time
        # then does not reveal how long the configured token is.
        if not _any_equal([_sha256(key) for key in keys], [_sha256(offered)]):
            raise AuthError("token mismatch")

    def _credential(self, value: str) -> bytes:
        if self.scheme is None:
            return value.encode("utf-8")
        scheme, _, credential = value.partition(" ")
        # Authentication scheme names are case-insensitive (RFC 9110 section 11.1).
        if scheme.casefold() != self.scheme.casefold():
            raise AuthError(f"{self.header} header does not use the {self.scheme} scheme")
        credential = credential.strip(" \t")
        if not credential:
            raise AuthError(f"malformed {self.header} header")
        if self.scheme == "Basic":
            try:
                return base64.b64decode(credential, validate=True)
            except (binascii.Error, ValueError):
                raise AuthError(f"malformed {self.header} header") from None
        return credential.encode("utf-8")


# --- registry --------------------------------------------------------------------------------------

_BEARER: Final = TokenHeader()

VERIFIERS: Final[Mapping[str, Verifier]] = MappingProxyType(
    {
        "zendesk": verify_zendesk,
        "pagerduty": verify_pagerduty,
        "jira": verify_jira,
        "intercom": verify_intercom,
        "slack": verify_slack,
        "linear": verify_linear,
        # These three cannot sign; they default to Authorization: Bearer. A source configured with
        # a custom header uses its own TokenHeader instead of this entry.
        "freshdesk": _BEARER,
        "alertmanager": _BEARER,
        "servicenow": _BEARER,
        "generic": _BEARER,
    }
)
"""Source name to its verifier. Read-only."""


def verifier_for(source: str) -> Verifier:
    """The verifier registered for ``source``; ``ConfigError`` for a source we do not know."""
    try:
        return VERIFIERS[source]
    except KeyError:
        known = ", ".join(sorted(VERIFIERS))
        raise ConfigError(f"no webhook verifier for source {source!r} (known: {known})") from None


def verify(
    source: str,
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta | None = None,
) -> None:
    """Verify a request from ``source`` with its registered verifier, within ``tolerance`` when
    given, else the verifier's own window (Linear's is 60 s, the others' 300 s)."""
    verifier = verifier_for(source)
    if tolerance is None:
        verifier(headers=headers, body=body, secrets=secrets, now=now)
    else:
        verifier(headers=headers, body=body, secrets=secrets, now=now, tolerance=tolerance)


# --- signing, for tests and stand-in servers -------------------------------------------------------


def sign_zendesk(*, body: bytes, secret: str, timestamp: datetime) -> dict[str, str]:
    """The two headers Zendesk would send with ``body`` at ``timestamp``."""
    stamp = _aware(timestamp, "timestamp").astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    mac = hmac.new(_key(secret), stamp.encode("ascii") + body, hashlib.sha256).digest()
    return {ZENDESK_SIGNATURE: base64.b64encode(mac).decode("ascii"), ZENDESK_TIMESTAMP: stamp}


def sign_pagerduty(*, body: bytes, secrets: Sequence[str]) -> dict[str, str]:
    """The header PagerDuty would send; several secrets give several ``v1`` entries, as in a rotation."""
    if isinstance(secrets, str) or not secrets:
        raise ValueError("secrets must be a non-empty sequence of strings")
    entries = (f"v1={_hex_mac(secret, body, 'sha256')}" for secret in secrets)
    return {PAGERDUTY_SIGNATURE: ",".join(entries)}


def sign_jira(*, body: bytes, secret: str) -> dict[str, str]:
    """The header Jira would send for a webhook registered with ``secret``."""
    return {HUB_SIGNATURE: f"sha256={_hex_mac(secret, body, 'sha256')}"}


def sign_intercom(*, body: bytes, secret: str) -> dict[str, str]:
    """The header Intercom would send for an app whose client secret is ``secret``."""
    return {HUB_SIGNATURE: f"sha1={_hex_mac(secret, body, 'sha1')}"}


def sign_linear(*, body: bytes, secret: str) -> dict[str, str]:
    """The header Linear would send with ``body`` (whose ``webhookTimestamp`` it signs with it)."""
    return {LINEAR_SIGNATURE: _hex_mac(secret, body, "sha256")}


def sign_slack(*, body: bytes, secret: str, timestamp: datetime) -> dict[str, str]:
    """The two headers Slack would send with ``body`` at ``timestamp`` (whole seconds)."""
    stamp = str(int(_aware(timestamp, "timestamp").timestamp()))
    digest = _hex_mac(secret, b"v0:" + stamp.encode("ascii") + b":" + body, "sha256")
    return {SLACK_SIGNATURE: f"v0={digest}", SLACK_TIMESTAMP: stamp}


def sign_token(
    *, token: str, header: str = "Authorization", scheme: Literal["Bearer", "Basic"] | None = "Bearer"
) -> dict[str, str]:
    """The header a token source sends; for ``Basic`` the token is ``user:password``."""
    TokenHeader(header=header, scheme=scheme)  # validates the header name and scheme
    if scheme is None:
        return {header: token}
    if scheme == "Basic":
        token = base64.b64encode(token.encode("utf-8")).decode("ascii")
    return {header: f"{scheme} {token}"}


# --- internals -------------------------------------------------------------------------------------


def _prepare(*, body: bytes, secrets: Sequence[str], now: datetime, tolerance: timedelta) -> list[bytes]:
    """Check the caller's arguments and return the secrets as HMAC keys."""
    if not isinstance(body, bytes):
        # A str body has already been decoded (and maybe re-encoded); it is not what was signed.
        raise TypeError("body must be the raw request bytes")
    if isinstance(secrets, str | bytes):
        # A lone string is a Sequence[str] of characters; accepting it would try each character.
        raise ConfigError("secrets must be a sequence of secrets, not a single string")
    if not 1 <= len(secrets) <= MAX_SECRETS:
        raise ConfigError(f"a source needs 1 to {MAX_SECRETS} secrets, got {len(secrets)}")
    if not all(secrets):
        # HMAC with an empty key is something anyone can compute.
        raise ConfigError("a configured webhook secret is empty")
    _aware(now, "now")
    if tolerance < timedelta(0):
        raise ValueError("tolerance must not be negative")
    return [_key(secret) for secret in secrets]


def _header(headers: Mapping[str, str], name: str) -> str:
    """The single value of header ``name`` in any letter case, without surrounding blanks."""
    wanted = name.lower()
    # items() rather than a lookup: a plain dict is case-sensitive, and multi-value mappings
    # (Starlette's Headers) list every copy of a repeated header there.
    found = [value for key, value in headers.items() if key.lower() == wanted]
    if not found:
        raise AuthError(f"missing {name} header")
    if len(found) > 1:
        # A proxy and we might each read a different copy; refuse rather than pick one.
        raise AuthError(f"more than one {name} header")
    value = found[0]
    if len(value) > MAX_HEADER_LENGTH:
        raise AuthError(f"{name} header is too long")
    value = value.strip(" \t")
    if not value:
        raise AuthError(f"empty {name} header")
    return value


def _versioned_entries(value: str) -> list[tuple[str, str]]:
    """``"v1=ab,v2=cd"`` as ``[("v1", "ab"), ("v2", "cd")]``; entries without ``=`` are skipped."""
    entries = []
    for part in value.split(","):
        version, sep, digest = part.strip(" \t").partition("=")
        if sep:
            entries.append((version, digest))
    return entries


def _verify_hub(
    headers: Mapping[str, str], body: bytes, keys: Sequence[bytes], method: str, size: int
) -> None:
    given_method, sep, digest = _header(headers, HUB_SIGNATURE).partition("=")
    if not sep or given_method != method:
        raise AuthError(f"malformed {HUB_SIGNATURE} header (expected {method}=<hex>)")
    _require_match(_macs(keys, body, method), [_hex_digest(digest, size, HUB_SIGNATURE)])


def _hex_digest(text: str, size: int, header: str) -> bytes:
    # Check the shape first: bytes.fromhex would also skip embedded whitespace.
    if len(text) != 2 * size or not _HEX.fullmatch(text):
        raise AuthError(f"malformed {header} header")
    return bytes.fromhex(text)


def _base64_digest(text: str, size: int, header: str) -> bytes:
    try:
        # validate=True refuses characters outside the alphabet instead of silently dropping them.
        digest = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text
        raise AuthError(f"malformed {header} header") from None
    if len(digest) != size:
        raise AuthError(f"malformed {header} header")
    return digest


def _iso_time(text: str, header: str) -> datetime:
    # fromisoformat takes any character as the date/time separator; the value is signed as
    # ASCII bytes, so anything else is not a timestamp the vendor sent.
    if not text.isascii():
        raise AuthError(f"malformed {header} header")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise AuthError(f"malformed {header} header") from None
    if when.utcoffset() is None:
        raise AuthError(f"{header} header has no UTC offset")
    return when


def _check_window(age_seconds: float, tolerance: timedelta) -> None:
    """``age_seconds`` is ``now`` minus the signed time: positive when old, negative when ahead."""
    limit = tolerance.total_seconds()
    if abs(age_seconds) > limit:
        window = int(limit) if limit.is_integer() else limit
        drift = f"{abs(age_seconds):.0f} s {'old' if age_seconds > 0 else 'in the future'}"
        raise AuthError(f"timestamp outside the {window} s window ({drift})")


def _macs(keys: Sequence[bytes], message: bytes, digest: str) -> list[bytes]:
    return [hmac.new(key, message, digest).digest() for key in keys]


def _require_match(expected: Sequence[bytes], offered: Sequence[bytes]) -> None:
    if not _any_equal(expected, offered):
        raise AuthError("signature mismatch")


def _any_equal(expected: Sequence[bytes], offered: Sequence[bytes]) -> bool:
    # Every pair is compared, with no early exit, so the time taken does not reveal which secret
    # (old or new) or which offered signature matched.
    matched = False
    for mine in expected:
        for theirs in offered:
            matched |= hmac.compare_digest(mine, theirs)
    return matched


def _hex_mac(secret: str, message: bytes, digest: str) -> str:
    return hmac.new(_key(secret), message, digest).hexdigest()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _key(secret: str) -> bytes:
    # Every vendor above uses the secret string itself as the key, not a decoding of it.
    return secret.encode("utf-8")


def _aware(when: datetime, name: str) -> datetime:
    if when.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return when
