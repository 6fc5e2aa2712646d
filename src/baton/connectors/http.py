"""Outbound HTTP for connectors: SSRF-safe, bounded in time and size, one mapping of outcomes to errors.

Where a request may go
    1. :func:`~baton.connectors.addresses.check_url` refuses, before anything is sent, URLs that
       are not http(s), carry credentials, name a refused IP literal (in any numeric form), or use
       plain http towards a host that is not explicitly allowed.
    2. :class:`GuardedBackend`, an httpcore network backend
       (https://www.encode.io/httpcore/network-backends/ — "handling non-standard DNS
       requirements"), resolves the host once per connection, checks every address it got
       (:class:`~baton.connectors.addresses.AddressPolicy`), and connects to a checked IP itself.
       httpcore then runs TLS with the URL's host as SNI and for certificate verification, and
       sends the URL's Host header. There is no second lookup for a rebinding DNS server to answer
       differently.
    3. Time: connect (lookup included), each read and each write have their own limits, and the
       whole exchange has a deadline (``total_timeout``) that every network call is cut to, so
       no peer, however slowly it drips bytes, holds a request past it.
    4. Redirects are never followed (a 3xx is a failure, as the Standard Webhooks spec advises),
       proxies from the environment are never used (there is no ``httpx.Client`` here at all),
       and a response body is read up to ``max_response_bytes``.

Outcomes, from :meth:`OutboundHttp.request`
    2xx returns the response. 408, 409, 425, 429 and 5xx raise ``TransientConnectorError`` with
    the vendor's Retry-After (RFC 9110 §10.2.3: delay-seconds or an HTTP-date); other statuses raise
    ``PermanentConnectorError``; connection failures and timeouts are transient; a refused address
    is permanent. Messages name the origin (scheme, host, port), never the path or query (webhook
    URLs often carry a token in the path), and every secret the connector holds is masked out.
    Errors are raised ``from None``: an httpx exception holds the request, headers and all.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self

import httpcore
import httpx

from baton.clock import Clock, SystemClock
from baton.connectors.addresses import AddressPolicy, Resolver, check_url
from baton.connectors.config import HttpConfig
from baton.errors import ConnectorError, PermanentConnectorError, TransientConnectorError

__all__ = [
    "GuardedBackend",
    "GuardedTransport",
    "HttpResponse",
    "OutboundHttp",
    "error_for",
    "origin",
    "parse_retry_after",
]

_log = logging.getLogger("baton.connectors.http")

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})


# The monotonic instant the current exchange must end by; set by OutboundHttp.request for the
# thread (httpcore's sync pool runs every network call in the caller's thread).
_DEADLINE: ContextVar[float | None] = ContextVar("baton_http_deadline", default=None)


def _budget(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the exchange's deadline; ``expired`` once none is left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the exchange took longer than total_timeout")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """Every read, write and TLS handshake bounded by what is left of the exchange's deadline.
    httpcore applies its read timeout to each ``recv``, so without this a peer sending one byte
    every few seconds could hold a request (and the outbox lease) for as long as it liked."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, budget))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Connects only to addresses the policy accepts, looked up once per connection; the lookup
    and every attempt together stay within the connect timeout."""

    def __init__(self, policy: AddressPolicy, inner: httpcore.NetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        ends = time.monotonic() + timeout if timeout is not None else None
        error: Exception | None = None
        for address in self.policy.resolve(host, port, _budget(timeout, httpcore.ConnectTimeout))[:3]:
            left = None if ends is None else ends - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                stream = self.inner.connect_tcp(
                    address,
                    port,
                    timeout=_budget(left, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return _DeadlineStream(stream)
        raise error or httpcore.ConnectTimeout(f"connecting to {host} took longer than the connect timeout")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise PermanentConnectorError("refused: unix sockets are not used for outbound requests")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore's exceptions as httpx's, as ``httpx.HTTPTransport`` does; others pass through."""
    try:
        yield
    except Exception as exc:
        for core, mapped in _EXCEPTIONS:
            if isinstance(exc, core):
                raise mapped(str(exc)) from None
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport (https://www.python-httpx.org/advanced/transports/) over an httpcore
    connection pool whose only way to the network is a :class:`GuardedBackend`."""

    def __init__(
        self, *, policy: AddressPolicy, ssl_context: ssl.SSLContext, max_connections: int = 20
    ) -> None:
        self.policy = policy
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            network_backend=GuardedBackend(policy),
            retries=0,  # retrying is the outbox's job
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = check_url(request.url, self.policy)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = self._pool.handle_request(core)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


@dataclass(frozen=True)
class HttpResponse:
    """A response read in full (up to the size cap)."""

    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool = False

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not (also for a body nested too deep to
        parse, which the json module reports as ``RecursionError``)."""
        try:
            return json.loads(self.body)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def parse_retry_after(
    value: str | None, *, now: datetime, date: str | None = None, cap: float = 3_600.0
) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).

    A date is measured from the response's own ``Date`` header when it has one (so the two
    clocks' skew cancels out), else from ``now``. Past dates give 0; hints over ``cap`` are capped;
    anything unreadable gives None, so the outbox falls back to its own backoff.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):  # ASCII digits only, as the header is
        return min(float(text[:12]) if len(text) <= 12 else cap, cap)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    reference = now
    if date:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            reference = parsedate_to_datetime(date)
    seconds = (_aware(when) - _aware(reference)).total_seconds()
    return min(max(seconds, 0.0), cap)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def error_for(status: int, message: str, *, retry_after: float | None = None) -> ConnectorError | None:
    """The error an HTTP status means, or None for success (2xx)."""
    if 200 <= status < 300:
        return None
    if status in _TRANSIENT_STATUS or status >= 500:
        return TransientConnectorError(message, retry_after=retry_after)
    return PermanentConnectorError(message)


def origin(url: httpx.URL) -> str:
    """``scheme://host[:port]``: what errors and logs may say about a URL."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}" + (f":{url.port}" if url.port else "")


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """httpx's default context (certifi's CA bundle, hostname checks on). Loading the bundle
    takes tens of milliseconds; a client-side context is safe to share between connections."""
    return httpx.create_ssl_context()


class OutboundHttp:
    """What a connector sends requests with: one per connector, thread-safe, pooled."""

    def __init__(
        self,
        config: HttpConfig,
        *,
        clock: Clock | None = None,
        resolver: Resolver | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.policy = AddressPolicy(config.allow, resolver=resolver)
        context = ssl.create_default_context(cafile=str(config.ca_file)) if config.ca_file else _default_tls()
        self._transport = GuardedTransport(policy=self.policy, ssl_context=context)
        self._secrets = tuple(s for s in secrets if s)

    def check_url(self, url: str) -> httpx.URL:
        try:
            return check_url(url, self.policy)
        except ConnectorError as exc:
            raise PermanentConnectorError(self.clean(str(exc))) from None

    def clean(self, text: str, *, limit: int = 500) -> str:
        """``text`` with every secret masked, cut to ``limit`` characters."""
        for secret in self._secrets:
            text = text.replace(secret, "[secret]")
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        explain: Callable[[HttpResponse], str | None] | None = None,
    ) -> HttpResponse:
        """Send one request; return a 2xx response, raise the connector error anything else means.

        ``what`` names the call in messages; ``explain`` pulls the vendor's own error text out of
        a failed response (it is masked and cut like the rest of the message).
        """
        target = self.check_url(url)
        if params:
            target = target.copy_merge_params(dict(params))
        where = origin(target)
        c = self.config
        timeouts = {"connect": c.connect_timeout, "read": c.read_timeout, "write": c.read_timeout}
        request = httpx.Request(
            method,
            target,
            content=content,
            headers={"user-agent": c.user_agent, "accept-encoding": "identity", **(headers or {})},
            extensions={"timeout": {**timeouts, "pool": c.connect_timeout}},
        )
        started = time.monotonic()
        deadline = _DEADLINE.set(started + c.total_timeout)
        try:
            response = self._transport.handle_request(request)
            try:
                body, truncated = self._read(response)
            finally:
                response.close()
        except TransientConnectorError as exc:
            raise TransientConnectorError(self.clean(f"{what}: {exc}"), retry_after=exc.retry_after) from None
        except ConnectorError as exc:  # an address refused when connecting
            raise PermanentConnectorError(self.clean(f"{what}: {exc}")) from None
        except httpx.TimeoutException as exc:
            raise TransientConnectorError(
                self.clean(f"{what}: {where} timed out ({type(exc).__name__})")
            ) from None
        except httpx.TransportError as exc:
            raise TransientConnectorError(
                self.clean(f"{what}: {where} failed ({exc or type(exc).__name__})")
            ) from None
        finally:
            _DEADLINE.reset(deadline)
        result = HttpResponse(response.status_code, response.headers, body, truncated)
        _log.debug(
            "%s %s -> %d (%d bytes, %.0f ms)",
            method,
            where,
            result.status,
            len(body),
            (time.monotonic() - started) * 1e3,
        )
        if 200 <= result.status < 300:
            return result
        detail = explain(result) if explain else None
        message = f"{what}: HTTP {result.status} from {where}"
        if 300 <= result.status < 400:
            message += " (redirects are not followed; configure the final URL)"
        message = self.clean(message + (f": {detail}" if detail else ""))
        retry_after = parse_retry_after(
            result.headers.get("retry-after"),
            now=self.clock.now(),
            date=result.headers.get("date"),
            cap=c.max_retry_after,
        )
        error = error_for(result.status, message, retry_after=retry_after)
        assert error is not None
        raise error

    def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.config.max_response_bytes:
                return b"".join(chunks)[: self.config.max_response_bytes], True
        return b"".join(chunks), False

    def close(self) -> None:
        """Close pooled connections (the process's end; a closed client opens new ones if used)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
