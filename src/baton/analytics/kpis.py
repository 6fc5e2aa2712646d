"""The KPIs (capability A2): aggregates of :class:`~baton.analytics.facts.TicketFacts`.

:class:`KpiAccumulator` takes tickets one at a time (constant memory per ticket: a few counters and
the durations percentiles need) and returns a :class:`KpiReport`: a flat mapping of dotted names
to numbers (``None`` where there is nothing to measure), sorted by name, so that two reports can
be compared and gated key by key. Rates are shares in [0, 1]; durations are hours. Every name is
defined in ``docs/kpis.md``.

Means use ``math.fsum`` and percentiles are nearest-rank: the result does not depend on the order
tickets are added in, and the same tickets always give byte-identical JSON.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from baton.analytics.facts import MRR_BANDS, TicketFacts

__all__ = ["DURATIONS", "HISTOGRAM_HOURS", "KpiAccumulator", "KpiReport", "Value", "percentile"]

Value = int | float | None
DURATIONS = ("resolution", "first_resolution", "active_resolution", "first_response", "first_action")
# Bucket edges of the duration histograms, in hours.
HISTOGRAM_HOURS: tuple[float, ...] = (1, 4, 8, 24, 72, 168, 336, 720)
_SLA_DIMENSIONS = ("tier", "priority", "mrr_band", "sla_policy")
_PRIORITIES = ("low", "normal", "high", "urgent")


def percentile(ordered: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted values: the smallest value with at least ``pct`` percent
    of the values at or below it (always one of the values; None for no values)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _round(value: Value) -> Value:
    return round(value, 6) if isinstance(value, float) else value


@dataclass(frozen=True)
class KpiReport:
    """``kpis``: name -> value, sorted by name. ``histograms``: per duration, the ticket count in
    each bucket of :data:`HISTOGRAM_HOURS` (the last bucket is open-ended), for charts."""

    kpis: dict[str, Value]
    histograms: dict[str, list[int]] = field(default_factory=dict)

    def get(self, name: str) -> Value:
        return self.kpis.get(name)


class KpiAccumulator:
    """Add every ticket's facts, then read :meth:`report`. ``tiers`` and ``sla_policies`` (the
    policy's names) are reported even when no ticket has them, so that two reports always have
    the same names for them."""

    def __init__(self, *, tiers: Sequence[str] = (), sla_policies: Sequence[str] = ()) -> None:
        self.tiers = tuple(tiers)
        self.sla_policies = tuple(sla_policies)
        self.counts: Counter[str] = Counter()
        self.durations: dict[str, list[float]] = {name: [] for name in DURATIONS}
        self.groups: Counter[tuple[str, str, str, str]] = Counter()  # (kpi, dimension, value, outcome)
        self.tier_tickets: Counter[str] = Counter()
        self.tier_escalated: Counter[str] = Counter()
        self.risk_accounts: dict[str, float | None] = {}

    def add_all(self, facts: Iterable[TicketFacts]) -> KpiAccumulator:
        for f in facts:
            self.add(f)
        return self

    def add(self, f: TicketFacts) -> None:
        c = self.counts
        c["tickets"] += 1
        c["open_tickets"] += f.open
        for name in DURATIONS:
            value = getattr(f, f"{name}_hours")
            if value is not None:
                self.durations[name].append(value)
        c["escalations"] += f.escalations
        c["escalated_tickets"] += f.escalations > 0
        c["repeat_escalated_tickets"] += f.escalations > 1
        c["tier_ups"] += f.tier_ups
        c["tier_up_tickets"] += f.tier_ups > 0
        for tier in f.tiers_visited:
            self.tier_tickets[tier] += 1
        for tier in f.escalated_from:
            self.tier_escalated[tier] += 1
        c["handoffs"] += f.handoffs
        c["handoff_tickets"] += f.handoffs > 0
        c["bounced_tickets"] += f.bounced
        c["returned_tickets"] += f.returned
        c["assists"] += f.assists
        c["automated_handoffs"] += f.automated_handoffs
        c["rolled_back"] += f.rolled_back
        c["reopens"] += f.reopens
        c["reopened_tickets"] += f.reopens > 0
        c["ever_resolved_tickets"] += f.ever_resolved
        c["fcr_tickets"] += f.fcr
        if f.observed:
            c["observed_tickets"] += 1
            c["enriched_tickets"] += f.enrichment_gap is None
            if f.enrichment_gap is not None:
                c[f"enrichment_gaps.{f.enrichment_gap}"] += 1
        dims = {
            "tier": f.first_tier or "none",
            "priority": f.priority,
            "mrr_band": f.mrr_band,
            "sla_policy": f.sla_policy or "none",
        }
        if f.sla is not None:
            c[f"sla_{f.sla}"] += 1
            if f.sla != "pending":
                for dim, value in dims.items():
                    self.groups[("sla", dim, value, f.sla)] += 1
        for clock, state in f.clocks:
            if state != "pending":
                self.groups[("sla", "clock", clock, state)] += 1
        if f.recorded_sla is not None:
            outcome = "met" if f.recorded_sla else "missed"
            c[f"sla_recorded_{outcome}"] += 1
            for dim in ("tier", "priority", "mrr_band"):
                self.groups[("sla_recorded", dim, dims[dim], outcome)] += 1
        if f.open and (f.sla == "breached" or f.at_risk):
            c["at_risk_tickets"] += 1
            c["breached_open_tickets"] += f.sla == "breached"
            if f.account_id is not None:
                self.risk_accounts[f.account_id] = f.arr

    def report(self) -> KpiReport:
        c = self.counts
        tickets = c["tickets"]
        k: dict[str, Value] = {
            name: c[name]
            for name in (
                "tickets",
                "open_tickets",
                "escalations",
                "escalated_tickets",
                "repeat_escalated_tickets",
                "tier_ups",
                "tier_up_tickets",
                "handoffs",
                "handoff_tickets",
                "bounced_tickets",
                "returned_tickets",
                "assists",
                "automated_handoffs",
                "rolled_back",
                "reopens",
                "reopened_tickets",
                "fcr_tickets",
                "enriched_tickets",
                "sla_met",
                "sla_breached",
                "sla_pending",
                "at_risk_tickets",
                "breached_open_tickets",
                "enrichment_gaps.account",
                "enrichment_gaps.account_id",
            )
        }
        resolved = len(self.durations["resolution"])
        k["resolved_tickets"] = resolved
        for name, values in self.durations.items():
            values.sort()
            prefix = "ttr" if name == "resolution" else name
            k[f"{prefix}_tickets"] = len(values)
            k[f"{prefix}_mean_hours"] = math.fsum(values) / len(values) if values else None
            k[f"{prefix}_p50_hours"] = percentile(values, 50)
            k[f"{prefix}_p90_hours"] = percentile(values, 90)
        k["mttr_hours"] = k.pop("ttr_mean_hours")
        del k["ttr_tickets"]
        k["escalation_rate"] = _share(c["escalated_tickets"], tickets)
        k["repeat_escalation_rate"] = _share(c["repeat_escalated_tickets"], c["escalated_tickets"])
        for tier in sorted(set(self.tiers) | set(self.tier_tickets)):
            k[f"tickets.tier.{tier}"] = self.tier_tickets[tier]
            k[f"escalated_tickets.tier.{tier}"] = self.tier_escalated[tier]
            k[f"escalation_rate.tier.{tier}"] = _share(self.tier_escalated[tier], self.tier_tickets[tier])
        k["handoffs_per_ticket"] = c["handoffs"] / tickets if tickets else None
        k["bounce_rate"] = _share(c["bounced_tickets"], c["handoff_tickets"])
        k["return_rate"] = _share(c["returned_tickets"], c["handoff_tickets"])
        k["sme_interruptions_per_100"] = 100 * c["assists"] / tickets if tickets else None
        k["rollback_rate"] = _share(c["rolled_back"], c["automated_handoffs"])
        k["reopen_rate"] = _share(c["reopened_tickets"], c["ever_resolved_tickets"])
        k["fcr_rate"] = _share(c["fcr_tickets"], resolved)
        k["enrichment_success_rate"] = _share(c["enriched_tickets"], c["observed_tickets"])
        k["sla_compliance"] = _share(c["sla_met"], c["sla_met"] + c["sla_breached"])
        self._groups(k, "sla", "met", "breached", "sla_compliance")
        if c["sla_recorded_met"] + c["sla_recorded_missed"]:
            k["sla_recorded_met"] = c["sla_recorded_met"]
            k["sla_recorded_missed"] = c["sla_recorded_missed"]
            k["sla_recorded_compliance"] = _share(
                c["sla_recorded_met"], c["sla_recorded_met"] + c["sla_recorded_missed"]
            )
            self._groups(k, "sla_recorded", "met", "missed", "sla_recorded_compliance")
        known = sorted((a, arr) for a, arr in self.risk_accounts.items() if arr is not None)
        k["revenue_at_risk_arr"] = math.fsum(arr for _, arr in known)
        k["revenue_at_risk_accounts"] = len(self.risk_accounts)
        histograms = {name: _histogram(values) for name, values in self.durations.items()}
        return KpiReport(kpis={name: _round(k[name]) for name in sorted(k)}, histograms=histograms)

    def _groups(self, k: dict[str, Value], kpi: str, good: str, bad: str, rate: str) -> None:
        values: dict[str, set[str]] = {}
        for key in self.groups:
            if key[0] == kpi:
                values.setdefault(key[1], set()).add(key[2])
        if kpi == "sla":
            values.setdefault("priority", set()).update(_PRIORITIES)
            values.setdefault("mrr_band", set()).update([*(name for _, name in MRR_BANDS), "unknown"])
            values.setdefault("tier", set()).update(self.tiers)
            values.setdefault("sla_policy", set()).update(self.sla_policies)
        for dim in sorted(values):
            for value in sorted(values[dim]):
                met, missed = self.groups[(kpi, dim, value, good)], self.groups[(kpi, dim, value, bad)]
                k[f"{kpi}_{good}.{dim}.{value}"] = met
                k[f"{kpi}_{bad}.{dim}.{value}"] = missed
                k[f"{rate}.{dim}.{value}"] = _share(met, met + missed)


def _histogram(values: Sequence[float]) -> list[int]:
    buckets = [0] * (len(HISTOGRAM_HOURS) + 1)
    for value in values:
        buckets[bisect.bisect_right(HISTOGRAM_HOURS, value)] += 1
    return buckets
