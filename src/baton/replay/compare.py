"""Comparing two policies over the same history: ticket by ticket and KPI by KPI.

A ticket *differs* in a dimension when the two policies left it with a different value there:

- ``route``: the routing rules that matched when it opened;
- ``owner``: its owner of record at the end (role and person);
- ``tier``: its tier at the end;
- ``escalation``: the escalation rules (and SLA tier-ups) applied to it, in order;
- ``sla``: its SLA outcome (``met``, ``breached``, ``pending`` or none).

Examples are the first ones by external id, so the same inputs always show the same examples.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from baton.analytics.facts import Outcome
from baton.analytics.kpis import Value
from baton.replay.run import RunResult

__all__ = ["DIMENSIONS", "EXAMPLES", "compare_kpis", "compare_tickets"]

DIMENSIONS = tuple(f.name for f in fields(Outcome))
EXAMPLES = 10


def _delta(base: Value, new: Value) -> tuple[Value, Value]:
    if base is None or new is None:
        return None, None
    delta = new - base
    if base == 0:
        return round(delta, 6), (0.0 if delta == 0 else None)
    return round(delta, 6), round(delta / abs(base), 6)


def compare_kpis(policy: dict[str, Value], baseline: dict[str, Value]) -> dict[str, dict[str, Value]]:
    """Every KPI of either side: ``baseline``, ``policy``, ``delta`` (policy - baseline) and
    ``relative`` (delta / |baseline|; None when the baseline is 0 and the value moved)."""
    out: dict[str, dict[str, Value]] = {}
    for name in sorted(set(policy) | set(baseline)):
        base, new = baseline.get(name), policy.get(name)
        delta, relative = _delta(base, new)
        out[name] = {"baseline": base, "delta": delta, "policy": new, "relative": relative}
    return out


def compare_tickets(result: RunResult, baseline: RunResult, *, examples: int = EXAMPLES) -> dict[str, Any]:
    """How many tickets differ, in total and per dimension, with examples of each."""
    counts = dict.fromkeys(DIMENSIONS, 0)
    shown: dict[str, list[tuple[str, str, dict[str, str]]]] = {d: [] for d in DIMENSIONS}
    changed = 0
    for ticket_id in sorted(set(result.outcomes) | set(baseline.outcomes)):
        external, new = result.outcomes.get(ticket_id, (None, None))
        base_external, base = baseline.outcomes.get(ticket_id, (None, None))
        external = external or base_external
        differs = False
        for dim in DIMENSIONS:
            a = getattr(base, dim) if base is not None else "(absent)"
            b = getattr(new, dim) if new is not None else "(absent)"
            if a == b:
                continue
            differs = True
            counts[dim] += 1
            shown[dim].append(
                (
                    external or ticket_id,
                    ticket_id,
                    {"baseline": a, "policy": b, "external_id": external or ""},
                )
            )
        changed += differs
    return {
        "changed": changed,
        "tickets": len(set(result.outcomes) | set(baseline.outcomes)),
        "by": counts,
        "examples": {
            dim: [{"ticket": tid, **values} for _, tid, values in sorted(items)[:examples]]
            for dim, items in shown.items()
        },
    }
