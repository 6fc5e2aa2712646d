"""From a policy folder to a compiled :class:`~baton.policy.model.Policy`, or every problem at once.

Each problem is reported as ``file:line:col: message``: shape errors from the document models,
then cross-references (unknown roles, tiers, calendars, templates, escalation names), expressions
that do not compile, rules that can never be reached, overlapping overrides, and members who lack
an identity that a configured connector needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel

from baton.errors import ConfigError, PolicyError
from baton.model import EventType
from baton.policy import schema as s
from baton.policy.calendar import BusinessCalendar, load_zone, wall_clock_instant
from baton.policy.constant import FirstMatch
from baton.policy.expr import CompiledExpression, ExpressionError, compile_expression
from baton.policy.model import (
    Action,
    Escalation,
    Member,
    Notify,
    Policy,
    Role,
    Route,
    SlaPolicy,
    StageTimer,
    SyncTarget,
    Team,
    Threshold,
    UpdateCadence,
)
from baton.policy.schedule import OutOfOffice, Override, Rotation, Schedule, overlapping_overrides
from baton.policy.shape import DEFINES, Checked, Document, Problems, check_shape
from baton.policy.source import Locator, SourceError, parse_yaml
from baton.policy.templates import TemplateProblem, Templates

__all__ = ["FILES", "compile_files", "compile_policy", "known_connectors", "policy_files", "policy_version"]

FILES = (
    "baton.yaml",
    "teams.yaml",
    "schedules.yaml",
    "calendars.yaml",
    "sla.yaml",
    "routing.yaml",
    "escalation.yaml",
)
REQUIRED = ("baton.yaml", "teams.yaml", "sla.yaml", "routing.yaml")
SPECIAL_RECIPIENTS = frozenset(
    {"owner", "communication_owner", "previous_owner", "manager", "customer", "ae", "csm"}
)
# Which member identity each connector needs to reach a person: a notification through connector
# c goes to the member's identity c, and a sync writes the assignee as their identity there.
CONNECTOR_IDENTITY = {
    "slack": "slack",
    "email": "email",
    "pagerduty": "pagerduty",
    "jira": "jira",
    "zendesk": "zendesk",
    "freshdesk": "freshdesk",
    "linear": "linear",
    "salesforce": "salesforce",
    "hubspot": "hubspot",
}
CONNECTOR_GROUP = "baton.connectors"  # the entry-point group of baton.connectors.registry
MAX_TEMPLATES = 500
_NOT_MEMBERS = frozenset({"customer", "ae", "csm"})  # recipients whose address is the account's
_MODELS: dict[str, type[BaseModel]] = {
    "baton.yaml": s.BatonDoc,
    "teams.yaml": s.TeamsDoc,
    "schedules.yaml": s.SchedulesDoc,
    "calendars.yaml": s.CalendarsDoc,
    "sla.yaml": s.SlaDoc,
    "routing.yaml": s.RoutingDoc,
    "escalation.yaml": s.EscalationsDoc,
}

D = TypeVar("D", bound=BaseModel)


def policy_files(directory: Path) -> dict[str, bytes]:
    """Every file that makes up the policy (documents and templates), by relative name."""
    files: dict[str, bytes] = {}
    for name in FILES:
        path = directory / name
        if path.is_file():
            files[name] = path.read_bytes()
    templates = directory / "templates"
    if templates.is_dir():
        for path in sorted(templates.glob("*.j2"))[:MAX_TEMPLATES]:
            files[f"templates/{path.name}"] = path.read_bytes()
    return files


def policy_version(files: dict[str, bytes]) -> str:
    """A short content hash over every file (name and bytes): what decided, exactly."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:16]


def compile_policy(directory: Path) -> Policy:
    """Load, validate and compile the policy in ``directory``; raise :class:`PolicyError` listing
    every problem found, each located at ``file:line:col``."""
    if not directory.is_dir():
        raise PolicyError([f"{directory}:1:1: not a policy folder"])
    return compile_files(policy_files(directory), root=directory)


def compile_files(files: dict[str, bytes], *, root: Path) -> Policy:
    """Compile a policy from its files (as :func:`policy_files` returns them); ``root`` only
    names the files in error locations. Used for stored versions too.

    Every problem is reported at once: a file that cannot be read, or a part of one whose shape is
    wrong, is left out and the rest is still checked (see :mod:`baton.policy.shape`)."""
    directory = root
    problems = Problems()
    checked: dict[str, Checked[BaseModel]] = {}
    infos: dict[str, Document] = {}
    for name, model in _MODELS.items():
        display = str(directory / name)
        infos[name] = Document(display, Locator(display))
        if name not in files:
            if name in REQUIRED:
                problems.add(f"{display}:1:1", "missing file")
                checked[name] = Checked(None, unknown=frozenset(DEFINES[name]))
            else:
                checked[name] = Checked(model())
            continue
        try:
            located = parse_yaml(files[name], name=display)
        except SourceError as exc:
            problems.add(exc.where, exc.message)
            checked[name] = Checked(None, unknown=frozenset(DEFINES[name]))
            continue
        infos[name] = Document(display, located.locator)
        checked[name] = check_shape(model, located.data, infos[name], problems, file=name)

    def doc(name: str, model: type[D]) -> tuple[D | None, Document]:
        return cast(D | None, checked[name].doc), infos[name]

    baton, baton_doc = doc("baton.yaml", s.BatonDoc)
    teams, teams_doc = doc("teams.yaml", s.TeamsDoc)
    schedules, schedules_doc = doc("schedules.yaml", s.SchedulesDoc)
    calendars, calendars_doc = doc("calendars.yaml", s.CalendarsDoc)
    sla, sla_doc = doc("sla.yaml", s.SlaDoc)
    routing, routing_doc = doc("routing.yaml", s.RoutingDoc)
    escalations, escalation_doc = doc("escalation.yaml", s.EscalationsDoc)
    templates = _templates(directory, files, problems)
    if len(files) > MAX_TEMPLATES + len(FILES):
        problems.add(f"{directory}/templates:1:1", f"more than {MAX_TEMPLATES} templates")

    broken: dict[str, set[str]] = {}
    for result in checked.values():
        for kind, names in result.broken.items():
            broken.setdefault(kind, set()).update(names)
    unknown = {kind for result in checked.values() for kind in result.unknown}
    c = _Compiler(
        problems=problems,
        baton=baton or s.BatonDoc.model_construct(name="invalid", tiers={}),
        templates=templates,
        broken=broken,
        unknown=unknown,
    )
    c.template_names = {
        n.removeprefix("templates/").removesuffix(".j2") for n in files if n.startswith("templates/")
    }
    if teams:
        c.teams(teams, teams_doc)
    if calendars:
        c.calendars(calendars, calendars_doc)
    if schedules:
        c.schedules(schedules, schedules_doc)
    if teams:
        c.roles(teams, teams_doc)
    if escalations:
        c.escalation_names = {rule.name for rule in escalations.escalations}
    sla_policies = c.sla(sla, sla_doc) if sla else ()
    routes = c.routing(routing, routing_doc) if routing else ()
    rules = c.escalations(escalations, escalation_doc) if escalations else ()
    if teams:  # after the rules: their notifications name connectors that reach members too
        c.identities(teams, teams_doc, baton_doc)
    if baton:
        for tier, role in baton.tiers.items():
            c.check_role(role, baton_doc, ["tiers", tier])
        c.check_role(baton.approvers, baton_doc, ["approvers"])
        for i, name in enumerate(baton.connectors):
            c.check_connector(name, baton_doc, ["connectors", i])
        c.check_connector(baton.notify_connector, baton_doc, ["notify_connector"])
        for system, spec in baton.sync.items():
            c.check_connector(spec.connector or system, baton_doc, ["sync", system, "connector"])
        if baton.default_calendar and c.unknown("calendar", baton.default_calendar):
            problems.add(
                baton_doc.locator.where(["default_calendar"]), f"unknown calendar {baton.default_calendar!r}"
            )
    if problems.items or not (
        baton and teams and schedules and calendars and sla and routing and escalations
    ):
        raise PolicyError(problems.items or [f"{directory}: invalid policy"])
    return Policy(
        name=baton.name,
        version=policy_version(files),
        author=baton.author,
        tiers=tuple(baton.tiers),
        tier_roles=dict(baton.tiers),
        approvers=baton.approvers,
        default_priority=baton.default_priority,
        notify_connector=baton.notify_connector,
        connectors=baton.connectors,
        shadow=baton.safety.shadow,
        rate_limits={kind: s.parse_rate(text) for kind, text in baton.safety.rate_limits.items()},
        teams=c.team_map,
        members=c.member_map,
        roles=c.role_map,
        schedules=c.schedule_map,
        out_of_office=c.ooo,
        calendars=c.calendar_map,
        sla=sla_policies,
        routing=routes,
        escalations=rules,
        templates=templates,
        escalation_by_name={rule.name: rule for rule in rules},
        sync=tuple(
            SyncTarget(system=system, connector=spec.connector or system, fields=spec.fields)
            for system, spec in baton.sync.items()
            if spec.enabled
        ),
    )


@cache
def known_connectors() -> tuple[str, ...]:
    """The names of the connectors installed (entry points): what a policy may name. Read once per
    process, as the connectors themselves are built once, at start."""
    return tuple(sorted(ep.name for ep in entry_points(group=CONNECTOR_GROUP)))


def _templates(directory: Path, files: dict[str, bytes], problems: Problems) -> Templates:
    sources: dict[str, str] = {}
    for name, raw in files.items():
        if not name.startswith("templates/"):
            continue
        where = f"{directory / name}:1:1"
        try:
            sources[name.removeprefix("templates/").removesuffix(".j2")] = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.add(where, "template is not UTF-8")
    good: dict[str, str] = {}
    for name, text in sources.items():  # parse one at a time so every broken template is reported
        try:
            Templates({name: text})
            good[name] = text
        except TemplateProblem as exc:
            problems.add(f"{directory / 'templates' / (name + '.j2')}:{exc.line}:1", str(exc))
    return Templates(good)


def _midnight(value: date | datetime, tz: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=load_zone(tz))
    return wall_clock_instant(value, time(0), load_zone(tz))


class _Compiler:
    """Cross-reference checks and compilation; accumulates problems instead of stopping."""

    def __init__(
        self,
        *,
        problems: Problems,
        baton: s.BatonDoc,
        templates: Templates,
        broken: dict[str, set[str]],
        unknown: set[str],
    ) -> None:
        self.problems = problems
        self.baton = baton
        self.templates = templates
        self.broken = broken
        self.unchecked = unknown
        self.escalation_names: set[str] = set()
        self.member_connectors: dict[str, str] = {}  # connector -> where a notification to a person names it
        self.team_map: dict[str, Team] = {}
        self.member_map: dict[str, Member] = {}
        self.role_map: dict[str, Role] = {}
        self.calendar_map: dict[str, BusinessCalendar] = {"24x7": BusinessCalendar.always(name="24x7")}
        self.schedule_map: dict[str, Schedule] = {}
        self.ooo: tuple[OutOfOffice, ...] = ()
        self.template_names: set[str] = set(templates.sources)
        self.teams_info: Document | None = None
        # sla.<clock>.<at>: the threshold timers the SLA policies set, which escalations may listen to.
        self.sla_triggers: set[str] = set()

    def unknown(self, kind: str, name: str) -> bool:
        """Whether ``name`` is no ``kind`` (member, role, team, calendar, schedule, template,
        escalation, tier) the policy defines. A thing whose definition was left out for a shape
        problem is known (that problem is reported already), and so is every name of a kind whose
        file could not be checked."""
        if kind in self.unchecked or name in self.broken.get(kind, ()):
            return False
        defined: dict[str, Container[str]] = {
            "member": self.member_map,
            "role": self.role_map,
            "team": self.team_map,
            "calendar": self.calendar_map,
            "schedule": self.schedule_map,
            "template": self.template_names,
            "escalation": self.escalation_names,
            "tier": self.baton.tiers,
        }
        return name not in defined[kind]

    # -- people --------------------------------------------------------------------------------

    def teams(self, doc: s.TeamsDoc, info: Document) -> None:
        self.teams_info = info
        for team_name, team in doc.teams.items():
            for member_id, member in team.members.items():
                where = info.locator.where(["teams", team_name, "members", member_id])
                if member_id in self.member_map:
                    self.problems.add(
                        where, f"member {member_id!r} is already in team {self.member_map[member_id].team!r}"
                    )
                    continue
                try:
                    load_zone(member.tz)
                except ConfigError as exc:
                    self.problems.add(
                        info.locator.where(["teams", team_name, "members", member_id, "tz"]), str(exc)
                    )
                self.member_map[member_id] = Member(
                    id=member_id,
                    team=team_name,
                    name=member.name,
                    tz=member.tz,
                    skills=frozenset(member.skills),
                    capacity=member.capacity,
                    identities=dict(member.identities),
                )
            self.team_map[team_name] = Team(
                team_name, team.calendar, team.manager, tuple(team.members), team.oncall
            )
        for team_name, team in doc.teams.items():
            if team.manager and self.unknown("member", team.manager):
                self.problems.add(
                    info.locator.where(["teams", team_name, "manager"]), f"unknown member {team.manager!r}"
                )

    def roles(self, doc: s.TeamsDoc, info: Document) -> None:
        for team_name, team in doc.teams.items():  # schedules are known by now
            if team.oncall and self.unknown("schedule", team.oncall):
                self.problems.add(
                    info.locator.where(["teams", team_name, "oncall"]), f"unknown schedule {team.oncall!r}"
                )
        for role_name, role in doc.roles.items():
            base = ["roles", role_name]
            if self.unknown("team", role.team):
                self.problems.add(info.locator.where([*base, "team"]), f"unknown team {role.team!r}")
            if role.schedule and self.unknown("schedule", role.schedule):
                self.problems.add(
                    info.locator.where([*base, "schedule"]), f"unknown schedule {role.schedule!r}"
                )
            for i, person in enumerate(role.members):
                member = self.member_map.get(person)
                if member is None:
                    if self.unknown("member", person):
                        where = info.locator.where([*base, "members", i])
                        self.problems.add(where, f"unknown member {person!r}")
                elif not set(role.skills) <= member.skills:
                    missing = sorted(set(role.skills) - member.skills)
                    self.problems.add(
                        info.locator.where([*base, "members", i]),
                        f"{person!r} lacks skills {missing} the role needs",
                    )
            if role.backup and self.unknown("member", role.backup):
                self.problems.add(info.locator.where([*base, "backup"]), f"unknown member {role.backup!r}")
            self.role_map[role_name] = Role(role_name, role.team, role.schedule, role.members, role.backup)

    def identities(self, doc: s.TeamsDoc, info: Document, baton_doc: Document) -> None:
        """Every member needs an identity in each system the policy reaches people through: the
        connectors of baton.yaml, the notify connector (Baton's own notices go to owners), and
        each connector a notification to a person (not the customer, AE or CSM) names."""
        reaching = {name: "" for name in self.baton.connectors}
        reaching.setdefault(self.baton.notify_connector, "")
        for name, where in self.member_connectors.items():
            reaching.setdefault(name, f" (notifications reach members through it, e.g. {where})")
        for connector, why in reaching.items():
            system = CONNECTOR_IDENTITY.get(connector)
            if system is None:
                continue
            for member in self.member_map.values():
                if system not in member.identities:
                    self.problems.add(
                        info.locator.where(["teams", member.team, "members", member.id]),
                        f"member {member.id!r} has no {system} identity, which connector {connector!r} "
                        f"needs{why}",
                    )

    # -- time ----------------------------------------------------------------------------------

    def calendars(self, doc: s.CalendarsDoc, info: Document) -> None:
        for name, cal in doc.calendars.items():
            where = info.locator.where(["calendars", name])
            try:
                if cal.hours == "24x7":
                    if cal.holidays.country or cal.holidays.years:
                        raise ValueError("a 24x7 calendar has no public holidays: list closed dates instead")
                    built = BusinessCalendar.always(name=name, tz=cal.tz, holidays=cal.holidays.dates)
                else:
                    hours: dict[int | str, str] = {}
                    for days, intervals in cal.hours.items():
                        for day in _expand_days(days):
                            if day in hours:
                                raise ValueError(f"{day} is given twice (check overlapping day ranges)")
                            hours[day] = ", ".join(intervals)
                    built = BusinessCalendar.build(
                        name=name,
                        tz=cal.tz,
                        hours=hours,
                        holidays=cal.holidays.dates,
                        country=cal.holidays.country,
                        subdiv=cal.holidays.subdivision,
                        years=cal.holidays.years or None,
                    )
            except (ConfigError, ValueError) as exc:
                self.problems.add(where, str(exc))
                self.broken.setdefault("calendar", set()).add(name)  # reported: not unknown elsewhere
                continue
            self.calendar_map[name] = built
        for team in self.team_map.values():
            if team.calendar and self.unknown("calendar", team.calendar):
                where = (
                    self.teams_info.locator.where(["teams", team.name, "calendar"])
                    if self.teams_info
                    else "teams.yaml:1:1"
                )
                self.problems.add(where, f"unknown calendar {team.calendar!r}")

    def schedules(self, doc: s.SchedulesDoc, info: Document) -> None:
        for name, sched in doc.schedules.items():
            base = ["schedules", name]
            try:
                load_zone(sched.tz)
            except ConfigError as exc:
                self.problems.add(info.locator.where([*base, "tz"]), str(exc))
                self.broken.setdefault("schedule", set()).add(name)
                continue
            layers = []
            for i, layer in enumerate(sched.layers):
                for j, person in enumerate(layer.members):
                    if self.unknown("member", person):
                        self.problems.add(
                            info.locator.where([*base, "layers", i, "members", j]),
                            f"unknown member {person!r}",
                        )
                hh, mm = (int(x) for x in layer.handoff.split(":"))
                start = layer.start
                if isinstance(start, date) and not isinstance(start, datetime):
                    if hh > 23 or mm > 59:
                        self.problems.add(
                            info.locator.where([*base, "layers", i, "handoff"]),
                            f"hand-off time {layer.handoff!r} is not a time of day (00:00-23:59)",
                        )
                        continue
                    anchor = wall_clock_instant(start, time(hh, mm), load_zone(sched.tz))
                else:
                    anchor = _midnight(start, sched.tz)
                shift: timedelta | Literal["daily", "weekly"]
                if layer.rotation in ("daily", "weekly"):
                    shift = cast(Literal["daily", "weekly"], layer.rotation)
                else:
                    shift = timedelta(seconds=s.parse_duration_text(layer.rotation))
                try:
                    layers.append(
                        Rotation(
                            name=layer.name, members=layer.members, start=anchor, shift=shift, tz=sched.tz
                        )
                    )
                except (ConfigError, ValueError) as exc:
                    self.problems.add(info.locator.where([*base, "layers", i]), str(exc))
            overrides = []
            for i, o in enumerate(sched.overrides):
                if self.unknown("member", o.person):
                    self.problems.add(
                        info.locator.where([*base, "overrides", i, "person"]), f"unknown member {o.person!r}"
                    )
                try:
                    overrides.append(
                        Override(o.person, _midnight(o.start, sched.tz), _midnight(o.end, sched.tz))
                    )
                except (ConfigError, ValueError) as exc:
                    self.problems.add(info.locator.where([*base, "overrides", i]), str(exc))
            try:
                built = Schedule(name=name, layers=tuple(layers), overrides=tuple(overrides))
            except ConfigError as exc:
                self.problems.add(info.locator.where(base), str(exc))
                self.broken.setdefault("schedule", set()).add(name)
                continue
            for overlap in overlapping_overrides(built):
                self.problems.add(
                    info.locator.where([*base, "overrides"]), f"overlapping overrides: {overlap}"
                )
            self.schedule_map[name] = built
        ooo = []
        for i, entry in enumerate(doc.out_of_office):
            at = info.path("out_of_office", i)
            if entry.person not in self.member_map:
                if self.unknown("member", entry.person):
                    self.problems.add(info.locator.where([*at, "person"]), f"unknown member {entry.person!r}")
                continue
            tz = self.member_map[entry.person].tz
            end = entry.end
            if isinstance(end, date) and not isinstance(end, datetime):
                end = end + timedelta(days=1)  # a listed end date is the last day away
            try:
                ooo.append(OutOfOffice(entry.person, _midnight(entry.start, tz), _midnight(end, tz)))
            except (ConfigError, ValueError) as exc:
                self.problems.add(info.locator.where(at), str(exc))
        self.ooo = tuple(ooo)

    # -- rules ---------------------------------------------------------------------------------

    def expression(self, source: str, info: Document, path: Sequence[str | int]) -> CompiledExpression:
        """Compile one expression; a problem is located inside it, relative to where it was written."""
        try:
            return compile_expression(source, where=info.name)
        except ExpressionError as exc:
            self.problems.add(info.locator.where_in(path, source, exc.line, exc.col), exc.message)
            return compile_expression("False")

    def notify(
        self, specs: Sequence[s.NotifySpec], info: Document, path: list[str | int]
    ) -> tuple[Notify, ...]:
        out = []
        for i, spec in enumerate(specs):
            here = [*path, i]
            if self.unknown("template", spec.template):
                self.problems.add(
                    info.locator.where([*here, "template"]), f"unknown template {spec.template!r}"
                )
            expr = None
            to = spec.to.strip()
            if to.startswith("{{") and to.endswith("}}"):
                expr = self.expression(to[2:-2].strip(), info, [*here, "to"])
            elif to not in SPECIAL_RECIPIENTS and self.unknown("role", to) and self.unknown("member", to):
                self.problems.add(
                    info.locator.where([*here, "to"]),
                    f"unknown recipient {to!r}: a role, a member, one of {sorted(SPECIAL_RECIPIENTS)},"
                    " or {{ expression }}",
                )
            if spec.connector:
                self.check_connector(spec.connector, info, [*here, "connector"])
            if spec.connector and to not in _NOT_MEMBERS:
                self.member_connectors.setdefault(spec.connector, info.locator.where([*here, "connector"]))
            out.append(
                Notify(
                    to=to,
                    template=spec.template,
                    connector=spec.connector or self.baton.notify_connector,
                    to_expression=expr,
                )
            )
        return tuple(out)

    def actions(
        self, specs: Sequence[s.ActionSpec], info: Document, path: list[str | int]
    ) -> tuple[Action, ...]:
        for i, spec in enumerate(specs):
            self.check_connector(spec.connector, info, [*path, i, "connector"])
        return tuple(Action(a.name, a.connector, a.kind, dict(a.params)) for a in specs)

    def check_connector(self, name: str, info: Document, path: list[str | int]) -> None:
        known = known_connectors()
        if name not in known:
            self.problems.add(
                info.locator.where(path), f"unknown connector {name!r}; the connectors are {', '.join(known)}"
            )

    def check_role(self, role: str | None, info: Document, path: list[str | int]) -> None:
        if role and self.unknown("role", role):
            self.problems.add(info.locator.where(path), f"unknown role {role!r}")

    def check_tier(self, tier: str | None, info: Document, path: list[str | int]) -> None:
        if tier and self.unknown("tier", tier):
            self.problems.add(
                info.locator.where(path), f"unknown tier {tier!r}; tiers are {list(self.baton.tiers)}"
            )

    def reach(
        self,
        order: FirstMatch,
        name: str,
        when: CompiledExpression,
        info: Document,
        base: list[str | int],
        *,
        written: str,
        enabled: bool = True,
        final: bool = True,
    ) -> None:
        """Report an entry of a first-match list that can never be reached or never matches."""
        # A condition that did not compile was reported and replaced by "False".
        found = order.visit(name, written, compiled=when.source == written, enabled=enabled, final=final)
        if found is not None:
            at, message = found
            self.problems.add(info.locator.where(base if at == "entry" else [*base, "when"]), message)

    def sla(self, doc: s.SlaDoc, info: Document) -> tuple[SlaPolicy, ...]:
        out = []
        seen: set[str] = set()
        order = FirstMatch("SLA policy")
        for i, p in enumerate(doc.sla):
            base = info.path("sla", i)
            if not p.enabled:
                continue
            if p.name in seen:
                self.problems.add(
                    info.locator.where([*base, "name"]), f"duplicate SLA policy name {p.name!r}"
                )
            seen.add(p.name)
            cal_name = p.calendar or self.baton.default_calendar or "24x7"
            calendar = self.calendar_map.get(cal_name)
            if calendar is None:
                if self.unknown("calendar", cal_name):
                    self.problems.add(
                        info.locator.where([*base, "calendar"]), f"unknown calendar {cal_name!r}"
                    )
                calendar = self.calendar_map["24x7"]
            thresholds = []
            for j, t in enumerate(p.thresholds):
                self.sla_triggers.update(f"sla.{clock}.{t.at}" for clock in p.targets)
                if t.escalate and t.escalate != "tier_up" and self.unknown("escalation", t.escalate):
                    self.problems.add(
                        info.locator.where([*base, "thresholds", j, "escalate"]),
                        f"unknown escalation {t.escalate!r}",
                    )
                thresholds.append(
                    Threshold(
                        t.at,
                        self.notify(t.notify, info, [*base, "thresholds", j, "notify"]),
                        t.escalate,
                        shadow=t.shadow,
                        canary=t.canary,
                    )
                )
            updates = tuple(
                UpdateCadence(
                    every=timedelta(seconds=s.parse_duration_text(u.every)),
                    when=self.expression(u.when, info, [*base, "updates", j, "when"]),
                    notify=self.notify([u.notify], info, [*base, "updates", j, "notify"])[0],
                )
                for j, u in enumerate(p.updates)
            )
            out.append(
                SlaPolicy(
                    name=p.name,
                    when=self.expression(p.when, info, [*base, "when"]),
                    calendar=calendar,
                    targets={k: _per_priority(v) for k, v in p.targets.items()},
                    pause_when=self.expression(p.pause_when, info, [*base, "pause_when"])
                    if p.pause_when
                    else None,
                    on_handoff=p.on_handoff,
                    thresholds=tuple(thresholds),
                    updates=updates,
                )
            )
            self.reach(order, p.name, out[-1].when, info, base, written=p.when)
        return tuple(out)

    def routing(self, doc: s.RoutingDoc, info: Document) -> tuple[Route, ...]:
        out = []
        seen: set[str] = set()
        order = FirstMatch("rule")
        for i, r in enumerate(doc.routing):
            base = info.path("routing", i)
            if r.name in seen:
                self.problems.add(info.locator.where([*base, "name"]), f"duplicate rule name {r.name!r}")
            seen.add(r.name)
            self.check_role(r.set.owner, info, [*base, "set", "owner"])
            self.check_tier(r.set.tier, info, [*base, "set", "tier"])
            if r.set.team and self.unknown("team", r.set.team):
                self.problems.add(info.locator.where([*base, "set", "team"]), f"unknown team {r.set.team!r}")
            out.append(
                Route(
                    name=r.name,
                    when=self.expression(r.when, info, [*base, "when"]),
                    queue=r.set.queue,
                    team=r.set.team,
                    tier=r.set.tier,
                    owner=r.set.owner,
                    priority=r.set.priority,
                    tags=r.set.tags,
                    notify=self.notify(r.notify, info, [*base, "notify"]),
                    actions=self.actions(r.actions, info, [*base, "actions"]),
                    continue_=r.continue_,
                    enabled=r.enabled,
                    shadow=r.shadow,
                    canary=r.canary,
                )
            )
            # A rule in shadow or a canary does not always place the ticket: the walk may go on.
            when, final = out[-1].when, not (r.continue_ or r.shadow or r.canary < 1)
            self.reach(order, r.name, when, info, base, written=r.when, enabled=r.enabled, final=final)
        if order.catch_all is None and not self.broken.get("routing"):  # a broken rule may be the catch-all
            self.problems.add(
                info.locator.where(["routing"]),
                "no catch-all rule: add a last rule with no `when` so every ticket has a home",
            )
        return tuple(out)

    def silent_sla_trigger(self, trigger: str) -> str | None:
        """Why an escalation trigger ``sla.<clock>.<at>`` can never fire, if it cannot: no enabled
        SLA policy has a target for that clock and a threshold at that percentage."""
        if not trigger.startswith("sla.") or trigger in self.sla_triggers:
            return None
        if "sla" in self.unchecked or self.broken.get("sla"):
            return None  # a policy left out for its shape may declare it; that is reported already
        _, clock, at = trigger.split(".")
        declared = sorted(self.sla_triggers, key=lambda t: (t.split(".")[1], int(t.split(".")[2])))
        return (
            f"trigger {trigger!r} never fires: no SLA policy has a {clock} target with a threshold "
            f"at {at}%; the thresholds are {', '.join(declared) or 'none'}"
        )

    def escalations(self, doc: s.EscalationsDoc, info: Document) -> tuple[Escalation, ...]:
        out = []
        seen: set[str] = set()
        for i, e in enumerate(doc.escalations):
            base = info.path("escalations", i)
            if e.name in seen:
                self.problems.add(
                    info.locator.where([*base, "name"]), f"duplicate escalation name {e.name!r}"
                )
            seen.add(e.name)
            self.check_role(e.to, info, [*base, "to"])
            self.check_tier(e.tier, info, [*base, "tier"])
            if e.split and e.mode == "assist":
                self.problems.add(
                    info.locator.where([*base, "split"]),
                    "`split` needs `mode: handoff`: with assist the owner keeps the ticket and the customer",
                )
            for j, trigger in enumerate(e.on):
                if not _known_trigger(trigger):
                    self.problems.add(info.locator.where([*base, "on", j]), f"unknown trigger {trigger!r}")
                elif silent := self.silent_sla_trigger(trigger):
                    self.problems.add(info.locator.where([*base, "on", j]), silent)
            out.append(
                Escalation(
                    name=e.name,
                    description=e.description,
                    when=self.expression(e.when, info, [*base, "when"]),
                    # A time-in-stage rule listens to its own timer, and to `on` only when given.
                    on=frozenset(e.on if e.stuck is None or "on" in e.model_fields_set else ())
                    | ({f"stuck.{e.name}"} if e.stuck else set()),
                    kind=e.kind,
                    mode=e.mode,
                    split=e.split,
                    to=e.to,
                    tier=e.tier,
                    priority=e.priority,
                    requires=e.requires,
                    notify=self.notify(e.notify, info, [*base, "notify"]),
                    actions=self.actions(e.actions, info, [*base, "actions"]),
                    approval=e.approval,
                    once=e.once,
                    enabled=e.enabled,
                    shadow=e.shadow,
                    canary=e.canary,
                    author=e.author or self.baton.author,
                    stuck=self.stage_timer(e.stuck, info, [*base, "stuck"]) if e.stuck else None,
                )
            )
        return tuple(out)

    def stage_timer(self, doc: s.StuckDoc, info: Document, path: list[str | int]) -> StageTimer:
        calendar = None
        if doc.calendar is not None:
            calendar = self.calendar_map.get(doc.calendar)
            if calendar is None and self.unknown("calendar", doc.calendar):
                self.problems.add(
                    info.locator.where([*path, "calendar"]), f"unknown calendar {doc.calendar!r}"
                )
            if doc.time == "calendar":
                self.problems.add(
                    info.locator.where([*path, "calendar"]),
                    "a calendar is only used with `time: business`",
                )
        default = self.calendar_map.get(self.baton.default_calendar or "24x7", self.calendar_map["24x7"])
        return StageTimer(
            stage=doc.stage,
            after=timedelta(seconds=s.parse_duration_text(doc.for_)),
            business=doc.time == "business",
            calendar=calendar,
            fallback=default,
        )


_EVENT_TYPES = frozenset(t.value for t in EventType if t not in (EventType.TIMER_FIRED, EventType.OVERRIDE))


def _known_trigger(trigger: str) -> bool:
    if trigger in _EVENT_TYPES:
        return True
    parts = trigger.split(".")
    return (
        len(parts) == 3
        and parts[0] == "sla"
        and parts[1] in ("first_response", "next_response", "resolution")
        and parts[2].isdigit()
    )


def _per_priority(target: str | Mapping[Any, str]) -> dict[str, timedelta]:
    if isinstance(target, str):
        return dict.fromkeys(
            ("low", "normal", "high", "urgent"), timedelta(seconds=s.parse_duration_text(target))
        )
    return {priority: timedelta(seconds=s.parse_duration_text(text)) for priority, text in target.items()}


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _expand_days(text: str) -> list[str]:
    """``"mon-fri"`` -> the five weekdays; ``"sat"`` -> itself."""
    text = text.strip().lower()
    if "-" in text:
        first, last = (p.strip() for p in text.split("-", 1))
        if first not in _DAYS or last not in _DAYS:
            raise ValueError(f"unknown day range {text!r}")
        a, b = _DAYS.index(first), _DAYS.index(last)
        if b < a:
            raise ValueError(f"day range {text!r} runs backwards")
        return list(_DAYS[a : b + 1])
    if text not in _DAYS:
        raise ValueError(f"unknown day {text!r} (use mon..sun or a range like mon-fri)")
    return [text]
