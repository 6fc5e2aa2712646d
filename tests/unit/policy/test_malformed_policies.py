"""Malformed policies: every mistake is a ``PolicyError`` whose problem points at ``file:line:col``.

Each case copies the small fixture policy (``tests/fixtures/policy``), makes one change to it and
names where the problem must be reported and a fragment of what must be said. Line and column
are 1-based, as editors count them; for a mistake inside an expression the column points at the
offending part of the expression itself, not at its key.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from baton.errors import PolicyError
from baton.policy.compiler import compile_policy, known_connectors

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "policy"

Edit = Callable[[Path], None]


def replace(name: str, old: str, new: str) -> Edit:
    """Replace the first ``old`` in ``name`` (which must contain it) by ``new``."""

    def edit(folder: Path) -> None:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} is not in {name}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return edit


def append(name: str, text: str) -> Edit:
    def edit(folder: Path) -> None:
        path = folder / name
        path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")

    return edit


def write(name: str, text: str) -> Edit:
    """Write (or add) a file with this text."""

    def edit(folder: Path) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    return edit


def write_bytes(name: str, raw: bytes) -> Edit:
    def edit(folder: Path) -> None:
        (folder / name).write_bytes(raw)

    return edit


def remove(name: str) -> Edit:
    def edit(folder: Path) -> None:
        (folder / name).unlink()

    return edit


def routing_with(rule: str) -> Edit:
    """routing.yaml with ``rule`` first (its ``name`` on line 2, ``when`` on line 3), then the default."""
    return write("routing.yaml", "routing:\n" + rule + DEFAULT_RULE)


DEFAULT_RULE = "  - name: default\n    set: {queue: general, tier: L1, owner: l1}\n"
SCHEDULE = """\
schedules:
  support-week:
    tz: Europe/Berlin
    layers:
      - {name: main, members: [dee, ed], start: 2026-01-05}
"""
ESCALATION = """\
escalations:
  - name: to-l2
    when: ticket.priority == "urgent"
    kind: hierarchical
    mode: handoff
    to: l2
"""
# Nine levels of nine aliases: 9**9 values once expanded.
ALIAS_BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@dataclass(frozen=True)
class Case:
    id: str
    edit: Edit
    where: str  # file:line:col, relative to the policy folder
    message: str  # a fragment of the problem's text


CASES = [
    # -- reading YAML ----------------------------------------------------------------------------
    Case(
        "invalid YAML syntax",
        write("routing.yaml", "routing:\n  - name: default\n    set: {queue: general, tier: L1]\n"),
        "routing.yaml:3:35",
        "invalid YAML: expected ',' or '}', but got ']'",
    ),
    Case(
        "a tab for indentation",
        write("routing.yaml", "routing:\n\t- name: default\n"),
        "routing.yaml:2:1",
        "'\\t'",
    ),
    Case(
        "bytes that are not UTF-8",
        write_bytes("baton.yaml", b"name: caf\xe9\ntiers: {L1: l1}\n"),
        "baton.yaml:1:1",
        "not UTF-8",
    ),
    Case(
        "a list at the top instead of a mapping",
        write("routing.yaml", "- name: default\n  set: {queue: general}\n"),
        "routing.yaml:1:1",
        "valid dictionary",
    ),
    Case(
        "a duplicate key",
        replace("teams.yaml", "      ed: {}\n", "      ed: {}\n      al: {}\n"),
        "teams.yaml:11:7",
        "duplicate key 'al'",
    ),
    Case(
        "a merge key",
        replace("teams.yaml", "dee: {}", "dee: {<<: {capacity: 3}}"),
        "teams.yaml:9:13",
        "merge keys (<<) are not supported",
    ),
    Case(
        "an impossible date",
        write("schedules.yaml", SCHEDULE.replace("2026-01-05", "2026-02-30")),
        "schedules.yaml:5:49",
        "invalid value",
    ),
    Case(
        "a file over 1 MB",
        append("routing.yaml", "# " + "x" * 1_000_001 + "\n"),
        "routing.yaml:1:1",
        "larger than 1000000 bytes",
    ),
    Case(
        # The limit is hit inside the anchored list, while the aliases expand it.
        "a YAML alias bomb",
        write("calendars.yaml", ALIAS_BOMB),
        "calendars.yaml:1:64",
        "more than 200000 values",
    ),
    Case(
        "nesting deeper than 40 levels",
        write("calendars.yaml", "calendars: " + "[" * 60 + "]" * 60 + "\n"),
        "calendars.yaml:1:52",
        "nested deeper than 40 levels",
    ),
    Case(
        # Deeper than Python's recursion limit lets PyYAML's composer go.
        "nesting 5000 levels deep",
        write("calendars.yaml", "calendars: " + "[" * 5_000 + "]" * 5_000 + "\n"),
        "calendars.yaml:1:52",
        "nested deeper than 40 levels",
    ),
    # -- shape -----------------------------------------------------------------------------------
    Case(
        "an unknown top-level field",
        append("baton.yaml", "colour: blue\n"),
        "baton.yaml:7:1",
        "unknown field 'colour'",
    ),
    Case(
        "an unknown field at depth 2",
        append("baton.yaml", "safety:\n  shdow: true\n"),
        "baton.yaml:8:3",
        "unknown field 'shdow'",
    ),
    Case(
        "an unknown field at depth 4",
        replace("teams.yaml", "al: {capacity: 5}", "al: {capacty: 5}"),
        "teams.yaml:6:12",
        "unknown field 'capacty'",
    ),
    Case(
        "an unknown field inside a list item",
        replace("routing.yaml", "owner: l1}", "owner: l1, ownr: l2}"),
        "routing.yaml:3:48",
        "unknown field 'ownr'",
    ),
    Case(
        "an unknown field in an SLA threshold",
        replace("sla.yaml", "{at: 100, escalate: tier_up}", "{at: 100, escalate: tier_up, notfy: []}"),
        "sla.yaml:10:38",
        "unknown field 'notfy'",
    ),
    Case(
        "text where a number goes",
        replace("teams.yaml", "al: {capacity: 5}", "al: {capacity: lots}"),
        "teams.yaml:6:12",
        "valid integer",
    ),
    Case(
        "text where a boolean goes",
        append("routing.yaml", "    enabled: maybe\n"),
        "routing.yaml:5:5",
        "valid boolean",
    ),
    Case(
        "text where a list goes", append("baton.yaml", "connectors: slack\n"), "baton.yaml:7:1", "valid tuple"
    ),
    Case(
        "a list where a mapping goes",
        replace("baton.yaml", "tiers: {L1: l1, L2: l2, L3: l3}", "tiers: [L1, L2, L3]"),
        "baton.yaml:4:1",
        "valid dictionary",
    ),
    Case("a missing required file", remove("routing.yaml"), "routing.yaml:1:1", "missing file"),
    Case(
        "a missing required field",
        replace("baton.yaml", "tiers: {L1: l1, L2: l2, L3: l3}\n", ""),
        "baton.yaml:2:1",
        "missing field 'tiers'",
    ),
    Case(
        "a missing required field in a list item",
        write("escalation.yaml", ESCALATION.replace('    when: ticket.priority == "urgent"\n', "")),
        "escalation.yaml:2:5",
        "missing field 'when'",
    ),
    Case(
        "a rule name with a space",
        replace("routing.yaml", "name: default", "name: my default"),
        "routing.yaml:2:5",
        "'my default' is not a valid name",
    ),
    Case(
        "a member id with a slash",
        replace("teams.yaml", "      flo: {}", "      flo/x: {}"),
        "teams.yaml:11:7",
        "'flo/x' is not a valid name",
    ),
    Case(
        "a duration in words",
        replace("sla.yaml", "urgent: 30m", "urgent: 30 minutes"),
        "sla.yaml:4:24",
        "'30 minutes' is not valid here",
    ),
    Case(
        "an update cadence with no duration",
        append(
            "sla.yaml", "    updates:\n      - every: soon\n        notify: {to: owner, template: warn}\n"
        ),
        "sla.yaml:12:9",
        "'soon' is not valid here",
    ),
    Case(
        "a rate limit that is not a rate",
        append("baton.yaml", "safety:\n  rate_limits: {page: lots}\n"),
        "baton.yaml:8:3",
        "not a rate: 'lots'",
    ),
    Case(
        "a rate limit over a zero-length window",
        append("baton.yaml", "safety:\n  rate_limits: {page: 20/0h}\n"),
        "baton.yaml:8:3",
        "'20/0h'",
    ),
    Case(
        "a rate limit keyed by more than connector.kind",
        append("baton.yaml", "safety:\n  rate_limits: {slack.notify.urgent: 5/m}\n"),
        "baton.yaml:8:3",
        "key it by kind, connector or connector.kind",
    ),
    Case(
        "thresholds out of order",
        replace("sla.yaml", "{at: 50,", "{at: 90,"),
        "sla.yaml:7:5",
        "thresholds must be listed once each, in increasing order",
    ),
    Case(
        "per-priority targets missing a priority",
        replace("sla.yaml", "{urgent: 30m, high: 2h,", "{high: 2h,"),
        "sla.yaml:3:5",
        "first_response: give a target for every priority (missing ['urgent'])",
    ),
    Case(
        "a role with both a schedule and members",
        replace(
            "teams.yaml",
            "l3: {team: support, members: [flo]}",
            "l3: {team: support, schedule: s, members: [flo]}",
        ),
        "teams.yaml:15:3",
        "a role takes either a schedule or members",
    ),
    Case(
        "an escalation of an unknown kind",
        write("escalation.yaml", ESCALATION.replace("kind: hierarchical", "kind: sideways")),
        "escalation.yaml:4:5",
        "'functional' or 'hierarchical'",
    ),
    # -- references ------------------------------------------------------------------------------
    Case(
        "an unknown role",
        replace("routing.yaml", "owner: l1", "owner: nobody"),
        "routing.yaml:3:37",
        "unknown role 'nobody'",
    ),
    Case(
        "an unknown approvers role",
        replace("baton.yaml", "approvers: leads", "approvers: bosses"),
        "baton.yaml:5:1",
        "unknown role 'bosses'",
    ),
    Case(
        "an unknown team",
        replace("teams.yaml", "l3: {team: support", "l3: {team: ghosts"),
        "teams.yaml:15:8",
        "unknown team 'ghosts'",
    ),
    Case(
        "an unknown tier",
        replace("routing.yaml", "tier: L1", "tier: L9"),
        "routing.yaml:3:27",
        "unknown tier 'L9'",
    ),
    Case(
        "an unknown member",
        replace("teams.yaml", "members: [al, bo, cy]", "members: [al, bo, zed]"),
        "teams.yaml:13:41",
        "unknown member 'zed'",
    ),
    Case(
        "an unknown calendar in an SLA policy",
        replace("sla.yaml", "  - name: all\n", "  - name: all\n    calendar: nine-to-five\n"),
        "sla.yaml:3:5",
        "unknown calendar 'nine-to-five'",
    ),
    Case(
        "an unknown calendar in a team",
        replace("teams.yaml", "    manager: mia\n", "    manager: mia\n    calendar: nine-to-five\n"),
        "teams.yaml:4:5",
        "unknown calendar 'nine-to-five'",
    ),
    Case(
        "an unknown schedule",
        replace("teams.yaml", "l3: {team: support, members: [flo]}", "l3: {team: support, schedule: ghost}"),
        "teams.yaml:15:23",
        "unknown schedule 'ghost'",
    ),
    Case(
        "an unknown template",
        replace("routing.yaml", "template: assigned", "template: nope"),
        "routing.yaml:4:26",
        "unknown template 'nope'",
    ),
    Case(
        "an unknown escalation",
        replace("sla.yaml", "escalate: tier_up", "escalate: ghost"),
        "sla.yaml:10:19",
        "unknown escalation 'ghost'",
    ),
    Case(
        "an unknown recipient",
        replace("routing.yaml", "to: owner", "to: nobody"),
        "routing.yaml:4:15",
        "unknown recipient 'nobody'",
    ),
    Case(
        "an unknown trigger",
        write("escalation.yaml", ESCALATION + "    on: [ticket.exploded]\n"),
        "escalation.yaml:7:10",
        "unknown trigger 'ticket.exploded'",
    ),
    Case(
        "an SLA trigger on a threshold no SLA policy declares",
        write("escalation.yaml", ESCALATION + "    on: [ticket.created, sla.first_response.90]\n"),
        "escalation.yaml:7:26",
        "trigger 'sla.first_response.90' never fires: no SLA policy has a first_response target with a "
        "threshold at 90%; the thresholds are sla.first_response.50, sla.first_response.80",
    ),
    Case(
        "an SLA trigger on a clock no SLA policy has a target for",
        write("escalation.yaml", ESCALATION + "    on: [sla.next_response.80]\n"),
        "escalation.yaml:7:10",
        "trigger 'sla.next_response.80' never fires",
    ),
    Case(
        "an unknown member out of office",
        write("schedules.yaml", "out_of_office:\n  - {person: zed, start: 2026-03-01, end: 2026-03-05}\n"),
        "schedules.yaml:2:6",
        "unknown member 'zed'",
    ),
    Case(
        "a member in two teams",
        replace("teams.yaml", "roles:\n", "  other:\n    members:\n      al: {}\nroles:\n"),
        "teams.yaml:14:7",
        "member 'al' is already in team 'support'",
    ),
    Case(
        "a member lacking an identity a configured connector needs",
        append("baton.yaml", "connectors: [email]\n"),
        "teams.yaml:6:7",
        "member 'al' has no email identity, which connector 'email' needs",
    ),
    Case(
        "a member a notification reaches through a connector they have no identity in",
        replace(
            "routing.yaml",
            "{to: owner, template: assigned}",
            "{to: owner, template: assigned, connector: slack}",
        ),
        "teams.yaml:6:7",
        "member 'al' has no slack identity, which connector 'slack' needs (notifications reach members",
    ),
    Case(
        "a member lacking the identity the hubspot connector needs",
        append("baton.yaml", "connectors: [hubspot]\n"),
        "teams.yaml:5:7",
        "member 'mia' has no hubspot identity, which connector 'hubspot' needs",
    ),
    Case(
        "an unknown connector in use",
        append("baton.yaml", "connectors: [log, slak]\n"),
        "baton.yaml:7:19",
        "unknown connector 'slak'; the connectors are email, fake, hubspot, jira, linear, log,",
    ),
    Case(
        "an unknown notify connector",
        replace("baton.yaml", "notify_connector: log", "notify_connector: teams"),
        "baton.yaml:6:1",
        "unknown connector 'teams'",
    ),
    Case(
        "an unknown sync connector",
        append("baton.yaml", "sync:\n  jira: {connector: tracker, fields: [priority]}\n"),
        "baton.yaml:8:10",
        "unknown connector 'tracker'",
    ),
    Case(
        "a sync to a system with no connector of that name",
        append("baton.yaml", "sync:\n  servicenow: {fields: [status]}\n"),
        "baton.yaml:8:3",
        "unknown connector 'servicenow'",
    ),
    Case(
        "an unknown connector in a notification",
        replace("routing.yaml", "template: assigned}", "template: assigned, connector: sms}"),
        "routing.yaml:4:46",
        "unknown connector 'sms'",
    ),
    Case(
        "an unknown connector in an action",
        append("routing.yaml", "    actions: [{name: page, connector: pagerduti, kind: page}]\n"),
        "routing.yaml:5:28",
        "unknown connector 'pagerduti'",
    ),
    # -- expressions: the column points into the expression ---------------------------------------
    Case(
        "an expression syntax error",
        routing_with('  - name: vip\n    when: ticket.priority == = "high"\n    set: {queue: vip}\n'),
        "routing.yaml:3:30",
        "invalid syntax",
    ),
    Case(
        "a dunder attribute in an expression",
        routing_with("  - name: vip\n    when: ticket.__class__ == 1\n    set: {queue: vip}\n"),
        "routing.yaml:3:18",
        "attribute '__class__' is not allowed",
    ),
    Case(
        "an unknown function in an expression",
        routing_with(
            '  - name: vip\n    when: ticket.priority == "high" and open("x")\n    set: {queue: vip}\n'
        ),
        "routing.yaml:3:41",
        "function 'open' is not allowed",
    ),
    Case(
        "a mistake in a quoted expression",
        routing_with("  - name: vip\n    when: '\"vip\" in ticket.__dict__'\n    set: {queue: vip}\n"),
        "routing.yaml:3:28",
        "attribute '__dict__' is not allowed",
    ),
    Case(
        "a mistake on the second line of a folded expression",
        routing_with(
            '  - name: vip\n    when: >-\n      ticket.priority == "high"\n      and ticket.__dict__\n'
            "    set: {queue: vip}\n"
        ),
        "routing.yaml:5:18",
        "attribute '__dict__' is not allowed",
    ),
    Case(
        "a mistake in a recipient expression",
        replace("routing.yaml", "to: owner", "to: '{{ account.__dict__ }}'"),
        "routing.yaml:4:31",
        "attribute '__dict__' is not allowed",
    ),
    Case(
        "a pattern that could backtrack without end",
        routing_with("  - name: vip\n    when: matches(ticket.subject, '(a+)+$')\n    set: {queue: vip}\n"),
        "routing.yaml:3:35",
        "could backtrack too much",
    ),
    # -- rules -----------------------------------------------------------------------------------
    Case(
        "a routing rule after the catch-all",
        append(
            "routing.yaml", "  - name: after\n    when: ticket.priority == 'high'\n    set: {queue: late}\n"
        ),
        "routing.yaml:5:5",
        "unreachable: rule 'default' above matches every ticket",
    ),
    Case(
        "a routing rule after one whose when is always true",
        routing_with("  - name: everything\n    when: 1 == 1\n    set: {queue: vip}\n"),
        "routing.yaml:5:5",
        "unreachable: rule 'everything' above matches every ticket",
    ),
    Case(
        "a routing rule after one whose when starts with 'True or'",
        routing_with(
            "  - name: everything\n    when: True or ticket.priority == 'high'\n    set: {queue: vip}\n"
        ),
        "routing.yaml:5:5",
        "unreachable: rule 'everything' above matches every ticket",
    ),
    Case(
        "a routing rule whose when is always false",
        routing_with(
            "  - name: never\n    when: ticket.priority == 'high' and 1 > 2\n    set: {queue: vip}\n"
        ),
        "routing.yaml:3:5",
        "rule 'never' never matches: its `when` is always false",
    ),
    Case(
        "a routing rule with the same when as one above",
        routing_with(
            "  - name: vip\n    when: ticket.priority == 'high'\n    set: {queue: vip}\n"
            "  - name: vip-again\n    when: (ticket.priority=='high')\n    set: {queue: vip2}\n"
        ),
        "routing.yaml:6:5",
        "unreachable: rule 'vip-again' has the same `when` as rule 'vip' above, which matches first",
    ),
    Case(
        "an SLA policy after one whose when is always true",
        replace(
            "sla.yaml",
            "  - name: all\n",
            "  - name: first\n    when: not False\n    targets: {resolution: 8h}\n  - name: all\n",
        ),
        "sla.yaml:5:5",
        "unreachable: SLA policy 'first' above matches every ticket",
    ),
    Case(
        "an SLA policy whose when is always false",
        replace(
            "sla.yaml",
            "  - name: all\n",
            "  - name: none\n    when: account.plan == 'x' and None\n    targets: {resolution: 8h}\n"
            "  - name: all\n",
        ),
        "sla.yaml:3:5",
        "SLA policy 'none' never matches",
    ),
    Case(
        "an SLA policy with the same when as one above",
        replace(
            "sla.yaml",
            "  - name: all\n",
            "  - name: gold\n    when: account.plan == 'gold'\n    targets: {resolution: 8h}\n"
            "  - name: gold2\n    when: account.plan  ==  'gold'\n    targets: {resolution: 4h}\n"
            "  - name: all\n",
        ),
        "sla.yaml:6:5",
        "unreachable: SLA policy 'gold2' has the same `when` as SLA policy 'gold' above",
    ),
    Case(
        "no catch-all routing rule",
        replace(
            "routing.yaml", "  - name: default\n", "  - name: default\n    when: ticket.priority == 'high'\n"
        ),
        "routing.yaml:1:1",
        "no catch-all rule",
    ),
    Case(
        "two routing rules with one name",
        routing_with("  - name: default\n    when: ticket.priority == 'high'\n    set: {queue: hot}\n"),
        "routing.yaml:5:5",
        "duplicate rule name 'default'",
    ),
    Case(
        "two escalations with one name",
        write("escalation.yaml", ESCALATION + ESCALATION.removeprefix("escalations:\n")),
        "escalation.yaml:7:5",
        "duplicate escalation name 'to-l2'",
    ),
    # -- time ------------------------------------------------------------------------------------
    Case(
        "overlapping schedule overrides",
        write(
            "schedules.yaml",
            SCHEDULE
            + "    overrides:\n"
            + "      - {person: flo, start: 2026-03-02T09:00:00+01:00, end: 2026-03-03T09:00:00+01:00}\n"
            + "      - {person: mia, start: 2026-03-02T18:00:00+01:00, end: 2026-03-04T09:00:00+01:00}\n",
        ),
        "schedules.yaml:6:5",
        "overlapping overrides",
    ),
    Case(
        "an unknown time zone for a member",
        replace("teams.yaml", "dee: {}", "dee: {tz: Mars/Olympus}"),
        "teams.yaml:9:13",
        "unknown time zone 'Mars/Olympus'",
    ),
    Case(
        "an unknown time zone for a calendar",
        write(
            "calendars.yaml",
            "calendars:\n  office:\n    tz: Europe/Atlantis\n    hours: {mon-fri: ['09:00-17:00']}\n",
        ),
        "calendars.yaml:2:3",
        "unknown time zone 'Europe/Atlantis'",
    ),
    Case(
        "an unknown time zone for a schedule",
        write("schedules.yaml", SCHEDULE.replace("Europe/Berlin", "Nowhere/Land")),
        "schedules.yaml:3:5",
        "unknown time zone 'Nowhere/Land'",
    ),
    Case(
        "a hand-off time that is not a time of day",
        write(
            "schedules.yaml", SCHEDULE.replace("start: 2026-01-05}", "start: 2026-01-05, handoff: '25:99'}")
        ),
        "schedules.yaml:5:61",
        "'25:99'",
    ),
    Case(
        "a calendar with no open hours",
        write(
            "calendars.yaml", "calendars:\n  office:\n    tz: Europe/Berlin\n    hours: {mon-fri: [closed]}\n"
        ),
        "calendars.yaml:2:3",
        "calendar 'office' has no open hours in the week",
    ),
    Case(
        "a calendar day range that runs backwards",
        write("calendars.yaml", "calendars:\n  office:\n    hours: {fri-mon: ['09:00-17:00']}\n"),
        "calendars.yaml:2:3",
        "day range 'fri-mon' runs backwards",
    ),
    # -- templates -------------------------------------------------------------------------------
    Case(
        "a template with an unknown filter",
        write("templates/broken.j2", "{{ ticket.subject | shout }}\n"),
        "templates/broken.j2:1:1",
        "No filter named 'shout'",
    ),
    Case(
        "a template that does not parse on its second line",
        write("templates/broken.j2", "Subject: {{ ticket.id }}\n{{ ticket.subject }\n"),
        "templates/broken.j2:2:1",
        "unexpected '}'",
    ),
    Case(
        "a template that is not UTF-8",
        write_bytes("templates/assigned.j2", b"Subject: caf\xe9\n"),
        "templates/assigned.j2:1:1",
        "template is not UTF-8",
    ),
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "policy"
    shutil.copytree(FIXTURE, target)
    return target


def problems_after(folder: Path, *edits: Edit) -> list[str]:
    """The problems ``compile_policy`` reports once ``edits`` are made; any other exception fails."""
    for edit in edits:
        edit(folder)
    with pytest.raises(PolicyError) as info:
        compile_policy(folder)
    return info.value.problems


def assert_reported(problems: list[str], folder: Path, where: str, message: str) -> None:
    prefix = f"{folder / where}: "
    found = [p for p in problems if p.startswith(prefix) and message in p]
    shown = "\n".join(p.replace(f"{folder}/", "") for p in problems)
    assert found, f"no problem at {where} saying {message!r}; reported:\n{shown}"


def test_the_fixture_itself_compiles() -> None:
    assert compile_policy(FIXTURE).name == "test-policy"


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 35
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_malformed_policy_is_reported_where_the_mistake_is(folder: Path, case: Case) -> None:
    problems = problems_after(folder, case.edit)
    assert_reported(problems, folder, case.where, case.message)
    assert not [p for p in problems if "Value error," in p], "pydantic's prefix is not ours to print"


@pytest.mark.parametrize(
    "case",
    [
        Case("unknown field", replace("routing.yaml", "owner: l1}", "owner: l1, ownr: l2}"), "", ""),
        Case("duration in words", replace("sla.yaml", "urgent: 30m", "urgent: 30 minutes"), "", ""),
        Case("threshold order", replace("sla.yaml", "{at: 50,", "{at: 90,"), "", ""),
    ],
    ids=lambda case: case.id,
)
def test_one_mistake_is_one_problem(folder: Path, case: Case) -> None:
    # A rule with a mistake in it is still a rule: the list holding it is not "empty", and a
    # mapping given where a mapping is allowed is not "not a valid string".
    problems = problems_after(folder, case.edit)
    assert len(problems) == 1, "\n".join(p.replace(f"{folder}/", "") for p in problems)


def test_problems_in_several_files_are_all_reported_at_once(folder: Path) -> None:
    problems = problems_after(
        folder,
        replace("routing.yaml", "owner: l1", "owner: nobody"),
        replace("teams.yaml", "l3: {team: support", "l3: {team: ghosts"),
        replace("sla.yaml", "  - name: all\n", "  - name: all\n    calendar: nine-to-five\n"),
        replace("baton.yaml", "approvers: leads", "approvers: bosses"),
    )
    expected = [
        ("routing.yaml:3:37", "unknown role 'nobody'"),
        ("teams.yaml:15:8", "unknown team 'ghosts'"),
        ("sla.yaml:3:5", "unknown calendar 'nine-to-five'"),
        ("baton.yaml:5:1", "unknown role 'bosses'"),
    ]
    for where, message in expected:
        assert_reported(problems, folder, where, message)
    assert len(problems) == len(expected)


def test_a_broken_template_does_not_hide_the_other_problems(folder: Path) -> None:
    # A template parses on its own; nothing else depends on it parsing, so checking the rest
    # need not wait for it (a rule naming it is not "unknown": the template exists).
    problems = problems_after(
        folder,
        replace("templates/warn.j2", "{{ rule }}", "{{ rule }"),
        replace("routing.yaml", "owner: l1", "owner: nobody"),
    )
    assert_reported(problems, folder, "templates/warn.j2:1:1", "template 'warn'")
    assert_reported(problems, folder, "routing.yaml:3:37", "unknown role 'nobody'")
    assert not [p for p in problems if "unknown template" in p]


def test_shape_problems_in_several_files_are_all_reported_at_once(folder: Path) -> None:
    problems = problems_after(
        folder,
        append("baton.yaml", "colour: blue\n"),
        replace("teams.yaml", "al: {capacity: 5}", "al: {capacty: 5}"),
        replace("routing.yaml", "name: default", "name: my default"),
    )
    assert_reported(problems, folder, "baton.yaml:7:1", "unknown field 'colour'")
    assert_reported(problems, folder, "teams.yaml:6:12", "unknown field 'capacty'")
    assert_reported(problems, folder, "routing.yaml:2:5", "'my default' is not a valid name")


def test_unreadable_files_are_all_reported_at_once(folder: Path) -> None:
    problems = problems_after(
        folder,
        write("routing.yaml", "routing:\n\t- name: default\n"),
        write_bytes("sla.yaml", b"sla: \xff\n"),
        remove("teams.yaml"),
    )
    assert_reported(problems, folder, "routing.yaml:2:1", "'\\t'")
    assert_reported(problems, folder, "sla.yaml:1:1", "not UTF-8")
    assert_reported(problems, folder, "teams.yaml:1:1", "missing file")


def test_a_shape_problem_does_not_hide_the_reference_problems_beside_it(folder: Path) -> None:
    # The broken rule is left out; the good rule after it in the same file, and the other files,
    # are still checked against what the policy defines.
    problems = problems_after(
        folder,
        replace(
            "routing.yaml",
            "routing:\n",
            "routing:\n  - name: odd\n    set: {queue: q, colour: red}\n"
            "  - name: next\n    when: ticket.tier == 'L2'\n    set: {queue: q, owner: nobody}\n",
        ),
        replace("teams.yaml", "l3: {team: support", "l3: {team: ghosts"),
    )
    assert_reported(problems, folder, "routing.yaml:3:21", "unknown field 'colour'")
    assert_reported(problems, folder, "routing.yaml:6:21", "unknown role 'nobody'")
    assert_reported(problems, folder, "teams.yaml:15:8", "unknown team 'ghosts'")
    assert len(problems) == 3, problems


def test_a_part_left_out_for_its_shape_is_not_reported_again_where_it_is_named(folder: Path) -> None:
    # The role l1 has a shape mistake; the routing rule naming it must not add "unknown role 'l1'".
    problems = problems_after(
        folder, replace("teams.yaml", "l1: {team: support,", "l1: {team: support, size: 3,")
    )
    assert_reported(problems, folder, "teams.yaml:13:23", "unknown field 'size'")
    assert not [p for p in problems if "unknown role" in p], problems
    assert len(problems) == 1, problems


def test_a_file_that_cannot_be_read_leaves_the_names_it_defines_unchecked(folder: Path) -> None:
    problems = problems_after(
        folder,
        write("teams.yaml", "teams: [\n"),
        replace("sla.yaml", "  - name: all\n", "  - name: all\n    calendar: nine-to-five\n"),
    )
    assert_reported(problems, folder, "teams.yaml:2:1", "invalid YAML")
    assert_reported(problems, folder, "sla.yaml:3:5", "unknown calendar 'nine-to-five'")
    assert not [p for p in problems if "unknown role" in p or "unknown member" in p], problems


def test_rules_that_do_not_stop_the_walk_shadow_nothing(folder: Path) -> None:
    # A `continue` rule that always matches, a rule repeating its `when`, a disabled catch-all and
    # an SLA policy that repeats a disabled one's `when`: all reachable, nothing to report.
    replace(
        "routing.yaml",
        "routing:\n",
        "routing:\n  - name: tag-all\n    when: 'True'\n    continue: true\n    set: {tags: [seen]}\n"
        "  - name: tag-vip\n    when: ticket.vip\n    continue: true\n    set: {tags: [vip]}\n"
        "  - name: vip\n    when: ticket.vip\n    set: {queue: vip}\n"
        "  - name: nothing\n    enabled: false\n    set: {queue: closed}\n",
    )(folder)
    replace(
        "sla.yaml",
        "  - name: all\n",
        "  - name: gold-old\n    enabled: false\n    when: account.plan == 'gold'\n"
        "    targets: {resolution: 8h}\n"
        "  - name: gold\n    when: account.plan == 'gold'\n    targets: {resolution: 4h}\n  - name: all\n",
    )(folder)
    assert [route.name for route in compile_policy(folder).routing][:3] == ["tag-all", "tag-vip", "vip"]


def test_an_expression_that_does_not_compile_is_not_also_called_never_matching(folder: Path) -> None:
    problems = problems_after(
        folder, routing_with("  - name: vip\n    when: ticket.__class__ == 1\n    set: {queue: vip}\n")
    )
    assert len(problems) == 1, problems


def test_an_sla_trigger_on_a_declared_threshold_is_accepted(folder: Path) -> None:
    write("escalation.yaml", ESCALATION + "    on: [sla.resolution.80, sla.first_response.100]\n")(folder)
    assert compile_policy(folder).escalations[0].on == {"sla.resolution.80", "sla.first_response.100"}


def test_an_sla_trigger_is_not_judged_when_an_sla_policy_was_left_out_for_its_shape(folder: Path) -> None:
    # The policy left out might have declared the threshold: only its own mistake is reported.
    problems = problems_after(
        folder,
        write("escalation.yaml", ESCALATION + "    on: [sla.first_response.90]\n"),
        replace("sla.yaml", "{at: 50,", "{at: 50, colour: red,"),
    )
    assert len(problems) == 1 and "unknown field 'colour'" in problems[0], problems


@pytest.mark.parametrize(
    "connector", ["slack", "email", "pagerduty", "jira", "zendesk", "linear", "salesforce", "hubspot"]
)
def test_every_connector_that_addresses_people_needs_their_identity(folder: Path, connector: str) -> None:
    problems = problems_after(folder, append("baton.yaml", f"connectors: [{connector}]\n"))
    assert_reported(problems, folder, "teams.yaml:6:7", f"member 'al' has no {connector} identity")


def test_connectors_that_address_nobody_need_no_identity(folder: Path) -> None:
    append("baton.yaml", "connectors: [log, webhook, fake]\n")(folder)
    assert compile_policy(folder).connectors == ("log", "webhook", "fake")


def test_the_known_connectors_are_the_installed_ones() -> None:
    assert set(known_connectors()) == {ep.name for ep in entry_points(group="baton.connectors")}
    assert {
        "log",
        "slack",
        "email",
        "pagerduty",
        "jira",
        "zendesk",
        "linear",
        "salesforce",
        "hubspot",
    } <= set(known_connectors())


def test_a_notification_to_the_customer_needs_no_member_identity(folder: Path) -> None:
    # The customer's address is the ticket's requester, not a member's identity.
    replace(
        "routing.yaml",
        "{to: owner, template: assigned}",
        "{to: owner, template: assigned}, {to: customer, template: assigned, connector: email}",
    )(folder)
    assert compile_policy(folder).name == "test-policy"
