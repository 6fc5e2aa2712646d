"""Facts of a mapped history: handovers, handoffs, tier-ups, bounces and returns, counted as the engine
records them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from baton.model import Event
from baton.signals.history import MappedRow
from baton.signals.history_stats import FactCounter, HistoryFacts, count_facts
from tests.conftest import START

TIERS = ("L1", "L2", "L3")


def stream(ticket: str, steps: list[tuple[str | None, str | None]]) -> list[MappedRow]:
    """One ticket's events, each naming (team, tier); None means the row does not say."""
    items = []
    for i, (team, tier) in enumerate(steps):
        fields = {k: v for k, v in (("team", team), ("tier", tier)) if v is not None}
        event = Event.model_validate(
            {
                "source": "x",
                "event_id": f"{ticket}:{i}",
                "type": "ticket.created" if i == 0 else "ticket.updated",
                "occurred_at": (START + timedelta(minutes=i)).isoformat(),
                "external": {"system": "x", "id": ticket},
                "fields": fields,
            }
        )
        items.append(MappedRow(i + 2, event))
    return items


def facts_of(*tickets: list[MappedRow]) -> HistoryFacts:
    return count_facts([item for t in tickets for item in t], tiers=TIERS)


# (team, tier) per event -> (handovers, handoffs, tier-ups, bounce, return)
CASES = [
    ("one team", [("A", "L1"), ("A", "L1")], (0, 0, 0, False, False)),
    ("a move", [("A", "L1"), ("B", "L1")], (1, 1, 0, False, False)),
    ("a bounce", [("A", "L1"), ("B", "L1"), ("A", "L1")], (2, 2, 0, True, True)),
    ("a slow return", [("A", "L1"), ("B", "L1"), ("B", "L1"), ("A", "L1")], (2, 2, 0, False, True)),
    ("a return via C", [("A", "L1"), ("B", "L1"), ("C", "L1"), ("A", "L1")], (3, 3, 0, False, True)),
    ("the team stays a while", [("A", "L1"), ("A", "L1"), ("B", "L1"), ("A", "L1")], (2, 2, 0, True, True)),
    ("no team at first", [(None, None), ("A", None), ("B", None)], (1, 1, 0, False, False)),
    ("unstated keeps the team", [("A", None), (None, None), ("A", None)], (0, 0, 0, False, False)),
    ("up a tier", [("A", "L1"), ("B", "L2"), ("C", "L3")], (2, 2, 2, False, False)),
    ("down a tier", [("A", "L3"), ("B", "L1")], (1, 1, 0, False, False)),
    ("tier moves alone", [("A", "L1"), ("A", "L2")], (0, 1, 1, False, False)),
    ("unknown tier", [("A", "L1"), ("A", "L9")], (0, 1, 0, False, False)),
]


@pytest.mark.parametrize(("steps", "expected"), [pytest.param(s, e, id=n) for n, s, e in CASES])
def test_what_counts(
    steps: list[tuple[str | None, str | None]], expected: tuple[int, int, int, bool, bool]
) -> None:
    f = facts_of(stream("T", steps))
    handovers, handoffs, tier_ups, bounce, returned = expected
    assert (f.handovers, f.handoffs, f.tier_ups) == (handovers, handoffs, tier_ups)
    assert (f.bounces, f.returns, f.tickets_tier_up) == (int(bounce), int(returned), int(tier_ups > 0))


def test_totals_over_tickets_and_errors() -> None:
    counter = FactCounter(tiers=TIERS)
    for item in [
        *stream("A", [("x", "L1"), ("y", "L2"), ("x", "L1")]),
        MappedRow(9, None, "bad"),
        *stream("B", [("y", "L1")]),
    ]:
        counter.add(item)
    f = counter.facts(reordered=1)
    assert (f.rows, f.errors, f.tickets, f.events, f.teams, f.reordered) == (5, 1, 2, 4, 2, 1)
    assert f.event_types == {"ticket.created": 2, "ticket.updated": 2}
    labels = dict(f.table())
    assert labels["tickets bouncing A→B→A"] == "1" and labels["tier-ups"] == "1"
