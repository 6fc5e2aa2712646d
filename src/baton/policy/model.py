"""The policy schema (first, minimal version): named routing rules over simple field conditions,
roles, tiers and SLA targets. Validated data with names: every rule name shows up in decisions.

A policy's *version* is the SHA-256 of its source files, so the record says exactly what decided.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from baton.model import Priority

__all__ = ["Condition", "Policy", "Role", "RouteSet", "RoutingRule", "SlaPolicy", "parse_duration"]

RuleName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*$")


def parse_duration(text: str) -> timedelta:
    """``"1d"``, ``"4h"``, ``"90m"``, ``"1h30m"`` -> timedelta."""
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 4h, 1d, 1h30m)")
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Condition(_Strict):
    """A test on one field. Exactly one operator is given."""

    equals: str | float | bool | None = None
    one_of: tuple[str, ...] | None = None
    contains_any: tuple[str, ...] | None = None
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a condition takes exactly one operator, got {given or 'none'}")
        return self


FIELDS = frozenset(
    {
        "subject",
        "body",
        "text",
        "channel",
        "category",
        "severity",
        "priority",
        "tags",
        "event.type",
        "account.plan",
        "account.mrr",
        "account.health",
        "account.flags",
    }
)


class RouteSet(_Strict):
    queue: str | None = None
    team: str | None = None
    tier: str | None = None
    owner_role: str | None = None
    priority: Priority | None = None


class RoutingRule(_Strict):
    name: RuleName
    when: dict[str, Condition | str | float | bool] = Field(default_factory=dict)
    set: RouteSet
    enabled: bool = True

    @field_validator("when")
    @classmethod
    def _known_fields(cls, when: dict[str, object]) -> dict[str, object]:
        unknown = sorted(set(when) - FIELDS)
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; known: {sorted(FIELDS)}")
        return when


class Role(_Strict):
    members: tuple[str, ...] = Field(min_length=1)


class SlaPolicy(_Strict):
    first_response: dict[Priority, str]
    resolution: dict[Priority, str]
    thresholds: tuple[int, ...] = (50, 80, 100)

    @field_validator("first_response", "resolution")
    @classmethod
    def _durations(cls, targets: dict[Priority, str]) -> dict[Priority, str]:
        missing = sorted(set(Priority) - set(targets))
        if missing:
            raise ValueError(f"missing targets for {missing}")
        for text in targets.values():
            parse_duration(text)
        return targets

    @field_validator("thresholds")
    @classmethod
    def _percentages(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if not values or any(not 0 < v <= 100 for v in values) or list(values) != sorted(set(values)):
            raise ValueError("thresholds are increasing percentages in 1..100")
        if values[-1] != 100:
            raise ValueError("the last threshold must be 100 (the breach)")
        return values

    def target(self, clock: Literal["first_response", "resolution"], priority: Priority) -> timedelta:
        return parse_duration(
            (self.first_response if clock == "first_response" else self.resolution)[priority]
        )


class Policy(_Strict):
    """A loaded policy. ``version`` is filled in by the loader from the files' content hash."""

    name: RuleName
    version: str = "unversioned"
    notify_connector: str = "log"
    roles: dict[str, Role]
    tiers: dict[str, str] = Field(
        description="Tier name -> the role that owns tickets at that tier, in order."
    )
    routing: tuple[RoutingRule, ...] = Field(min_length=1)
    sla: SlaPolicy

    @model_validator(mode="after")
    def _references(self) -> Policy:
        problems = []
        for tier, role in self.tiers.items():
            if role not in self.roles:
                problems.append(f"tiers.{tier}: unknown role {role!r}")
        names: set[str] = set()
        for i, rule in enumerate(self.routing):
            if rule.name in names:
                problems.append(f"routing[{i}]: duplicate rule name {rule.name!r}")
            names.add(rule.name)
            if rule.set.owner_role and rule.set.owner_role not in self.roles:
                problems.append(f"routing[{i}] ({rule.name}): unknown role {rule.set.owner_role!r}")
            if rule.set.tier and rule.set.tier not in self.tiers:
                problems.append(f"routing[{i}] ({rule.name}): unknown tier {rule.set.tier!r}")
        if self.routing and self.routing[-1].when:
            problems.append("routing: the last rule must have no conditions (the default home)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def next_tier(self, tier: str | None) -> str | None:
        order = list(self.tiers)
        if tier not in order:
            return order[0] if order else None
        i = order.index(tier)
        return order[i + 1] if i + 1 < len(order) else None
