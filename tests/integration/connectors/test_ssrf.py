"""SSRF: outbound requests reach public addresses and explicitly allowed ones, nothing else.

Every refused case runs next to a live stand-in on 127.0.0.1 and checks it received nothing; the
allowed cases show the same stand-in reachable once it is allowed. Name resolution is simulated
with a resolver hook (no /etc/hosts edits): the hook stands for a hostile DNS server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from baton.connectors.config import HttpConfig
from baton.connectors.http import OutboundHttp
from baton.errors import PermanentConnectorError, TransientConnectorError
from tests.standins.fixtures import LOOPBACK, WEBHOOK_SECRET
from tests.standins.server import Fault
from tests.standins.tls import self_signed
from tests.standins.webhook import WebhookStandIn

NOT_ALLOWED = HttpConfig(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)

REFUSED = [
    ("http://127.0.0.1:{port}/", "loopback"),
    ("http://127.0.0.2:{port}/", "loopback"),
    ("https://localhost:{port}/", "loopback"),  # a name: refused when the lookup answers
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.10.10/", "link-local"),
    ("http://169.254.169.254/latest/meta-data/iam/", "cloud metadata"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://0.0.0.0:{port}/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[::1]:{port}/", "loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/", "IPv4-mapped loopback"),
    ("http://[::ffff:a9fe:a9fe]/", "cloud metadata"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fd00::1]/", "unique-local"),
    ("http://[fec0::1]/", "site-local"),
    ("http://2130706433:{port}/", "loopback"),  # decimal
    ("http://017700000001:{port}/", "loopback"),  # octal
    ("http://0177.1:{port}/", "loopback"),  # octal, short form
    ("http://0x7f.1:{port}/", "loopback"),  # hex
    ("http://0x7f000001:{port}/", "loopback"),
    ("http://0177.0.0.1:{port}/", "not a valid URL"),  # httpx refuses this one itself
    ("http://127.1:{port}/", "loopback"),
    ("http://127.0.0.1.:{port}/", "loopback"),
]


@pytest.fixture
def standin() -> Iterator[WebhookStandIn]:
    with WebhookStandIn(WEBHOOK_SECRET) as running:
        yield running


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_private_and_special_addresses_are_refused_in_every_spelling(
    standin: WebhookStandIn, url: str, reason: str
) -> None:
    with OutboundHttp(NOT_ALLOWED) as http, pytest.raises(PermanentConnectorError, match=reason):
        http.request("POST", url.format(port=standin.port), what="ssrf", content=b"{}")
    assert standin.requests == []


def test_a_name_that_resolves_to_a_private_address_is_refused_before_connecting(
    standin: WebhookStandIn,
) -> None:
    answers = {"hooks.example.com": ["127.0.0.1"], "evil.example.com": ["93.184.215.14", "10.1.2.3"]}
    with OutboundHttp(NOT_ALLOWED, resolver=lambda host, port: answers[host]) as http:
        with pytest.raises(
            PermanentConnectorError, match=r"hooks\.example\.com is at 127\.0\.0\.1 \(loopback\)"
        ):
            http.request("POST", f"https://hooks.example.com:{standin.port}/", what="ssrf")
        with pytest.raises(PermanentConnectorError, match=r"10\.1\.2\.3 \(private\)"):
            http.request("POST", "https://evil.example.com/", what="ssrf")  # one bad answer spoils the name
    assert standin.requests == []


def test_the_allowlisted_loopback_stand_in_is_reached(standin: WebhookStandIn) -> None:
    standin.inject(Fault.json(200, {"ok": True}))
    with OutboundHttp(LOOPBACK) as http:
        assert http.request("GET", f"{standin.url}/health", what="ssrf").status == 200
    assert [r.path for r in standin.requests] == ["/health"]


def test_an_allowed_name_may_lead_to_a_private_address_but_never_to_metadata(standin: WebhookStandIn) -> None:
    config = NOT_ALLOWED.model_copy(update={"allow": ("hooks.internal", "metadata.google.internal")})
    answers = {"hooks.internal": ["127.0.0.1"], "metadata.google.internal": ["169.254.169.254"]}
    standin.inject(Fault.json(200, {"ok": True}))
    with OutboundHttp(config, resolver=lambda host, port: answers[host]) as http:
        assert http.request("POST", f"http://hooks.internal:{standin.port}/x", what="ssrf").status == 200
        with pytest.raises(PermanentConnectorError, match="cloud metadata"):
            http.request("GET", "http://metadata.google.internal/computeMetadata/v1/", what="ssrf")
    assert standin.requests[0].headers["host"] == f"hooks.internal:{standin.port}"


def test_redirects_are_never_followed(standin: WebhookStandIn) -> None:
    standin.inject(
        Fault.redirect("http://169.254.169.254/latest/meta-data/"),
        Fault.redirect("http://10.0.0.1/internal", 307),
        Fault.redirect(f"{standin.url}/elsewhere", 308),
    )
    with OutboundHttp(LOOPBACK) as http:
        for _ in range(3):
            with pytest.raises(PermanentConnectorError, match="redirects are not followed") as caught:
                http.request("POST", f"{standin.url}/hook", what="ssrf", content=b"{}")
            assert "169.254" not in str(caught.value) and "10.0.0.1" not in str(caught.value)
    assert [r.path for r in standin.requests] == ["/hook"] * 3


def test_one_lookup_per_connection_the_checked_address_is_the_one_connected_and_tls_uses_the_name(
    tmp_path: Path,
) -> None:
    """A rebinding resolver answers the allowed stand-in first and a private address next. The
    first connection goes to the address that was checked, with the URL's name as Host header,
    SNI and certificate name; the next connection looks up again and is refused."""
    cert, key = self_signed(tmp_path, "hooks.example.com")
    answers = iter([["127.0.0.1"], ["10.9.8.7"]])
    looked_up: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return next(answers)

    config = LOOPBACK.model_copy(update={"ca_file": cert})
    with WebhookStandIn(WEBHOOK_SECRET, tls=(cert, key)) as hook:
        hook.inject(Fault.json(200, {"ok": True}))
        url = f"https://hooks.example.com:{hook.port}/hook"
        with OutboundHttp(config, resolver=rebinding) as first:
            assert first.request("POST", url, what="tls").status == 200
        assert hook.sni == ["hooks.example.com"]
        assert hook.requests[0].headers["host"] == f"hooks.example.com:{hook.port}"
        assert looked_up == ["hooks.example.com"]
        with (
            OutboundHttp(config, resolver=rebinding) as second,
            pytest.raises(PermanentConnectorError, match=r"10\.9\.8\.7 \(private\)"),
        ):
            second.request("POST", url, what="tls")
        assert looked_up == ["hooks.example.com"] * 2 and len(hook.requests) == 1


def test_certificates_are_verified_against_the_urls_name(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "hooks.example.com")
    config = LOOPBACK.model_copy(update={"ca_file": cert})
    with WebhookStandIn(WEBHOOK_SECRET, tls=(cert, key)) as hook:
        with (
            OutboundHttp(config, resolver=lambda host, port: ["127.0.0.1"]) as http,
            pytest.raises(TransientConnectorError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            http.request("POST", f"https://127.0.0.1:{hook.port}/hook", what="tls")
        with (
            OutboundHttp(config, resolver=lambda host, port: ["127.0.0.1"]) as http,
            pytest.raises(TransientConnectorError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            http.request("POST", f"https://other.example.com:{hook.port}/hook", what="tls")
        assert hook.requests == []
