"""The two real logs in ../shared/data: history as it happened, and replayed through a policy.

"As it happened" KPIs are checked against counts made here with nothing but ``csv`` and
``datetime`` — each ticket's rows put in time order, then its team and tier read row by row — and
against the facts the data README states. The whole BPI 2013 log takes about 10 s; the whole
ServiceNow log about 25 s, so its README check is marked slow and a sample runs always.
"""

from __future__ import annotations

import csv
import functools
import gzip
import math
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from baton.analytics.kpis import Value
from baton.policy.loader import load_policy
from baton.replay.history import as_it_happened
from baton.replay.outputs import write_replay
from baton.signals.history_mapping import load_mapping
from tests.conftest import EXAMPLE_POLICY, ROOT, missing_data

DATA = ROOT.parent / "shared" / "data"
SERVICENOW = DATA / "servicenow_incident_event_log.csv.gz"
BPIC = DATA / "bpic2013_volvo_it_incidents_VINST.csv.gz"
pytestmark = pytest.mark.skipif(missing_data(SERVICENOW, BPIC), reason=f"the real logs are not in {DATA}")
SN_PRIORITY = {"1 - Critical": "urgent", "2 - High": "high", "3 - Moderate": "normal", "4 - Low": "low"}


@dataclass
class Counted:
    tickets: int = 0
    rows: int = 0
    handovers: int = 0
    bounced: int = 0  # A -> B -> A on three consecutive rows
    returned: int = 0  # back to any team left before
    tier_ups: int = 0
    tier_up_tickets: int = 0
    sla_missed: Counter[str] = field(default_factory=Counter)  # by final priority
    sla_met: Counter[str] = field(default_factory=Counter)
    resolution_hours: list[float] = field(default_factory=list)  # to the last solve, if solved now
    first_resolution_hours: list[float] = field(default_factory=list)
    reopens: int = 0


def count_by_hand(
    path: Path,
    *,
    number: str,
    when: Callable[[dict[str, str]], datetime],
    team: str,
    tier: str | None = None,
    ranks: dict[str, int] | None = None,
    status: str | None = None,
    solved: frozenset[str] = frozenset(),
    opened: Callable[[dict[str, str]], datetime] | None = None,
    limit: int | None = None,
) -> Counted:
    groups: dict[str, list[dict[str, str]]] = {}
    with gzip.open(path, "rt", newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            if row[number] not in groups:
                if limit is not None and len(groups) >= limit:
                    break
                groups[row[number]] = []
            groups[row[number]].append(row)
    c = Counted(tickets=len(groups))
    for rows in groups.values():
        rows.sort(key=when)  # stable: rows at the same minute keep their file order
        c.rows += len(rows)
        current: str | None = None
        before: str | None = None
        left: set[str] = set()
        bounced = returned = False
        rank: int | None = None
        ups = 0
        for row in rows:
            new = row[team] if row[team] not in ("", "?") else current
            if current is not None and new != current:
                c.handovers += 1
                bounced = bounced or new == before
                returned = returned or new in left
                left.add(current)
                before = current
            else:
                before = None
            current = new
            if tier is not None and ranks is not None and row[tier] in ranks:
                if rank is not None and ranks[row[tier]] > rank:
                    ups += 1
                rank = ranks[row[tier]]
        if status is not None and opened is not None:
            start = min(opened(rows[0]), when(rows[0]))
            closed, last, first = False, None, None
            for i, row in enumerate(rows):
                if row[status] == "-100":
                    continue  # the export's placeholder: no status stated
                now_closed = row[status] in solved
                if now_closed and not closed:
                    # The import opens a ticket when it was opened, in its first row's state.
                    last = start if i == 0 else when(row)
                    first = first or last
                c.reopens += closed and not now_closed
                closed = now_closed
            if first is not None:
                c.first_resolution_hours.append((first - start).total_seconds() / 3600)
            if closed and last is not None:
                c.resolution_hours.append((last - start).total_seconds() / 3600)
        c.bounced += bounced
        c.returned += returned
        c.tier_ups += ups
        c.tier_up_tickets += ups > 0
        if "made_sla" in rows[-1]:
            priority = next(
                SN_PRIORITY[r["priority"]] for r in reversed(rows) if r["priority"] in SN_PRIORITY
            )
            (c.sla_met if rows[-1]["made_sla"] == "true" else c.sla_missed)[priority] += 1
    return c


def sn_time(row: dict[str, str]) -> datetime:
    return datetime.strptime(row["sys_updated_at"], "%d/%m/%Y %H:%M")


def sn_opened(row: dict[str, str]) -> datetime:
    return datetime.strptime(row["opened_at"], "%d/%m/%Y %H:%M")


def nearest_rank(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def bpi_time(row: dict[str, str]) -> datetime:
    return datetime.fromisoformat(row["Change Date+Time"])


BPI_RANKS = {"L1": 0, "L2": 1, "L2/L3": 1, "L3": 2}


@functools.cache
def happened(name: str, limit: int | None) -> tuple[int, int, dict[str, Value]]:
    path = SERVICENOW if name == "servicenow" else BPIC
    done = as_it_happened(path, load_mapping(name), limit=limit)
    assert done.errors == 0
    return done.tickets, done.events, done.result.report.kpis


def test_bpic2013_as_it_happened_is_what_the_log_and_the_readme_say() -> None:
    tickets, events, k = happened("bpic2013", None)
    hand = count_by_hand(
        BPIC, number="SR Number", when=bpi_time, team="Involved ST", tier="ST Level", ranks=BPI_RANKS
    )
    assert (tickets, events) == (hand.tickets, hand.rows) == (7_554, 65_533)
    assert k["handoffs"] == hand.handovers == 9_454  # "9,454 team handovers"
    assert k["bounced_tickets"] == hand.bounced == 247  # "247 incidents bounce back (A→B→A)"
    assert k["returned_tickets"] == hand.returned
    assert k["tier_up_tickets"] == hand.tier_up_tickets == 2_299  # "2,299 incidents escalate"
    assert k["tier_ups"] == hand.tier_ups
    assert k["escalated_tickets"] == 2_299  # history has no rules: its escalations are its tier-ups
    assert k["bounce_rate"] == pytest.approx(247 / k["handoff_tickets"], abs=1e-6)


def test_servicenow_sample_as_it_happened_is_what_the_log_says() -> None:
    tickets, events, k = happened("servicenow", 3_000)
    hand = count_by_hand(
        SERVICENOW,
        number="number",
        when=sn_time,
        team="assignment_group",
        status="incident_state",
        solved=frozenset({"Resolved", "Closed"}),
        opened=sn_opened,
        limit=3_000,
    )
    assert (tickets, events) == (hand.tickets, hand.rows)
    assert k["resolved_tickets"] == len(hand.resolution_hours)
    assert k["mttr_hours"] == pytest.approx(
        math.fsum(hand.resolution_hours) / len(hand.resolution_hours), abs=1e-5
    )
    for pct in (50, 90):
        assert k[f"ttr_p{pct}_hours"] == pytest.approx(nearest_rank(hand.resolution_hours, pct), abs=1e-5)
        first = nearest_rank(hand.first_resolution_hours, pct)
        assert k[f"first_resolution_p{pct}_hours"] == pytest.approx(first, abs=1e-5)
    assert k["reopens"] == hand.reopens > 0
    assert k["handoffs"] == hand.handovers > 0
    assert k["bounced_tickets"] == hand.bounced > 0
    assert k["returned_tickets"] == hand.returned
    assert k["tier_ups"] == 0  # the log records no tiers
    for priority in SN_PRIORITY.values():
        assert k.get(f"sla_recorded_missed.priority.{priority}") == hand.sla_missed[priority]
        assert k.get(f"sla_recorded_met.priority.{priority}") == hand.sla_met[priority]
    assert k["sla_recorded_missed"] == sum(hand.sla_missed.values())


@pytest.mark.slow  # the whole log as it happened: about 25 s
def test_servicenow_as_it_happened_is_what_the_readme_says() -> None:
    tickets, events, k = happened("servicenow", None)
    assert (tickets, events) == (20_769, 119_998)
    # "made_sla is false for 215 of 220 Critical and 336 of 337 High incidents"
    assert (k["sla_recorded_missed.priority.urgent"], k["sla_recorded_met.priority.urgent"]) == (215, 5)
    assert (k["sla_recorded_missed.priority.high"], k["sla_recorded_met.priority.high"]) == (336, 1)
    hand = count_by_hand(SERVICENOW, number="number", when=sn_time, team="assignment_group")
    assert (k["handoffs"], k["bounced_tickets"], k["returned_tickets"]) == (
        hand.handovers,
        hand.bounced,
        hand.returned,
    )


@pytest.mark.parametrize(("name", "limit"), [("servicenow", 600), ("bpic2013", 400)])
def test_a_sample_of_each_log_replays_through_the_example_policy(
    tmp_path: Path, name: str, limit: int
) -> None:
    path = SERVICENOW if name == "servicenow" else BPIC
    result = write_replay(
        tmp_path, history=path, mapping=load_mapping(name), policy=load_policy(EXAMPLE_POLICY), limit=limit
    )
    doc = result.document
    sn = name == "servicenow"
    hand = count_by_hand(
        path,
        number="number" if sn else "SR Number",
        when=sn_time if sn else bpi_time,
        team="assignment_group" if sn else "Involved ST",
        limit=limit,
    )
    assert (doc["tickets"], doc["events"], doc["errors"]) == (limit, hand.rows, 0)
    lines = (tmp_path / "decisions.jsonl").read_bytes().splitlines()
    assert len(lines) == doc["decisions"] == doc["events"] + doc["timers_fired"]
    records = [orjson.loads(line) for line in lines]
    decided = [datetime.fromisoformat(r["decided_at"]) for r in records if r["event_source"] != "baton.timer"]
    assert decided == sorted(decided)  # every event is decided in time order
    rates = {k: v for k, v in doc["kpis"].items() if k.endswith(("_rate", "compliance")) and v is not None}
    assert rates and all(0 <= v <= 1 for v in rates.values())
    assert doc["kpis"]["tier_up_tickets"] > 0 and doc["kpis"]["sla_breached"] > 0


@pytest.mark.parametrize(("name", "limit"), [("servicenow", 600), ("bpic2013", 400)])
def test_a_sample_of_each_log_through_the_example_policy_and_a_variant_shows_the_differences(
    tmp_path: Path, name: str, limit: int
) -> None:
    # The variant a team might try: no automatic tier-up when an SLA is breached. On real history
    # (where many tickets breach) tickets then end in other tiers, with fewer escalations.
    variant = tmp_path / "variant"
    shutil.copytree(EXAMPLE_POLICY, variant)
    sla = variant / "sla.yaml"
    text = sla.read_text(encoding="utf-8")
    assert "escalate: tier_up" in text
    sla.write_text(text.replace("escalate: tier_up", "escalate: null"), encoding="utf-8")
    path = SERVICENOW if name == "servicenow" else BPIC
    result = write_replay(
        tmp_path / "out",
        history=path,
        mapping=load_mapping(name),
        policy=load_policy(variant),
        baseline=load_policy(EXAMPLE_POLICY),
        limit=limit,
    )
    doc = result.document
    tickets = doc["compare"]["tickets"]
    assert tickets["tickets"] == limit
    assert 0 < tickets["changed"] <= limit
    assert tickets["by"]["escalation"] > 0
    if name == "servicenow":  # BPI records its own moves between support lines: those still happen
        assert tickets["by"]["tier"] > 0
    assert tickets["by"]["route"] == 0  # routing did not change, and no difference is invented there
    example = tickets["examples"]["escalation"][0]
    assert example["baseline"] != example["policy"] and example["external_id"]
    tier_ups = doc["compare"]["kpis"]["tier_up_tickets"]
    assert tier_ups["policy"] < tier_ups["baseline"]
    assert tier_ups["delta"] == tier_ups["policy"] - tier_ups["baseline"]
    kpis = doc["compare"]["kpis"]
    assert set(kpis) == set(doc["kpis"]) | set(doc["baseline"]["kpis"])  # every KPI side by side
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert f"{tickets['changed']:,} of {limit:,} tickets end differently" in report
    assert example["external_id"] in report
