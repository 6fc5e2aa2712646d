"""Where outbound requests may go: public unicast addresses, plus what the operator allows.

Parsing is httpx's (the transport's own parser, so no two parsers can disagree about a host);
numeric hosts in the legacy forms C's ``inet_aton`` accepts (``2130706433``, ``0x7f.1``,
``127.1``) are read as the WHATWG URL standard's IPv4 parser reads them and judged as the address
they denote. Addresses are classified from the IANA IPv4 and IPv6 special-purpose address
registries (https://www.iana.org/assignments/iana-ipv4-special-registry/,
https://www.iana.org/assignments/iana-ipv6-special-registry/); an IPv6 address that carries an
IPv4 one (IPv4-mapped, NAT64, 6to4) is judged as that IPv4 address. Cloud metadata addresses are
refused even inside an allowed network.

:meth:`AddressPolicy.resolve` is what :class:`baton.connectors.http.GuardedBackend` calls when it
opens a connection: one lookup, every answer checked, and the caller connects to those addresses.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import httpcore
import httpx

from baton.errors import PermanentConnectorError

__all__ = [
    "Address",
    "AddressPolicy",
    "Resolver",
    "blocked_reason",
    "check_url",
    "parse_host",
    "system_resolver",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``; the default asks the system (``getaddrinfo``)."""

# Instance metadata services (AWS IMDS v4/v6 and ECS, Alibaba, Oracle legacy): never reachable,
# not even when an operator allows the network around them.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
# Everything that is not public unicast, most specific first (IANA special-purpose registries).
_BLOCKED = tuple(
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo"),
        ("2001:db8::/32", "documentation"),
        ("2001::/23", "IETF protocol assignment"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$", re.I)
_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")
# getaddrinfo has no timeout of its own; lookups run here so a connect timeout bounds them too.
_LOOKUPS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="baton-dns")


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address stands for, when traffic to it reaches that IPv4 host."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    return None


def _is_metadata(ip: Address) -> bool:
    embedded = _embedded_v4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    return ip in _METADATA or (embedded is not None and embedded[1] in _METADATA)


def blocked_reason(ip: Address) -> str | None:
    """Why ``ip`` is not a public unicast address (``"loopback"``, ``"IPv4-mapped private"``...),
    or None when it is one."""
    if _is_metadata(ip):
        return "cloud metadata"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            inner = blocked_reason(embedded[1])
            return f"{embedded[0]} {inner}" if inner else None
    for network, label in _BLOCKED:
        if ip.version == network.version and ip in network:
            return label
    return None if ip.is_global else "not globally routable"


def parse_host(host: str) -> Address | None:
    """The address a URL host denotes, or None for a host name.

    Besides standard IPv4 and IPv6 literals this reads the forms ``inet_aton`` accepts and
    browsers normalise: one to four dot-separated parts, each decimal, octal (leading ``0``) or
    hex (``0x``), the last filling the remaining bytes. A host whose last label is numeric but
    not a valid address is refused rather than handed to a resolver that might read it otherwise.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(bare)
    parts = bare[:-1].split(".") if bare.endswith(".") else bare.split(".")
    if not _NUMBER.match(parts[-1]):
        return None
    try:
        if len(parts) > 4 or not all(_NUMBER.match(p) for p in parts):
            raise ValueError(host)
        numbers = [_number(p) for p in parts]
        *head, last = numbers
        if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
            raise ValueError(host)
        value = sum(n << (8 * (3 - i)) for i, n in enumerate(head)) + last
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise PermanentConnectorError(f"refused: {host!r} is a malformed numeric address") from None


def _number(part: str) -> int:
    """One part of a legacy IPv4 address: ``0x`` hex, ``0`` octal, or decimal."""
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part[0] == "0":
        return int(part, 8)  # "08" raises ValueError: not a number in any form
    return int(part)


class AddressPolicy:
    """Which addresses outbound requests may reach: public unicast ones, plus what ``allow`` names
    (see :class:`~baton.connectors.config.HttpConfig`); cloud metadata never."""

    def __init__(self, allow: Iterable[str] = (), *, resolver: Resolver | None = None) -> None:
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.hosts: list[str] = []
        for entry in allow:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.append(entry.lower().rstrip("."))
        self.resolver = resolver or system_resolver

    def host_allowed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return any(name == h or (h.startswith("*.") and name.endswith(h[1:])) for h in self.hosts)

    def address_allowed(self, ip: Address) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)

    def check(self, host: str, ip: Address) -> None:
        """Raise ``PermanentConnectorError`` unless ``host`` may be reached at ``ip``."""
        if _is_metadata(ip):
            raise PermanentConnectorError(f"refused: {host} is at {ip}, a cloud metadata address")
        if self.host_allowed(host) or self.address_allowed(ip):
            return
        reason = blocked_reason(ip)
        if reason is not None:
            raise PermanentConnectorError(f"refused: {host} is at {ip} ({reason}), which is not allowed")

    def resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        """Every address ``host`` has, each checked; looked up once, here, for one connection."""
        literal = parse_host(host)
        if literal is not None:
            found: list[Address] = [literal]
        else:
            if not _NAME.match(host):
                raise PermanentConnectorError(f"refused: {host!r} is not a valid host name")
            found = self._lookup(host, port, timeout)
        for ip in found:
            self.check(host, ip)
        return [str(ip) for ip in found]

    def _lookup(self, host: str, port: int, timeout: float | None) -> list[Address]:
        try:
            answers = _LOOKUPS.submit(self.resolver, host, port).result(timeout=timeout)
        except FutureTimeout:
            raise httpcore.ConnectTimeout(f"DNS lookup of {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"DNS lookup of {host} failed: {exc.strerror or exc}") from None
        found: list[Address] = []
        for answer in answers:
            ip = ipaddress.ip_address(answer)
            if ip not in found:
                found.append(ip)
        if not found:
            raise httpcore.ConnectError(f"DNS lookup of {host} returned no address")
        return found


def system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def check_url(url: str | httpx.URL, policy: AddressPolicy) -> httpx.URL:
    """Parse ``url`` and refuse what may never be requested (``PermanentConnectorError``)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise PermanentConnectorError(f"refused: not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise PermanentConnectorError("refused: only http:// and https:// URLs with a host are used")
    if parsed.userinfo:
        raise PermanentConnectorError("refused: URLs with credentials are not used")
    ip = parse_host(parsed.host)
    if ip is None and not _NAME.match(parsed.host):
        raise PermanentConnectorError(f"refused: {parsed.host!r} is not a valid host name")
    if ip is not None:
        policy.check(parsed.host, ip)  # refuse literals early; names are checked at connect time
    allowed = policy.host_allowed(parsed.host) or (ip is not None and policy.address_allowed(ip))
    if parsed.scheme == "http" and not allowed:
        raise PermanentConnectorError(f"refused: plain http to {parsed.host}; use https")
    return parsed
