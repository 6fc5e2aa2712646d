"""A PagerDuty incident Baton paged and the same incident's webhooks meet on one ticket.

End to end over real HTTP: the policy pages PagerDuty, the outbox delivers through the connector
to the Events API stand-in, then PagerDuty's signed v3 webhooks about that incident are posted to
``baton serve`` (uvicorn on loopback) and must land on the ticket that paged, and a solved ticket
resolves the alert by the same key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from baton.connectors.config import PagerDutyConfig
from baton.connectors.pagerduty import PagerDutyConnector
from baton.engine.outbox import Outbox
from baton.model import Ticket
from baton.signals.signatures import sign_pagerduty
from baton.store import repo
from baton.store.db import Database
from tests.helpers import event, policy_with
from tests.integration.test_webhooks import Server, serve
from tests.standins.fixtures import LOOPBACK, PAGERDUTY_KEY
from tests.standins.pagerduty import Alert, PagerDutyStandIn, incident_webhook

SECRET = "pd-webhook-secret-4b1e9c"
PAGE_ROUTE = """
  - name: outages
    when: '"outage" in ticket.subject'
    set: {queue: incidents, tier: L2, owner: l2}
    actions: [{name: page, connector: pagerduty, kind: page, params: {service: platform, severity: critical}}]
"""


@pytest.fixture
def paging(db: Database, tmp_path: Path) -> Iterator[Server]:
    folder = policy_with(
        tmp_path / "policy", baton="sync:\n  pagerduty: {fields: [status]}\n", routes=PAGE_ROUTE
    )
    config = {"sources": {"pagerduty": {"secrets": [SECRET]}}}
    with serve(db, tmp_path, config, policy=folder) as server:
        yield server


def _ticket(db: Database, ticket_id: str) -> Ticket:
    with db.reader.connect() as conn:
        return repo.load_tickets(conn, [ticket_id])[ticket_id]


def _post(server: Server, body: bytes) -> str | None:
    response = server.post("pagerduty", body, sign_pagerduty(body=body, secrets=[SECRET]))
    assert response.status_code == 202, response.text
    (result,) = response.json()["events"]
    ticket_id: str | None = result["ticket_id"]
    return ticket_id


def test_a_paged_incidents_webhooks_land_on_the_ticket_that_paged(
    paging: Server, db: Database, pagerduty_standin: PagerDutyStandIn
) -> None:
    (opened,) = paging.engine.ingest([event(1, subject="outage: checkout is down")])
    ticket_id = opened.ticket_id
    assert ticket_id is not None
    connector = PagerDutyConnector(
        PagerDutyConfig(
            routing_key=SecretStr(PAGERDUTY_KEY),
            events_url=f"{pagerduty_standin.url}/v2/enqueue",
            http=LOOPBACK,
        ),
        clock=paging.clock,
    )
    box = Outbox(
        db=db,
        connectors={"pagerduty": connector},
        clock=paging.clock,
        worker="w1",
        linker=paging.engine.ingest_in,
    )
    try:
        while box.deliver().claimed:
            pass
        (alert,) = pagerduty_standin.alerts
        assert alert.dedup_key == f"baton/{ticket_id}/platform"

        # PagerDuty's webhooks about that incident: the triggered one carries the incident key...
        triggered = incident_webhook(alert, "incident.triggered", event_id="evt-1")
        assert _post(paging, triggered) == ticket_id
        # ...a note names the incident by its id only, and still finds the ticket.
        note = incident_webhook(alert, "incident.annotated", event_id="evt-2", note="Rolled back")
        assert _post(paging, note) == ticket_id
        alert.status = "acknowledged"
        acked = incident_webhook(alert, "incident.acknowledged", event_id="evt-3")
        assert _post(paging, acked) == ticket_id

        kept = _ticket(db, ticket_id).external_links
        links = {(link.system, link.id) for link in kept}
        assert len(kept) == len(links), f"one link per system and id: {kept}"
        assert ("pagerduty", alert.dedup_key) in links
        assert ("pagerduty.incident", alert.incident_id) in links
        # The incident's key stays the ticket's only PagerDuty link: what a sync resolves.
        assert {i for s, i in links if s == "pagerduty"} == {alert.dedup_key}

        # Solving the ticket resolves the alert by the key both sides share.
        paging.engine.ingest([event(2, "ticket.solved", ticket=1)])
        while box.deliver().claimed:
            pass
        assert alert.status == "resolved" and pagerduty_standin.dropped == []
    finally:
        connector.close()


def test_an_incident_baton_did_not_page_opens_its_own_ticket_and_keeps_it(paging: Server) -> None:
    other = Alert("d3640fbd41094207a1c11e58e46b1662", "elsewhere", "Disk full", "critical", 7)
    first = _post(paging, incident_webhook(other, "incident.triggered", event_id="evt-a"))
    assert first is not None
    for n, event_type in enumerate(("incident.annotated", "incident.acknowledged", "incident.resolved")):
        assert (
            _post(paging, incident_webhook(other, event_type, event_id=f"evt-{n}", note="checking")) == first
        )
