"""A Standard Webhooks receiver (https://www.standardwebhooks.com/): verifies every signature and
applies each ``webhook-id`` once, as the spec asks receivers to.

Verification is written here from the spec, not borrowed from the connector, so a test passing
means two independent readings of the spec agree. Answers: 200 ``{"ok": true}`` for a new
message, 200 ``{"duplicate": true}`` for a repeated id, 401 with the reason for a bad signature
or a timestamp outside the tolerance window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.standins.server import Received, Reply, StandIn

__all__ = ["WebhookStandIn", "verify"]


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float = 300
) -> str | None:
    """None when the message is authentic and fresh, else why not."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        return "missing webhook headers"
    try:
        timestamp = int(stamp)
    except ValueError:
        return "bad timestamp"
    if abs(now - timestamp) > tolerance:
        return "timestamp outside the tolerance window"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    )
    for signature in signatures.split(" "):
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return None
    return "no valid signature"


class WebhookStandIn(StandIn):
    """``now`` is the receiver's clock (seconds); pass the test's fake clock when the sender uses one."""

    def __init__(
        self,
        secret: str,
        *,
        now: Callable[[], float] = time.time,
        tolerance: float = 300,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        super().__init__(tls=tls)
        self.secret = secret
        self.now = now
        self.tolerance = tolerance
        self.effects: dict[str, Any] = {}  # webhook-id -> body, applied once
        self.rejected: list[str] = []

    def handle(self, request: Received) -> Reply:
        if request.method != "POST":
            return Reply.of(405, {"error": "POST only"})
        problem = verify(self.secret, request.headers, request.body, now=self.now(), tolerance=self.tolerance)
        if problem is not None:
            self.rejected.append(problem)
            return Reply.of(401, {"error": problem})
        msg_id = request.headers["webhook-id"]
        if msg_id in self.effects:
            return Reply.of(200, {"duplicate": True})
        self.effects[msg_id] = request.json()
        return Reply.of(200, {"ok": True})
