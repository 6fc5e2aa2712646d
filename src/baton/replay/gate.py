"""Replay gates: KPI thresholds that fail a CI job (``baton replay --gate gate.yaml``).

A gate file maps KPI names (as in ``kpis.json``) to limits::

    sla_compliance.enterprise: {min_delta: 0}          # must not drop against the baseline
    escalation_rate: {max_relative_increase: 0.05}     # at most 5% more than the baseline
    mttr_hours: {max: 48}                              # an absolute ceiling

Limits: ``min`` and ``max`` bound the policy's value; ``min_delta`` and ``max_delta`` bound
``policy - baseline``; ``max_relative_increase`` bounds ``(policy - baseline) / |baseline|`` and
``max_relative_decrease`` bounds ``(baseline - policy) / |baseline|``. The delta limits need a
baseline (``--compare``).

A grouped KPI may be named without its dimension when that is unambiguous:
``sla_compliance.enterprise`` is ``sla_compliance.sla_policy.enterprise`` unless another dimension
also has a group called ``enterprise``. A name that matches no KPI is an error (a typo must not
pass silently). A KPI with no value on either side (nothing to measure) passes as "no data"; one
that had a value under the baseline and has none under the policy fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from baton.analytics.kpis import Value
from baton.errors import ConfigError
from baton.policy.source import Locator, SourceError, read_yaml

__all__ = ["Gate", "GateResult", "Limits", "evaluate_gate", "load_gate"]

_DELTA_RULES = ("min_delta", "max_delta", "max_relative_increase", "max_relative_decrease")


class Limits(BaseModel):
    """The limits set on one KPI (at least one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: float | None = None
    max: float | None = None
    min_delta: float | None = None
    max_delta: float | None = None
    max_relative_increase: float | None = None
    max_relative_decrease: float | None = None

    @model_validator(mode="after")
    def _some(self) -> Limits:
        if not self.set_limits():
            raise ValueError("set at least one of: " + ", ".join(type(self).model_fields))
        return self

    def set_limits(self) -> list[tuple[str, float]]:
        return [
            (name, value) for name in type(self).model_fields if (value := getattr(self, name)) is not None
        ]


@dataclass(frozen=True)
class Gate:
    """A loaded gate file: limits by KPI name as written, with where each was written."""

    limits: dict[str, Limits]
    where: dict[str, str]

    @property
    def needs_baseline(self) -> list[str]:
        return [
            f"{self.where[name]}: {name}: {rule} compares with a baseline; run with --compare"
            for name, limits in self.limits.items()
            for rule, _ in limits.set_limits()
            if rule in _DELTA_RULES
        ]


@dataclass(frozen=True)
class GateResult:
    kpi: str
    rule: str
    limit: float
    policy: Value
    baseline: Value
    observed: float | None
    status: str  # "pass", "fail" or "no data"

    def document(self) -> dict[str, Any]:
        observed = self.observed
        if observed is not None and math.isinf(observed):
            observed = None  # JSON has no infinity; the status says it failed
        return {
            "baseline": self.baseline,
            "kpi": self.kpi,
            "limit": self.limit,
            "observed": None if observed is None else round(observed, 6),
            "policy": self.policy,
            "rule": self.rule,
            "status": self.status,
        }


def load_gate(path: Path) -> Gate:
    """Read and check a gate file; raises :class:`ConfigError` with ``file:line:col`` problems."""
    try:
        located = read_yaml(path, display=str(path))
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    data = located.data if located.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{located.locator.where(())}: a gate file maps KPI names to limits")
    problems: list[str] = []
    limits: dict[str, Limits] = {}
    where: dict[str, str] = {}
    for name, spec in data.items():
        at = _where(located.locator, (str(name),))
        try:
            limits[str(name)] = Limits.model_validate(spec if spec is not None else {})
            where[str(name)] = at
        except ValidationError as exc:
            for error in exc.errors():
                loc = (str(name), *(str(p) for p in error["loc"]))
                message = error["msg"].removeprefix("Value error, ")
                if error["type"] == "extra_forbidden":
                    message = f"unknown limit {error['loc'][-1]!r}"
                problems.append(f"{_where(located.locator, loc)}: {message}")
    if problems:
        raise ConfigError("\n".join(problems))
    return Gate(limits=limits, where=where)


def _where(locator: Locator, path: tuple[str, ...]) -> str:
    return locator.where(path)


def _resolve(name: str, known: set[str], where: str) -> str:
    if name in known:
        return name
    head, _, tail = name.partition(".")
    found = sorted(
        key
        for key in known
        if (parts := key.split(".")) and len(parts) == 3 and (parts[0], parts[2]) == (head, tail)
    )
    if len(found) == 1:
        return found[0]
    if found:
        raise ConfigError(f"{where}: {name!r} is ambiguous: name one of {', '.join(found)}")
    raise ConfigError(f"{where}: no KPI is called {name!r} (see kpis.json for the names)")


def _observed(rule: str, new: float, base: float | None) -> float | None:
    if rule in ("min", "max"):
        return new
    if base is None:
        return None
    if rule in ("min_delta", "max_delta"):
        return new - base
    change = new - base if rule == "max_relative_increase" else base - new
    if base == 0:
        return 0.0 if change == 0 else math.copysign(math.inf, change)
    return change / abs(base)


def evaluate_gate(
    gate: Gate, policy: dict[str, Value], baseline: dict[str, Value] | None
) -> list[GateResult]:
    """Check every limit; raises :class:`ConfigError` for an unknown KPI name, or a delta limit
    without a baseline."""
    if baseline is None and gate.needs_baseline:
        raise ConfigError("\n".join(gate.needs_baseline))
    known = set(policy) | set(baseline or {})
    results: list[GateResult] = []
    for written, limits in gate.limits.items():
        name = _resolve(written, known, gate.where[written])
        new, base = policy.get(name), (baseline or {}).get(name)
        for rule, limit in limits.set_limits():
            if new is None:
                status = "fail" if base is not None else "no data"
                results.append(GateResult(name, rule, limit, new, base, None, status))
                continue
            observed = _observed(rule, float(new), None if base is None else float(base))
            if observed is None:
                results.append(GateResult(name, rule, limit, new, base, None, "no data"))
                continue
            ok = observed >= limit if rule in ("min", "min_delta") else observed <= limit
            results.append(GateResult(name, rule, limit, new, base, observed, "pass" if ok else "fail"))
    return sorted(results, key=lambda r: (r.kpi, r.rule))
