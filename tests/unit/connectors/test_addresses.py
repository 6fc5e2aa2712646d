"""Which addresses outbound requests may reach: host parsing, classification, allowlists, URL checks."""

from __future__ import annotations

import ipaddress
import threading

import httpcore
import pytest

from baton.connectors.addresses import AddressPolicy, blocked_reason, check_url, parse_host
from baton.errors import PermanentConnectorError

# host as it appears in a URL -> the address it denotes (None: a host name)
HOSTS = [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),  # one decimal number
    ("0x7f000001", "127.0.0.1"),  # one hex number
    ("017700000001", "127.0.0.1"),  # one octal number
    ("0177.0.0.1", "127.0.0.1"),  # octal first part
    ("0x7f.1", "127.0.0.1"),  # hex, two parts
    ("0177.1", "127.0.0.1"),  # octal, two parts
    ("127.1", "127.0.0.1"),
    ("10.1", "10.0.0.1"),
    ("192.168.257", "192.168.1.1"),  # the last part fills two bytes
    ("0x7f.0x0.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),  # a trailing dot
    ("0", "0.0.0.0"),  # noqa: S104  # an address under test; nothing binds to it
    ("::1", "::1"),
    ("[::1]", "::1"),
    ("::ffff:127.0.0.1", "::ffff:7f00:1"),
    ("8.8.8.8", "8.8.8.8"),
    ("example.com", None),
    ("hooks.example.com.", None),
    ("1e100.net", None),  # a numeric-looking label that is not the last one
    ("123.example", None),
]

MALFORMED = ["4294967296", "256.1.1.1", "1.2.3.4.5", "1.2.65536", "08.1", "0x1g.1", "1..2", "09"]


@pytest.mark.parametrize(("host", "expected"), HOSTS)
def test_hosts_are_read_as_the_address_they_denote(host: str, expected: str | None) -> None:
    found = parse_host(host)
    assert (str(found) if found is not None else None) == expected


@pytest.mark.parametrize("host", MALFORMED)
def test_malformed_numeric_hosts_are_refused_not_resolved(host: str) -> None:
    with pytest.raises(PermanentConnectorError, match="malformed numeric address"):
        parse_host(host)


# address -> why it is refused (None: public, allowed)
ADDRESSES = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.20.30.40", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.0.10", "private"),
    ("169.254.1.1", "link-local"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.170.2", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),  # noqa: S104  # an address under test; nothing binds to it
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fd00:ec2::254", "cloud metadata"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::ffff:100.64.0.1", "IPv4-mapped carrier-grade NAT"),
    ("64:ff9b::a00:1", "NAT64 private"),
    ("2002:7f00:1::1", "6to4 loopback"),
    ("::7f00:1", "IPv4-compatible (deprecated)"),
    ("2001:0:4136:e378::1", "Teredo"),
    ("2001:db8::1", "documentation"),
    ("8.8.8.8", None),
    ("1.1.1.1", None),
    ("151.101.1.69", None),
    ("2606:4700:4700::1111", None),
    ("::ffff:8.8.8.8", None),
    ("64:ff9b::808:808", None),
]


@pytest.mark.parametrize(("address", "reason"), ADDRESSES)
def test_only_public_unicast_addresses_are_unremarkable(address: str, reason: str | None) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


def test_the_allowlist_opens_networks_and_names_but_never_metadata() -> None:
    policy = AddressPolicy(["127.0.0.1/32", "10.20.0.0/16", "hooks.internal", "*.corp.example"])
    ip = ipaddress.ip_address
    policy.check("anything", ip("127.0.0.1"))
    policy.check("anything", ip("10.20.9.9"))
    policy.check("hooks.internal", ip("192.168.7.7"))  # a name allowed trusts its DNS
    policy.check("HOOKS.internal.", ip("192.168.7.7"))
    policy.check("a.b.corp.example", ip("10.0.0.1"))
    with pytest.raises(PermanentConnectorError, match="private"):
        policy.check("anything", ip("10.21.0.1"))
    with pytest.raises(PermanentConnectorError, match="loopback"):
        policy.check("anything", ip("127.0.0.2"))
    with pytest.raises(PermanentConnectorError, match="IPv4-mapped loopback"):
        policy.check("anything", ip("::ffff:127.0.0.1"))  # an allowed IPv4 network is not its mapped form
    with pytest.raises(PermanentConnectorError, match="private"):
        policy.check("corp.example", ip("10.0.0.1"))  # "*.corp.example" is the subdomains only
    wide = AddressPolicy(["169.254.0.0/16", "0.0.0.0/0", "metadata.google.internal"])
    for address in ("169.254.169.254", "::ffff:169.254.169.254"):
        with pytest.raises(PermanentConnectorError, match="cloud metadata"):
            wide.check("metadata.google.internal", ip(address))


def test_a_name_is_looked_up_once_and_every_answer_must_pass() -> None:
    answers = {"mixed.example": ["93.184.215.14", "10.0.0.1"], "public.example": ["93.184.215.14"]}
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[host]

    policy = AddressPolicy(resolver=resolver)
    assert policy.resolve("public.example", 443, 1.0) == ["93.184.215.14"]
    with pytest.raises(PermanentConnectorError, match=r"mixed\.example is at 10\.0\.0\.1 \(private\)"):
        policy.resolve("mixed.example", 443, 1.0)
    assert calls == ["public.example", "mixed.example"]
    with pytest.raises(PermanentConnectorError, match="loopback"):
        policy.resolve("0x7f.1", 80, 1.0)
    assert calls == ["public.example", "mixed.example"]


def test_lookups_are_bounded_by_the_connect_timeout_and_failures_are_connect_errors() -> None:
    release = threading.Event()

    def slow(host: str, port: int) -> list[str]:
        release.wait(5)
        return ["93.184.215.14"]

    def failing(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    try:
        with pytest.raises(httpcore.ConnectTimeout, match="timed out"):
            AddressPolicy(resolver=slow).resolve("slow.example", 443, 0.05)
    finally:
        release.set()
    with pytest.raises(httpcore.ConnectError, match="Name or service not known"):
        AddressPolicy(resolver=failing).resolve("nx.example", 443, 1.0)
    with pytest.raises(httpcore.ConnectError, match="no address"):
        AddressPolicy(resolver=lambda h, p: []).resolve("empty.example", 443, 1.0)


# url -> the reason it is refused before anything is sent
REFUSED_URLS = [
    ("ftp://example.com/", "only http:// and https://"),
    ("https://user:pw@example.com/", "credentials"),
    ("http://example.com/hook", "plain http"),
    ("https://127.0.0.1/", "loopback"),
    ("https://2130706433/", "loopback"),
    ("https://0x7f.1/", "loopback"),
    ("https://0177.0.0.1/", "not a valid URL"),  # httpx itself rejects a zero-padded dotted quad
    ("https://[::ffff:7f00:1]/", "IPv4-mapped loopback"),
    ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("https://256.1.1.1/", "not a valid URL"),
    ("https://1.2.65536/", "malformed numeric"),
    ("https://ex%61mple.com/", "not a valid host name"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS)
def test_urls_that_may_never_be_requested_are_refused_up_front(url: str, reason: str) -> None:
    with pytest.raises(PermanentConnectorError, match=reason):
        check_url(url, AddressPolicy())


def test_plain_http_is_kept_for_allowed_hosts() -> None:
    policy = AddressPolicy(["127.0.0.1/32", "hooks.internal"])
    assert check_url("http://127.0.0.1:8080/x", policy).port == 8080
    assert check_url("http://hooks.internal/x", policy).host == "hooks.internal"
    assert check_url("https://hooks.example.com/x?a=1", AddressPolicy()).host == "hooks.example.com"
    with pytest.raises(PermanentConnectorError, match="plain http"):
        check_url("http://localhost:8080/", policy)  # where "localhost" leads is only known when connecting
