"""A real connector behind the real outbox and database: vendor Retry-After drives the retries."""

from __future__ import annotations

import json
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy import select

from baton.clock import FakeClock
from baton.connectors.config import WebhookConfig
from baton.connectors.webhook import WebhookConnector
from baton.engine.outbox import Outbox
from baton.engine.runtime import Engine
from baton.store.db import Database
from baton.store.schema import audit_log, outbox, sent_log
from tests.helpers import event
from tests.standins.fixtures import LOOPBACK, WEBHOOK_SECRET
from tests.standins.server import Fault
from tests.standins.webhook import WebhookStandIn


def test_the_outbox_waits_out_each_retry_after_then_delivers_once(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    engine.ingest([event(1, subject="Refund please", account_id="acme")])
    with WebhookStandIn(WEBHOOK_SECRET, now=lambda: clock.now().timestamp()) as hook:
        hook.inject(Fault.status(503, headers={"retry-after": "30"}), Fault.rate_limited("45"))
        config = WebhookConfig(url=f"{hook.url}/hooks/baton", secret=SecretStr(WEBHOOK_SECRET), http=LOOPBACK)
        connector = WebhookConnector(config, clock=clock)
        # the test policy sends its notifications through the connector named "log"
        box = Outbox(db=db, connectors={"log": connector}, clock=clock, worker="w1")
        try:
            assert box.deliver().retried == 1  # 503, Retry-After: 30
            clock.advance(timedelta(seconds=29))
            assert box.deliver().claimed == 0  # still waiting
            clock.advance(timedelta(seconds=2))
            assert box.deliver().retried == 1  # 429, Retry-After: 45
            clock.advance(timedelta(seconds=44))
            assert box.deliver().claimed == 0
            clock.advance(timedelta(seconds=2))
            assert box.deliver().delivered == 1
            assert box.deliver().claimed == 0
        finally:
            connector.close()

    assert [r.fault for r in hook.requests] == ["reply", "reply", None]
    assert len({r.headers["webhook-id"] for r in hook.requests}) == 1  # one idempotency key throughout
    assert [r.json()["data"]["attempt"] for r in hook.requests] == [1, 2, 3]
    assert len(hook.effects) == 1 and hook.rejected == []
    with db.reader.connect() as conn:
        assert conn.execute(select(outbox.c.status)).scalars().all() == ["done"]
        assert len(conn.execute(select(sent_log)).all()) == 1
        records = conn.execute(select(audit_log.c.kind, audit_log.c.body)).all()
    failed = [json.loads(body) for kind, body in records if kind == "action.failed"]  # canonical JSON text
    assert [f["retry_in_s"] for f in failed] == [30, 45]
    assert "HTTP 503 from http://127.0.0.1" in failed[0]["error"] and "/hooks/baton" not in failed[0]["error"]
    assert [kind for kind, _ in records].count("action.delivered") == 1
