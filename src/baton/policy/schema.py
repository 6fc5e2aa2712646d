"""The policy repository's documents, as validated data (Pydantic models of the YAML files).

A policy is a folder:

================  ==============================================================================
``baton.yaml``    name, author, tiers, defaults, connectors in use, global safety settings
``teams.yaml``    teams, members (time zone, skills, capacity, identities), roles
``schedules.yaml``  on-call schedules (layers of rotations, overrides), out-of-office periods
``calendars.yaml``  business hours and holidays
``sla.yaml``      SLA policies: targets, pauses, thresholds, handoff behaviour, update cadences
``routing.yaml``  ordered, named routing rules: the first home of a ticket
``escalation.yaml``  named escalation rules
``templates/``    Jinja2 templates (``*.j2``), rendered in a sandbox
``tests/``        declarative test cases (``*.yaml``), run by ``baton policy test``
================  ==============================================================================

Every name (rule, role, template...) is what decisions, explanations, tests and metrics show.
These models only check shape; cross-references (unknown role, unknown template, unreachable rule)
are checked by :mod:`baton.policy.compiler`, which also locates every problem at ``file:line:col``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

__all__ = [
    "ActionSpec",
    "BatonDoc",
    "CalendarDoc",
    "CalendarsDoc",
    "EscalationRule",
    "EscalationsDoc",
    "LayerDoc",
    "Member",
    "NotifySpec",
    "OutOfOfficeDoc",
    "OverrideDoc",
    "RoleDoc",
    "RouteSet",
    "RoutingDoc",
    "RoutingRule",
    "SafetyDoc",
    "ScheduleDoc",
    "SchedulesDoc",
    "SlaDoc",
    "SlaPolicyDoc",
    "StuckDoc",
    "TeamDoc",
    "TeamsDoc",
    "ThresholdDoc",
    "UpdateCadence",
    "parse_duration_text",
    "parse_rate",
]

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Expression = Annotated[str, StringConstraints(min_length=1, max_length=2_000)]
DURATION_PATTERN = r"^\s*(\d+\s*[dhms]\s*)+$"
DurationText = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
IDENTITY_SYSTEMS = (
    "email",
    "zendesk",
    "freshdesk",
    "slack",
    "jira",
    "pagerduty",
    "linear",
    "salesforce",
    "hubspot",
)
_DURATION_PART = re.compile(r"(\d+)\s*([dhms])")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


def parse_duration_text(text: str) -> int:
    """``"1h30m"`` -> seconds. The pattern above has already checked the shape."""
    units = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in _DURATION_PART.findall(text))


def parse_rate(text: str) -> tuple[int, int]:
    """``"20/h"`` or ``"100/15m"`` -> (count, window seconds)."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"not a rate: {text!r} (use e.g. 20/h or 100/15m)")
    count, size, unit = match.groups()
    if int(count) < 1 or (size and int(size) < 1):
        raise ValueError(f"not a rate: {text!r} (the count and the window must be at least 1)")
    return int(count), int(size or 1) * {"s": 1, "m": 60, "h": 3_600, "d": 86_400}[unit]


class Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- baton.yaml --------------------------------------------------------------------------------


class SafetyDoc(Doc):
    shadow: bool = Field(default=False, description="Decide and record, but send nothing (whole policy).")
    rate_limits: dict[Name, str] = Field(
        default_factory=dict,
        description="Per kind, connector or connector.kind, e.g. {page: 20/h, slack.notify: 20/m}: "
        "beyond it actions wait.",
    )

    @field_validator("rate_limits")
    @classmethod
    def _rates(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if key.count(".") > 1 or key.startswith(".") or key.endswith("."):
                raise ValueError(f"rate limit {key!r}: key it by kind, connector or connector.kind")
            parse_rate(text)
        return value


SYNC_FIELDS = ("assignee", "team", "tier", "priority", "status")


class SyncDoc(Doc):
    """Write Baton's changes to a linked system: the key of ``sync`` is the link's system
    (``zendesk``, ``jira``...), ``connector`` the connector that writes (default: the same name)."""

    connector: Name | None = None
    fields: tuple[Literal[SYNC_FIELDS], ...] = Field(  # type: ignore[valid-type]
        min_length=1, description="What to write: assignee, team, tier, priority, status."
    )
    enabled: bool = True


class BatonDoc(Doc):
    name: Name
    description: str = ""
    author: str | None = Field(
        default=None, description="Who wrote this version; may not approve its actions."
    )
    tiers: dict[Name, Name] = Field(
        min_length=1, description="Support tiers, lowest first, each with the role that owns tickets there."
    )
    approvers: Name | None = Field(
        default=None, description="The role that approves blocking actions and hears of notify_after ones."
    )
    default_calendar: Name | None = None
    default_priority: Literal["low", "normal", "high", "urgent"] = "normal"
    connectors: tuple[Name, ...] = Field(
        default=(), description="Connectors in use; members need their identities."
    )
    notify_connector: Name = Field(default="log", description="Where notifications to people go by default.")
    sync: dict[Name, SyncDoc] = Field(
        default_factory=dict, description="Linked systems Baton writes its changes to, by system."
    )
    safety: SafetyDoc = SafetyDoc()


# -- teams.yaml --------------------------------------------------------------------------------


class Member(Doc):
    name: str | None = None
    tz: str = "UTC"
    skills: tuple[Name, ...] = ()
    capacity: int = Field(
        default=20, ge=0, le=10_000, description="Open tickets this person can carry; 0 takes no new tickets."
    )
    identities: dict[Literal[IDENTITY_SYSTEMS], str] = Field(default_factory=dict)  # type: ignore[valid-type]


class TeamDoc(Doc):
    calendar: Name | None = None
    manager: Name | None = None
    oncall: Name | None = Field(
        default=None,
        description="A schedule: whoever is on call in it covers the team's roles after their backup, "
        "before the manager.",
    )
    members: dict[Name, Member] = Field(min_length=1)


class RoleDoc(Doc):
    """A role is filled from a schedule (on call) or a pool of members (least loaded first)."""

    team: Name
    schedule: Name | None = None
    members: tuple[Name, ...] = ()
    skills: tuple[Name, ...] = Field(default=(), description="Pool members must have all of these.")
    backup: Name | None = Field(default=None, description="Who covers when nobody in the role is available.")

    @model_validator(mode="after")
    def _source(self) -> RoleDoc:
        if bool(self.schedule) == bool(self.members):
            raise ValueError("a role takes either a schedule or members")
        return self


class TeamsDoc(Doc):
    teams: dict[Name, TeamDoc] = Field(min_length=1)
    roles: dict[Name, RoleDoc] = Field(min_length=1)


# -- schedules.yaml ----------------------------------------------------------------------------


class LayerDoc(Doc):
    name: Name
    members: tuple[Name, ...] = Field(min_length=1)
    rotation: Literal["daily", "weekly"] | DurationText = "weekly"
    handoff: Annotated[str, StringConstraints(pattern=r"^\d{2}:\d{2}$")] = "09:00"
    start: date | datetime


class OverrideDoc(Doc):
    person: Name
    start: datetime
    end: datetime


class ScheduleDoc(Doc):
    tz: str = "UTC"
    layers: tuple[LayerDoc, ...] = Field(min_length=1)
    overrides: tuple[OverrideDoc, ...] = ()


class OutOfOfficeDoc(Doc):
    person: Name
    start: date | datetime
    end: date | datetime
    note: str = ""


class SchedulesDoc(Doc):
    schedules: dict[Name, ScheduleDoc] = Field(default_factory=dict)
    out_of_office: tuple[OutOfOfficeDoc, ...] = ()


# -- calendars.yaml ----------------------------------------------------------------------------


class HolidaysDoc(Doc):
    country: str | None = None
    subdivision: str | None = None
    years: tuple[int, ...] = ()
    dates: tuple[date, ...] = ()


class CalendarDoc(Doc):
    tz: str = "UTC"
    hours: Literal["24x7"] | dict[str, tuple[str, ...]] = Field(
        description='"24x7", or weekday (mon..sun, or a range mon-fri) -> intervals like "09:00-17:00".'
    )
    holidays: HolidaysDoc = HolidaysDoc()


class CalendarsDoc(Doc):
    calendars: dict[Name, CalendarDoc] = Field(default_factory=dict)


# -- actions -----------------------------------------------------------------------------------


class NotifySpec(Doc):
    """Tell someone. ``to`` is a role, ``owner``, ``previous_owner``, ``manager``, ``customer``,
    or an expression in ``{{ }}`` such as ``{{ account.ae }}``."""

    to: str
    template: Name
    connector: Name | None = None


class ActionSpec(Doc):
    """Any other outbound effect, e.g. a Zendesk tag, a PagerDuty page, a Jira issue."""

    name: Name
    connector: Name
    kind: Name
    params: dict[str, object] = Field(default_factory=dict)


# -- sla.yaml ----------------------------------------------------------------------------------


Share = Annotated[float, Field(ge=0, le=1)]


class ThresholdDoc(Doc):
    at: Annotated[int, Field(gt=0, le=1_000)] = Field(description="Percent of the window used.")
    notify: tuple[NotifySpec, ...] = ()
    escalate: Literal["tier_up"] | Name | None = Field(
        default=None, description="tier_up, or the name of an escalation rule to apply."
    )
    shadow: bool = Field(default=False, description="Record what the threshold would do; do nothing.")
    canary: Share = Field(default=1.0, description="The share of tickets it acts on; shadow on the rest.")


class UpdateCadence(Doc):
    every: DurationText
    when: Expression = "True"
    notify: NotifySpec


class SlaPolicyDoc(Doc):
    name: Name
    when: Expression = "True"
    calendar: Name | None = None
    targets: dict[
        Literal["first_response", "next_response", "resolution"],
        DurationText | dict[Literal["low", "normal", "high", "urgent"], DurationText],
    ] = Field(min_length=1, description="Per clock: one duration, or one per priority (all four).")
    pause_when: Expression | None = Field(default=None, description='e.g. ticket.stage == "pending"')
    on_handoff: Literal["continue", "restart"] = "continue"
    thresholds: tuple[ThresholdDoc, ...] = ()
    updates: tuple[UpdateCadence, ...] = ()
    enabled: bool = True

    @field_validator("targets")
    @classmethod
    def _every_priority(cls, value: dict[str, object]) -> dict[str, object]:
        for clock, target in value.items():
            if isinstance(target, dict) and set(target) != {"low", "normal", "high", "urgent"}:
                missing = sorted({"low", "normal", "high", "urgent"} - set(target))
                raise ValueError(f"{clock}: give a target for every priority (missing {missing})")
        return value

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, value: tuple[ThresholdDoc, ...]) -> tuple[ThresholdDoc, ...]:
        ats = [t.at for t in value]
        if ats != sorted(set(ats)):
            raise ValueError("thresholds must be listed once each, in increasing order")
        return value


class SlaDoc(Doc):
    sla: tuple[SlaPolicyDoc, ...] = Field(min_length=1)


# -- routing.yaml ------------------------------------------------------------------------------


class RouteSet(Doc):
    queue: Name | None = None
    team: Name | None = None
    tier: Name | None = None
    owner: Name | None = Field(default=None, description="A role.")
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    tags: tuple[Name, ...] = ()


class RoutingRule(Doc):
    name: Name
    when: Expression = "True"
    set: RouteSet
    notify: tuple[NotifySpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    continue_: bool = Field(default=False, alias="continue")
    enabled: bool = True
    shadow: bool = Field(
        default=False, description="Record where the rule would route; the walk goes on to the next rule."
    )
    canary: Share = Field(default=1.0, description="The share of tickets it routes; shadow on the rest.")


class RoutingDoc(Doc):
    routing: tuple[RoutingRule, ...] = Field(min_length=1)


# -- escalation.yaml ---------------------------------------------------------------------------


class StuckDoc(Doc):
    """Time in stage: the rule is evaluated when the ticket has been in ``stage`` for ``for``."""

    stage: Literal["new", "open", "pending", "escalated"]
    for_: DurationText = Field(alias="for", description="How long in the stage, e.g. 4h or 1d 12h.")
    time: Literal["business", "calendar"] = Field(
        default="calendar", description="calendar: wall-clock time; business: open hours of `calendar`."
    )
    calendar: Name | None = Field(
        default=None,
        description="For business time; default the ticket's SLA policy's calendar, else default_calendar.",
    )

    @field_validator("for_")
    @classmethod
    def _positive(cls, value: str) -> str:
        if parse_duration_text(value) <= 0:
            raise ValueError("a time in stage must be longer than 0s")
        return value


class EscalationRule(Doc):
    name: Name
    description: str = ""
    when: Expression = Field(
        default="True", description="The condition; required unless the rule has `stuck`."
    )
    stuck: StuckDoc | None = Field(
        default=None, description="Time in stage: evaluate the rule when the ticket has stayed in a stage."
    )
    on: tuple[str, ...] = Field(
        default=("ticket.created", "ticket.updated", "customer.replied", "priority.changed"),
        description="Event types (or sla.<clock>.<pct>) on which the condition is evaluated.",
    )
    kind: Literal["functional", "hierarchical"]
    mode: Literal["assist", "handoff"]
    split: bool = Field(
        default=False, description="On handoff, the previous owner keeps customer communication."
    )
    to: Name = Field(description="The target role.")
    tier: Name | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    requires: tuple[
        Literal[
            "summary",
            "customer_report",
            "steps_tried",
            "artifacts",
            "account",
            "urgency",
            "reason",
            "next_question",
        ],
        ...,
    ] = ()
    notify: tuple[NotifySpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    approval: Literal["required", "notify_after", "none"] = "none"
    once: bool = Field(default=True, description="Apply at most once per ticket.")
    enabled: bool = True
    shadow: bool = False
    canary: Share = 1.0
    author: str | None = None

    @model_validator(mode="after")
    def _condition(self) -> EscalationRule:
        if "when" not in self.model_fields_set and self.stuck is None:
            raise ValueError("missing field 'when' (it may be left out only with `stuck`)")
        return self


class EscalationsDoc(Doc):
    escalations: tuple[EscalationRule, ...] = ()
