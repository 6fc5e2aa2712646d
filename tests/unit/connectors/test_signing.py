"""Standard Webhooks signatures, checked against the specification's own example."""

from __future__ import annotations

import base64

import pytest

from baton.connectors.webhook import sign
from baton.errors import PermanentConnectorError


def test_the_signature_matches_the_reference_libraries_test_vector() -> None:
    # standard-webhooks/libraries/python/tests/test_webhooks.py::test_sign_function
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(
        key, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_ids_with_a_dot_are_refused() -> None:
    with pytest.raises(PermanentConnectorError, match="must not contain"):
        sign(b"k" * 24, msg_id="a.b", timestamp=1, body=b"{}")
