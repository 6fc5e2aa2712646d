"""The two real logs in ../shared/data, through the built-in mappings.

- The whole of each log, parsed and mapped (no engine), reproduces the facts its README states.
- The first 1,000-2,000 tickets of each go through the real engine into SQLite: what is stored (tickets,
  events, ``external.<source>`` handoff records, hierarchical ones among them) equals what the
  mapped stream predicts, and importing again adds nothing.

The whole logs through the engine take minutes; ``bench/import.py`` does that.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from baton.clock import SystemClock
from baton.engine.runtime import Engine
from baton.model import Ticket, load
from baton.policy.model import Policy
from baton.signals.history import HistoryReader
from baton.signals.history_import import ImportSummary, import_history, shadow_engine
from baton.signals.history_mapping import load_mapping
from baton.signals.history_stats import HistoryFacts, count_facts
from baton.store.db import Database, open_database
from baton.store.schema import events, outbox, tickets
from tests.conftest import ROOT, missing_data

DATA = ROOT.parent / "shared" / "data"
LOGS = {
    "servicenow": DATA / "servicenow_incident_event_log.csv.gz",
    "bpic2013": DATA / "bpic2013_volvo_it_incidents_VINST.csv.gz",
}
# The first tickets of each log: about 11,700 events of ServiceNow and 8,600 of BPI 2013.
SAMPLE = {"servicenow": 2_000, "bpic2013": 1_000}

pytestmark = pytest.mark.skipif(missing_data(*LOGS.values()), reason=f"the real logs are not in {DATA}")


@functools.cache
def whole(name: str) -> HistoryFacts:
    """The facts of a whole log (parsed and mapped once per test session)."""
    with HistoryReader(LOGS[name], load_mapping(name)) as reader:
        return count_facts(reader)


def test_servicenow_facts_from_the_readme() -> None:
    f = whole("servicenow")
    assert (f.rows, f.errors) == (119_998, 0)
    assert f.tickets == 20_769  # incidents
    assert f.events == 119_998
    # "final priority Moderate 19,554, Low 658, High 337, Critical 220"
    assert f.final_priority == {"normal": 19_554, "low": 658, "high": 337, "urgent": 220}
    # "73 assignment groups": 72 named groups, plus the `?` placeholder the export writes for none.
    assert f.teams == 72
    # One incident (INC0000137) lists an update before the row that opened it.
    assert f.reordered == 1


def test_bpic2013_facts_from_the_readme() -> None:
    f = whole("bpic2013")
    assert (f.rows, f.errors) == (65_533, 0)
    assert f.tickets == 7_554  # incidents
    assert f.events == 65_533
    assert f.tickets_tier_up == 2_299  # "2,299 incidents escalate to a higher tier"
    assert f.handovers == 9_454  # "9,454 team handovers"
    assert f.handoffs == f.handovers  # the tier never changes without the team
    # "247 incidents bounce back to a team they had left (A→B→A)": three consecutive events whose
    # team goes A, B, A. Counting any later return to a team left earlier gives 1,258.
    assert f.bounces == 247
    assert f.returns == 1_258
    assert f.reordered == 0


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'baton.db'}")
    database.migrate()
    yield database
    database.dispose()


def _import(engine: Engine, name: str) -> ImportSummary:
    errors: list[str] = []
    with HistoryReader(LOGS[name], load_mapping(name), limit=SAMPLE[name]) as reader:
        summary = import_history(
            engine=engine,
            reader=reader,
            batch=500,
            on_error=lambda row, why: errors.append(f"row {row}: {why}"),
        )
    assert errors == []
    return summary


@pytest.mark.parametrize("name", sorted(LOGS))
def test_a_sample_through_the_engine_stores_what_the_stream_predicts(
    db: Database, policy: Policy, name: str
) -> None:
    with HistoryReader(LOGS[name], load_mapping(name), limit=SAMPLE[name]) as reader:
        expected = count_facts(reader, tiers=policy.tiers)
    engine = shadow_engine(Engine(db=db, policy=policy, clock=SystemClock()))

    first = _import(engine, name)

    assert (first.tickets, first.events, first.duplicates, first.errors) == (
        SAMPLE[name],
        expected.events,
        0,
        0,
    )
    with db.reader.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(tickets)) == expected.tickets == SAMPLE[name]
        assert conn.scalar(select(func.count()).select_from(events)) == expected.events
        stored = [load(Ticket, state) for state in conn.scalars(select(tickets.c.state))]
        # History is not news: whatever the policy decided to send is recorded, never sent.
        assert set(conn.scalars(select(outbox.c.status).distinct())) <= {"shadow"}
    records = [r for t in stored for r in t.escalations if r.rule == f"external.{name}"]
    assert len(records) == expected.handoffs
    assert all(r.mode == "handoff" for r in records)
    assert sum(1 for r in records if r.kind == "hierarchical") == expected.tier_ups
    assert (
        sum(1 for t in stored if any(r.kind == "hierarchical" for r in t.escalations))
        == expected.tickets_tier_up
    )
    if name == "bpic2013":
        assert expected.tier_ups > 0 and expected.handoffs > 1_000

    again = _import(engine, name)

    assert (again.tickets, again.events, again.duplicates, again.errors) == (0, 0, expected.events, 0)
    with db.reader.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(events)) == expected.events
        assert conn.scalar(select(func.count()).select_from(tickets)) == SAMPLE[name]
