"""A compiled policy: what ``decide`` reads. Built once from the policy folder by
:mod:`baton.policy.compiler`; immutable, with expressions compiled to native code, calendars and
schedules resolved, templates parsed. ``version`` is the content hash of the folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from baton.policy.calendar import BusinessCalendar
from baton.policy.expr import CompiledExpression
from baton.policy.schedule import OutOfOffice, Schedule
from baton.policy.templates import Templates

__all__ = [
    "Action",
    "Escalation",
    "Member",
    "Notify",
    "Policy",
    "Role",
    "Route",
    "SlaPolicy",
    "StageTimer",
    "SyncTarget",
    "Team",
    "Threshold",
    "UpdateCadence",
]

ClockName = Literal["first_response", "next_response", "resolution"]
CLOCKS: tuple[ClockName, ...] = ("first_response", "next_response", "resolution")


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    team: str
    name: str | None
    tz: str
    skills: frozenset[str]
    capacity: int
    identities: dict[str, str]


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    calendar: str | None
    manager: str | None
    members: tuple[str, ...]
    oncall: str | None = None  # a schedule: the team's on-call, between a role's backup and the manager


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    team: str
    schedule: str | None
    members: tuple[str, ...]
    backup: str | None


@dataclass(frozen=True, slots=True)
class Notify:
    to: str  # a role, owner / previous_owner / manager / customer, or an expression
    template: str
    connector: str
    to_expression: CompiledExpression | None = None


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    connector: str
    kind: str
    params: dict[str, object]


@dataclass(frozen=True, slots=True)
class Threshold:
    at: int
    notify: tuple[Notify, ...]
    escalate: str | None  # "tier_up" or an escalation rule name
    shadow: bool = False
    canary: float = 1.0


@dataclass(frozen=True, slots=True)
class UpdateCadence:
    every: timedelta
    when: CompiledExpression
    notify: Notify


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    name: str
    when: CompiledExpression
    calendar: BusinessCalendar
    targets: dict[ClockName, dict[str, timedelta]]  # clock -> priority -> target
    pause_when: CompiledExpression | None
    on_handoff: Literal["continue", "restart"]
    thresholds: tuple[Threshold, ...]
    updates: tuple[UpdateCadence, ...]


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    when: CompiledExpression
    queue: str | None
    team: str | None
    tier: str | None
    owner: str | None
    priority: str | None
    tags: tuple[str, ...]
    notify: tuple[Notify, ...]
    actions: tuple[Action, ...]
    continue_: bool
    enabled: bool
    shadow: bool = False
    canary: float = 1.0


@dataclass(frozen=True, slots=True)
class StageTimer:
    """Time in stage: the rule listens to ``stuck.<rule>``, a timer set when the ticket enters
    ``stage`` and due ``after`` later (business time on a calendar when ``business``)."""

    stage: str
    after: timedelta
    business: bool
    calendar: BusinessCalendar | None  # the rule's own; None: the ticket's SLA policy's calendar
    fallback: BusinessCalendar  # for a ticket without an SLA policy: default_calendar, else 24x7


@dataclass(frozen=True, slots=True)
class Escalation:
    name: str
    description: str
    when: CompiledExpression
    on: frozenset[str]
    kind: Literal["functional", "hierarchical"]
    mode: Literal["assist", "handoff"]
    split: bool
    to: str
    tier: str | None
    priority: str | None
    requires: tuple[str, ...]
    notify: tuple[Notify, ...]
    actions: tuple[Action, ...]
    approval: Literal["required", "notify_after", "none"]
    once: bool
    enabled: bool
    shadow: bool
    canary: float
    author: str | None
    stuck: StageTimer | None = None


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """Baton's changes to ``fields`` go to the ticket's link in ``system`` through ``connector``."""

    system: str
    connector: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    version: str
    author: str | None
    tiers: tuple[str, ...]
    tier_roles: dict[str, str]
    approvers: str | None
    default_priority: str
    notify_connector: str
    connectors: tuple[str, ...]
    shadow: bool
    rate_limits: dict[str, tuple[int, int]]
    teams: dict[str, Team]
    members: dict[str, Member]
    roles: dict[str, Role]
    schedules: dict[str, Schedule]
    out_of_office: tuple[OutOfOffice, ...]
    calendars: dict[str, BusinessCalendar]
    sla: tuple[SlaPolicy, ...]
    routing: tuple[Route, ...]
    escalations: tuple[Escalation, ...]
    templates: Templates
    escalation_by_name: dict[str, Escalation] = field(default_factory=dict)
    sync: tuple[SyncTarget, ...] = ()
    # What ``decide`` derives from the fields above (rule lists prepared for walking, by kind and
    # trigger), built on first use; each entry names the rules it was derived from. Derived data
    # only: never compared, and ``dataclasses.replace`` starts a new policy with an empty one.
    prepared: dict[object, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def next_tier(self, tier: str | None) -> str | None:
        if tier not in self.tiers:
            return self.tiers[0] if self.tiers else None
        i = self.tiers.index(tier)
        return self.tiers[i + 1] if i + 1 < len(self.tiers) else None
