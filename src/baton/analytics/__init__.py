"""KPIs (capability A2), defined once and computed the same way for the live store and for replay.

- :mod:`~baton.analytics.track` follows one ticket through its decisions;
- :mod:`~baton.analytics.facts` reads one ticket's facts (its final state plus its track);
- :mod:`~baton.analytics.kpis` aggregates facts into named KPIs;
- :mod:`~baton.analytics.live` computes them from the store.

Replay (:mod:`baton.replay`) feeds the same track and facts from the simulator. The definitions,
formulas and edge cases are in ``docs/kpis.md``.
"""

from baton.analytics.facts import Outcome, TicketFacts, clock_outcome, mrr_band, ticket_facts
from baton.analytics.kpis import KpiAccumulator, KpiReport, percentile
from baton.analytics.live import LiveKpis, live_kpis
from baton.analytics.track import TicketTrack

__all__ = [
    "KpiAccumulator",
    "KpiReport",
    "LiveKpis",
    "Outcome",
    "TicketFacts",
    "TicketTrack",
    "clock_outcome",
    "live_kpis",
    "mrr_band",
    "percentile",
    "ticket_facts",
]
