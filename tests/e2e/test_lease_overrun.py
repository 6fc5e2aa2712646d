"""A worker whose batch outlasts its lease must not send what another worker has taken over.

Found while writing the competing-workers acceptance test. ``Outbox.deliver`` claims up to
``limit`` actions under one lease, then sends them one after another without renewing or
re-checking the claim. When the sends of a batch take longer than the lease (a slow vendor, a
few retries' worth of timeouts), a second worker rightly takes the expired rows back and sends
them, and the first worker then sends them again: duplicates with no crash at all. ``_finish``
does see that the row is no longer ours, but only after the send.

Time is a fake clock moved by the slow target, so the test is instant and exact.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import insert

from baton.clock import FakeClock, to_ms
from baton.connectors.base import Delivery, OutboundAction
from baton.connectors.fake import FakeConnector
from baton.engine.outbox import Outbox
from baton.store.db import Database
from baton.store.schema import outbox

LEASE = timedelta(seconds=30)
SEND_TAKES = timedelta(seconds=20)


class SlowTarget:
    """A target that takes 20 s per call; the first time the clock passes ``poll_at`` (during a
    call), the other worker polls once."""

    name = "fake"

    def __init__(self, *, target: FakeConnector, clock: FakeClock, poll_at: int, other: Outbox) -> None:
        self.target = target
        self.clock = clock
        self.poll_at = poll_at
        self.other = other
        self.polled = False

    def send(self, action: OutboundAction) -> Delivery:
        self.clock.advance(SEND_TAKES)
        if not self.polled and to_ms(self.clock.now()) >= self.poll_at:
            self.polled = True
            self.other.deliver(limit=10)
        return self.target.send(action)


def test_a_batch_that_outlasts_its_lease_sends_nothing_twice(db: Database, clock: FakeClock) -> None:
    start = clock.now()
    with db.writer.begin() as conn:
        conn.execute(
            insert(outbox),
            [
                {
                    "idempotency_key": f"{n:064d}",
                    "ticket_id": f"T-{n}",  # three tickets: no ordering holds anything back
                    "decision_id": f"D-{n}",
                    "action_name": "notify.assigned",
                    "connector": "fake",
                    "kind": "notify",
                    "params": {},
                    "status": "pending",
                    "attempts": 0,
                    "available_ms": to_ms(start),
                    "created_ms": to_ms(start),
                }
                for n in range(3)
            ],
        )
    target = FakeConnector()
    b = Outbox(db=db, connectors={"fake": target}, clock=clock, worker="b", lease=LEASE)
    slow = SlowTarget(target=target, clock=clock, poll_at=to_ms(start + timedelta(seconds=40)), other=b)
    a = Outbox(db=db, connectors={"fake": slow}, clock=clock, worker="a", lease=LEASE)

    # A claims all three until start+30s and sends one every 20 s. B polls at start+40s, while
    # A's second send is in flight: A's claim on the second and third has run out, so B takes
    # them and sends them.
    a.deliver(limit=10)

    assert slow.polled
    sends = Counter(call.key for call in target.calls)
    assert sends == {f"{n:064d}": 1 for n in range(3)}, "A sent actions B had already taken over"
