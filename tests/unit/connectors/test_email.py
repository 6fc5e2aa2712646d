"""The e-mail connector's pure parts: which addresses it sends to, what SMTP reply codes mean."""

from __future__ import annotations

import pytest

from baton.connectors.email import mailbox
from baton.connectors.smtp import error_for_reply
from baton.errors import PermanentConnectorError, TransientConnectorError

GOOD = [
    ("alice@acme.example", "", "alice@acme.example"),
    ("Alice.O'Brien+ops@Mail.Acme.Example", "", "Alice.O'Brien+ops@mail.acme.example"),
    ("Alice Ops <alice@acme.example>", "Alice Ops", "alice@acme.example"),
    ('"Acme, Support" <support@acme.example>', "Acme, Support", "support@acme.example"),
    ("  ops@bücher.example ", "", "ops@xn--bcher-kva.example"),
]


@pytest.mark.parametrize(("raw", "name", "spec"), GOOD)
def test_addresses_it_sends_to(raw: str, name: str, spec: str) -> None:
    address = mailbox(raw)
    assert (address.display_name, address.addr_spec) == (name, spec)


BAD = [
    "alice",
    "alice@",
    "@acme.example",
    "alice@localhost",  # no dot: not a domain mail is routed to
    "alice@acme..example",
    "alice@-acme.example",
    "alice@10.0.0.1",
    "alice@[10.0.0.1]",
    ".alice@acme.example",
    "al..ice@acme.example",
    '"alice bob"@acme.example',
    "alice@acme.example@evil.example",
    "user%relay.example@acme.example",
    "user!relay@acme.example",
    "a|cat /etc/passwd@acme.example",
    "jörg@acme.example",
    "x" * 65 + "@acme.example",
    "a@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 63 + ".example",
    "alice@acme.example\nBcc: x@y.example",
    "alice@acme.example\r",
    "Alice\x00 <alice@acme.example>",
    "<alice@acme.example> <bob@acme.example>",
    "alice@acme.example, bob@acme.example",
]


@pytest.mark.parametrize("raw", BAD)
def test_addresses_it_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match=r"not an e-mail address|line break"):
        mailbox(raw)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (421, TransientConnectorError),
        (450, TransientConnectorError),
        (451, TransientConnectorError),
        (452, TransientConnectorError),
        (454, TransientConnectorError),
        (-1, TransientConnectorError),  # smtplib's code for a reply it could not read
        (500, PermanentConnectorError),
        (535, PermanentConnectorError),
        (550, PermanentConnectorError),
        (552, PermanentConnectorError),
        (554, PermanentConnectorError),
    ],
)
def test_reply_codes(code: int, error: type[Exception]) -> None:
    assert type(error_for_reply(code, "x")) is error
