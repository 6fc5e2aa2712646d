"""How fast policies run: compiled conditions against native Python, and whole decisions with 200 rules.

    python bench/policy.py             # the full run (about a minute)
    python bench/policy.py --quick     # fewer repeats and decisions (about 20 s)
    python bench/policy.py --profile   # also cProfile the worst-case decision and show where time goes

Run from the repository root with ``src`` on the path. The machines are shared and noisy, so
every figure has a baseline measured in the same run, and the ratios are what to compare.

1. **Evaluator against native.** A few representative conditions are compiled with
   ``baton.policy.expr`` and evaluated with ``evaluate_bool(env)`` on the environment ``decide``
   builds (``baton.engine.env.environment`` of a real Ticket, Event and Context). The baseline is a
   hand-written lambda over the same dict, doing the same lookups and calling plain Python helpers
   that use the same algorithms as the compiled ones (``contains_any`` folds the text and tests
   each needle, ``has_any_word`` tests substrings before its regex, ``matches`` caps the text),
   with their needles and patterns prepared in advance as the compiler prepares them: the fastest
   honest Python. The data is chosen so that no clause is skipped by a short circuit. Rates are
   the best of several interleaved repeats (``timeit``); the overall ratio is the geometric mean.
   Target: at least 30% of native.

2. **Decisions with 200 routing rules.** The example policy is copied to a temporary folder and
   its ``routing.yaml`` replaced by 200 generated rules (8 kinds of realistic conditions over
   ticket and account fields; only the last is a catch-all), and 50 generated escalation rules are
   added to its four. It is compiled once; then ``decide`` is timed, one call at a time, for
   ticket creations that match an early rule, a middle rule and only the catch-all (the worst
   case: all 200 conditions run), and for a customer reply on an existing ticket. The floor is
   every condition that decision evaluates (routing walk, SLA choice, pause test, escalations
   listening to the event), written as native lambdas and run in a loop over the same
   environment; the compiled conditions run the same way show how much of a decision is
   evaluation. Scenarios take turns in rounds, so a busy spell slows them all alike.
   Target: median under 0.2 ms for the worst-case creation.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import platform
import pstats
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from baton.engine.decide import decide
from baton.engine.env import environment
from baton.model import Account, Context, Decision, Event, Priority, Stage, Ticket
from baton.policy.compiler import compile_policy
from baton.policy.expr import MAX_MATCH_TEXT_CHARS, CompiledExpression, compile_expression
from baton.policy.model import Policy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = ROOT / "examples" / "policy"
NOW = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # a Tuesday, inside Berlin business hours
ROUTING_RULES = 200
GENERATED_ESCALATIONS = 50
EVALUATOR_TARGET = 0.30
DECISION_TARGET_MS = 0.2

Env = dict[str, object]
Native = Callable[[Env], object]


# --- the native side's helpers: the compiled helpers' algorithms, minus the type checks ----------


def contains(text: str | None, needle: str) -> bool:
    return text is not None and needle in text.casefold()


def contains_any(text: str | None, needles: Sequence[str]) -> bool:
    if text is None:
        return False
    folded = text.casefold()
    for needle in needles:  # noqa: SIM110 -- the loop is what the compiled helper runs, and faster than any()
        if needle in folded:
            return True
    return False


def has_any_word(text: str | None, needles: Sequence[str], pattern: re.Pattern[str]) -> bool:
    return contains_any(text, needles) and pattern.search(text.casefold()) is not None  # type: ignore[union-attr]


def word_pattern(needles: Sequence[str]) -> re.Pattern[str]:
    return re.compile("(?<!\\w)(?:" + "|".join(map(re.escape, needles)) + ")(?!\\w)")


def matches(text: str | None, regex: re.Pattern[str]) -> bool:
    return text is not None and regex.search(text[:MAX_MATCH_TEXT_CHARS]) is not None


def days_until(value: date | None, now: datetime) -> int | None:
    return None if value is None else (value - now.date()).days


def hours_since(value: datetime | None, now: datetime) -> float | None:
    return None if value is None else (now - value) / timedelta(hours=1)


def coalesce(*values: object) -> object:
    return next((v for v in values if v is not None), None)


NATIVE_GLOBALS: dict[str, object] = {
    "contains": contains,
    "contains_any": contains_any,
    "has_any_word": has_any_word,
    "matches": matches,
    "days_until": days_until,
    "hours_since": hours_since,
    "coalesce": coalesce,
}


def native(source: str, constants: dict[str, object] | None = None) -> Native:
    """A native condition from the source of a lambda body over ``env``; ``constants`` (prepared
    needles and patterns) become its globals, as the compiler keeps them in the function's."""
    function: Native = eval(f"lambda env: {source}", {**NATIVE_GLOBALS, **(constants or {})})  # noqa: S307 -- our own source
    return function


@dataclass(frozen=True)
class Condition:
    """One condition in both forms: policy source and native lambda body."""

    source: str
    native: str
    constants: tuple[tuple[str, object], ...] = ()

    def native_function(self) -> Native:
        return native(self.native, dict(self.constants))


# --- data: what the environment is built from ----------------------------------------------------


def created_event(n: int, **fields: object) -> Event:
    return Event.model_validate(
        {
            "source": "zendesk",
            "event_id": str(n),
            "type": "ticket.created",
            "occurred_at": NOW.isoformat(),
            "external": {"system": "zendesk", "id": str(n)},
            "fields": fields,
        }
    )


def reply_event(n: int, ticket: Ticket, body: str, at: datetime) -> Event:
    return Event.model_validate(
        {
            "source": "zendesk",
            "event_id": f"{n}-reply",
            "type": "customer.replied",
            "occurred_at": at.isoformat(),
            "ticket_id": ticket.id,
            "fields": {"body": body},
            "actor": {"kind": "customer", "email": "sam@northwind.example"},
        }
    )


def opened_ticket(event: Event, policy_version: str | None = None) -> Ticket:
    """The ticket as ``decide`` opens it from a creation event, before routing changes it."""
    f = event.fields
    return Ticket(
        id=f"T-{event.event_id}",
        created_at=event.occurred_at,
        updated_at=event.occurred_at,
        external_links=(event.external,) if event.external else (),
        account_id=f.account_id,
        channel=f.channel,
        requester=f.requester,
        subject=f.subject or "",
        body=f.body or "",
        category=f.category,
        severity=f.severity,
        priority=f.priority or Priority.NORMAL,
        tags=tuple(sorted(set(f.tags or ()))),
        stage=Stage.OPEN,
        stage_since=event.occurred_at,
        policy_version=policy_version,
    )


ENTERPRISE = Account(
    id="acme", name="Acme Corp", plan="enterprise", mrr=20_000, renewal_date=date(2026, 4, 15),
    health="yellow", csm="kim@acme.example", ae="lou@acme.example", flags=("strategic",),
)  # fmt: skip
BUSINESS = Account(
    id="northwind", name="Northwind Traders", plan="business", mrr=2_400, renewal_date=date(2026, 9, 30),
    health="green", csm="kim@acme.example", ae="raj@acme.example", flags=("beta",),
)  # fmt: skip


# --- part 1: evaluator against native -------------------------------------------------------------

KEYWORDS = ("outage", "data loss", "breach")
SEV = re.compile(r"(?i)\bsev ?[12]\b")
EVALUATOR_CASES: list[tuple[str, Condition]] = [
    (
        "three clauses",
        Condition(
            'ticket.priority == "urgent" and account.mrr > 1000'
            ' and contains_any(ticket.text, ["outage", "down"])',
            '(t := env["ticket"])["priority"] == "urgent" and (mrr := env["account"].get("mrr")) is not None'
            ' and mrr > 1000 and contains_any(t["text"], ("outage", "down"))',
        ),
    ),
    (
        "renewal window",
        Condition(
            "account.mrr * 12 >= 50000 and days_until(account.renewal_date) <= 60",
            '(mrr := (a := env["account"]).get("mrr")) is not None and mrr * 12 >= 50000'
            ' and (d := days_until(a.get("renewal_date"), env["now"])) is not None and d <= 60',
        ),
    ),
    (
        "keywords, regex",
        Condition(
            'has_any_word(ticket.text, ["outage", "data loss", "breach"])'
            ' or matches(ticket.subject, "(?i)\\\\bsev ?[12]\\\\b")',
            'has_any_word((t := env["ticket"])["text"], KEYWORDS, KEYWORDS_RE) or matches(t["subject"], SEV)',
            (("KEYWORDS", KEYWORDS), ("KEYWORDS_RE", word_pattern(KEYWORDS)), ("SEV", SEV)),
        ),
    ),
    (
        "tags membership",
        Condition(
            '"vip" in ticket.tags and "legal" not in ticket.tags and ticket.channel in ["email", "web"]',
            '"vip" in (t := env["ticket"])["tags"] and "legal" not in t["tags"]'
            ' and t["channel"] in ("email", "web")',
        ),
    ),
]


def evaluator_env() -> Env:
    event = created_event(
        1, subject="SEV1: checkout is down for all EU customers", channel="email", account_id="acme",
        body="Since 09:00 UTC every payment fails with a 502. Customers cannot pay.", priority="urgent",
        tags=["checkout", "eu", "vip"],
    )  # fmt: skip
    return environment(opened_ticket(event), event, Context(account=ENTERPRISE), NOW)


def rates(timers: Sequence[timeit.Timer], *, repeats: int, target_s: float) -> list[float]:
    """Runs per second of each timer: the best of ``repeats`` runs of about ``target_s`` each.

    The timers take turns within each repeat, so a busy spell slows them alike.
    """
    numbers = []
    for timer in timers:
        count, took = timer.autorange()
        numbers.append(max(1, round(count * target_s / took)))
    best = [math.inf] * len(timers)
    for _ in range(repeats):
        for index, (timer, number) in enumerate(zip(timers, numbers, strict=True)):
            best[index] = min(best[index], timer.timeit(number) / number)
    return [1 / seconds for seconds in best]


def evaluator_part(*, repeats: int, target_s: float) -> float:
    env = evaluator_env()
    no_account = {**env, "account": {}}
    print("1. Evaluator against native lambdas (evaluations/s, best of repeats; same env dict)")
    headers = ("condition", "evaluate_bool/s", "evaluate_bool_safe/s", "native/s", "ratio")
    rows: list[tuple[object, ...]] = []
    ratios = []
    for label, condition in EVALUATOR_CASES:
        compiled = compile_expression(condition.source)
        function = condition.native_function()
        for check in (env, no_account):
            if compiled.evaluate_bool(check) is not bool(function(check)):
                raise SystemExit(f"{label}: compiled and native conditions disagree")
        # Statements, not lambdas, so that timing adds no call of its own to either side.
        ours, safe, theirs = rates(
            [
                timeit.Timer("f(env)", globals={"f": compiled.evaluate_bool, "env": env}),
                timeit.Timer("f(env)", globals={"f": compiled.evaluate_bool_safe, "env": env}),
                timeit.Timer("f(env)", globals={"f": function, "env": env}),
            ],
            repeats=repeats,
            target_s=target_s,
        )
        ratios.append(ours / theirs)
        rows.append((label, ours, safe, theirs, f"{ours / theirs:.0%}"))
    overall = math.prod(ratios) ** (1 / len(ratios))
    rows.append(("geometric mean", "", "", "", f"{overall:.0%}"))
    print_table(headers, rows)
    print()
    return overall


# --- part 2: a policy with 200 routing rules ------------------------------------------------------

AREAS = (
    "api",
    "billing",
    "sso",
    "mobile",
    "reports",
    "webhooks",
    "search",
    "storage",
    "admin",
    "integrations",
)
TOPICS = (
    "limits", "errors", "setup", "permissions", "latency", "migration", "quota", "refunds", "invoices",
    "keys", "tokens", "sync", "alerts", "retention", "audit", "seats", "sandbox", "versions", "limits-eu",
    "outages",
)  # fmt: skip
WORDS = (
    "saml", "okta", "scim", "webhook", "timeout", "latency", "refund", "chargeback", "invoice", "gdpr",
    "pentest", "vulnerability", "mfa", "password reset", "locked out", "api key", "rate limit", "429", "502",
    "504", "certificate", "dns", "cors", "sdk", "android", "iphone", "crash", "freeze", "duplicate",
    "migration", "sandbox", "quota", "storage full", "backup", "restore", "audit log", "ldap", "permission",
    "seat", "license", "upgrade", "downgrade", "cancel", "renewal", "discount", "vat", "receipt",
    "payment failed", "card declined", "unsubscribe", "spam", "phishing", "leak", "slow", "broken",
)  # fmt: skip
CODES = ("err", "inv", "ord", "case", "ref", "po", "sub", "acct", "txn", "job")
CHANNELS = ("chat", "phone", "web", "slack")
PLANS = ("enterprise", "business", "starter")
OWNERS = (("L1", "l1-agent", "support"), ("L2", "l2-engineer", "platform"), ("L1", "billing-sme", "finance"))


def routing_condition(i: int, rng: random.Random) -> Condition:
    """Rule ``i``'s condition: one of eight kinds, in turn; categories are unique per rule."""
    category = f"{AREAS[i % len(AREAS)]}.{TOPICS[i // len(AREAS) % len(TOPICS)]}"
    plan = rng.choice(PLANS)
    match i % 8:
        case 0:
            words = rng.sample(WORDS, 4)
            return Condition(
                f'contains_any(ticket.text, {literal(words)}) and ticket.priority in ["high", "urgent"]',
                f'contains_any((t := env["ticket"])["text"], W{i}) and t["priority"] in ("high", "urgent")',
                ((f"W{i}", tuple(words)),),
            )
        case 1:
            tag, channel = f"{AREAS[i % len(AREAS)]}-{rng.choice(TOPICS)}", rng.choice(CHANNELS)
            return Condition(
                f'"{tag}" in ticket.tags and ticket.channel == "{channel}"',
                f'"{tag}" in (t := env["ticket"])["tags"] and t["channel"] == "{channel}"',
            )
        case 2:
            return Condition(
                f'ticket.category == "{category}" and account.plan in ["enterprise", "business"]',
                f'env["ticket"]["category"] == "{category}"'
                ' and env["account"].get("plan") in ("enterprise", "business")',
            )
        case 3:
            words = rng.sample(WORDS, 3)
            return Condition(
                f'has_any_word(ticket.text, {literal(words)}) and account.health in ["red", "yellow"]',
                f'has_any_word(env["ticket"]["text"], W{i}, P{i})'
                ' and env["account"].get("health") in ("red", "yellow")',
                ((f"W{i}", tuple(words)), (f"P{i}", word_pattern(words))),
            )
        case 4:
            code = rng.choice(CODES)
            pattern = f"(?i)\\b{code}[- ]?\\d{{3,6}}\\b"
            return Condition(
                f'matches(ticket.subject, {literal(pattern)}) and ticket.priority != "low"',
                f'matches((t := env["ticket"])["subject"], R{i}) and t["priority"] != "low"',
                ((f"R{i}", re.compile(pattern)),),
            )
        case 5:
            mrr = rng.choice((500, 1_000, 2_000, 5_000, 10_000))
            return Condition(
                f'account.mrr >= {mrr} and ticket.category == "{category}"',
                f'(mrr := env["account"].get("mrr")) is not None and mrr >= {mrr}'
                f' and env["ticket"]["category"] == "{category}"',
            )
        case 6:
            days = rng.choice((30, 60, 90))
            return Condition(
                f'days_until(account.renewal_date) <= {days} and account.plan == "{plan}"'
                f' and ticket.category == "{category}"',
                f'(d := days_until((a := env["account"]).get("renewal_date"), env["now"])) is not None'
                f' and d <= {days} and a.get("plan") == "{plan}"'
                f' and env["ticket"]["category"] == "{category}"',
            )
        case _:
            severity = rng.choice(("sev1", "sev2", "sev3"))
            tag = f"{AREAS[i % len(AREAS)]}-{rng.choice(TOPICS)}"
            return Condition(
                f'coalesce(ticket.severity, "sev4") == "{severity}" and "{tag}" in ticket.tags',
                f'coalesce((t := env["ticket"])["severity"], "sev4") == "{severity}"'
                f' and "{tag}" in t["tags"]',
            )


def escalation_condition(i: int, rng: random.Random) -> Condition:
    match i % 5:
        case 0:
            replies, plan = rng.choice((3, 4, 5)), rng.choice(PLANS)
            return Condition(
                f'ticket.customer_replies >= {replies} and account.plan == "{plan}"'
                ' and ticket.stage != "pending"',
                f'(t := env["ticket"])["customer_replies"] >= {replies}'
                f' and env["account"].get("plan") == "{plan}"'
                ' and t["stage"] != "pending"',
            )
        case 1:
            words, mrr = rng.sample(WORDS, 3), rng.choice((1_000, 5_000, 10_000))
            return Condition(
                f"contains_any(event.body or ticket.text, {literal(words)}) and account.mrr >= {mrr}",
                f'contains_any(env["event"]["body"] or env["ticket"]["text"], W{i})'
                f' and (mrr := env["account"].get("mrr")) is not None and mrr >= {mrr}',
                ((f"W{i}", tuple(words)),),
            )
        case 2:
            tag, hours = f"{AREAS[i % len(AREAS)]}-{rng.choice(TOPICS)}", rng.choice((4, 8, 24))
            return Condition(
                f'"{tag}" in ticket.tags and hours_since(ticket.created_at) >= {hours}',
                f'"{tag}" in (t := env["ticket"])["tags"]'
                ' and (h := hours_since(t["created_at"], env["now"])) is not None'
                f" and h >= {hours}",
            )
        case 3:
            return Condition(
                'ticket.escalation_count == 0 and ticket.priority == "urgent" and account.health == "red"',
                '(t := env["ticket"])["escalation_count"] == 0 and t["priority"] == "urgent"'
                ' and env["account"].get("health") == "red"',
            )
        case _:
            days, words = rng.choice((30, 60)), rng.sample(WORDS, 2)
            return Condition(
                f"days_until(account.renewal_date) <= {days} and account.arr >= 100000"
                f" and has_any_word(ticket.text, {literal(words)})",
                f'(d := days_until((a := env["account"]).get("renewal_date"), env["now"])) is not None'
                f' and d <= {days} and (arr := a.get("arr")) is not None and arr >= 100000'
                f' and has_any_word(env["ticket"]["text"], W{i}, P{i})',
                ((f"W{i}", tuple(words)), (f"P{i}", word_pattern(words))),
            )


# The example policy's own conditions (SLA choice and pause, the four escalations), by hand.
EXAMPLE_CONDITIONS = [
    Condition('account.plan == "enterprise"', 'env["account"].get("plan") == "enterprise"'),
    Condition("True", "True"),
    Condition('ticket.stage == "pending"', 'env["ticket"]["stage"] == "pending"'),
    Condition(
        '"billing" in ticket.tags and account.mrr >= 5000 and days_until(account.renewal_date) <= 90',
        '"billing" in env["ticket"]["tags"] and (mrr := (a := env["account"]).get("mrr")) is not None'
        " and mrr >= 5000"
        ' and (d := days_until(a.get("renewal_date"), env["now"])) is not None and d <= 90',
    ),
    Condition('"legal" in ticket.tags', '"legal" in env["ticket"]["tags"]'),
    Condition(
        'account.plan == "enterprise" and "outage" not in ticket.tags'
        ' and contains_any(event.body or ticket.text, ["outage", "is down", "production down"])',
        'env["account"].get("plan") == "enterprise" and "outage" not in (t := env["ticket"])["tags"]'
        ' and contains_any(env["event"]["body"] or t["text"], ("outage", "is down", "production down"))',
    ),
    Condition(
        'ticket.customer_replies >= 3 and ticket.stage != "pending"',
        '(t := env["ticket"])["customer_replies"] >= 3 and t["stage"] != "pending"',
    ),
]


def literal(value: object) -> str:
    """A string or list of strings as a policy-language literal (JSON's spelling is valid there)."""
    return json.dumps(value)


def yaml_string(text: str) -> str:
    """A single-quoted YAML scalar: nothing in it is special but the quote itself."""
    return "'" + text.replace("'", "''") + "'"


def rule_name(i: int) -> str:
    return f"rule-{i:03d}-{AREAS[i % len(AREAS)]}"


def write_policy(folder: Path) -> list[Condition]:
    """The example policy with 200 generated routing rules and 50 more escalations; returns every
    generated condition."""
    shutil.copytree(EXAMPLE_POLICY, folder)
    rng = random.Random(20260303)
    conditions: list[Condition] = []
    lines = ["# Generated by bench/policy.py: 200 routing rules, the last a catch-all.", "routing:"]
    for i in range(ROUTING_RULES - 1):
        condition = routing_condition(i, rng)
        conditions.append(condition)
        tier, owner, team = OWNERS[i % len(OWNERS)]
        lines += [
            f"  - name: {rule_name(i)}",
            f"    when: {yaml_string(condition.source)}",
            f"    set: {{queue: {AREAS[i % len(AREAS)]}, team: {team}, tier: {tier}, owner: {owner},"
            f" tags: [{AREAS[i % len(AREAS)]}]}}",
        ]
        if i % 10 == 9:  # some rules tell someone; none of the benchmarked tickets lands on one
            lines.append("    notify: [{to: owner, template: handoff-brief}]")
    lines += ["  - name: default", "    set: {queue: general, team: support, tier: L1, owner: l1-agent}", ""]
    (folder / "routing.yaml").write_text("\n".join(lines))
    extra = ["", "  # Generated by bench/policy.py"]
    for i in range(GENERATED_ESCALATIONS):
        condition = escalation_condition(i, rng)
        conditions.append(condition)
        on = "[customer.replied]" if i % 3 == 0 else "[ticket.created, customer.replied]"
        extra += [
            f"  - name: generated-{i:02d}",
            f"    when: {yaml_string(condition.source)}",
            f"    on: {on}",
            f"    kind: {'functional' if i % 2 else 'hierarchical'}",
            "    mode: assist",
            f"    to: {('l2-engineer', 'support-leads', 'billing-sme', 'l3-engineer')[i % 4]}",
        ]
    with (folder / "escalation.yaml").open("a") as out:
        out.write("\n".join(extra) + "\n")
    return conditions


@dataclass
class Scenario:
    label: str
    ticket: Ticket | None
    event: Event
    context: Context
    now: datetime
    expect_route: str | None
    env: Env
    walked: list[CompiledExpression]


def walked_conditions(
    policy: Policy, decision: Decision, trigger: str, *, created: bool
) -> list[CompiledExpression]:
    """Every condition this decision evaluated, in order, read back from its policy and record."""
    out: list[CompiledExpression] = []
    matched = {r.rule for r in decision.reasons if r.matched}
    if created:
        for route in policy.routing:
            out.append(route.when)
            if f"routing.{route.name}" in matched:
                break
        for sla in policy.sla:
            out.append(sla.when)
            if sla.name == decision.ticket.sla_policy:
                break
    sla_policy = next((p for p in policy.sla if p.name == decision.ticket.sla_policy), None)
    if sla_policy is not None and sla_policy.pause_when is not None:
        out.append(sla_policy.pause_when)
    out += [rule.when for rule in policy.escalations if trigger in rule.on and rule.enabled]
    return out


def scenarios(policy: Policy) -> list[Scenario]:
    neutral = {
        "subject": "Question about our February statement",
        "body": "Hi team, could you tell me where to find the usage totals for last month? Thanks, Sam",
        "channel": "email",
        "account_id": "northwind",
        "requester": "sam@northwind.example",
        "tags": ["eu"],
    }
    early, middle = (
        next(i for i in range(start, ROUTING_RULES) if i % 8 == 2) for start in (2, ROUTING_RULES // 2)
    )
    category = {
        i: f"{AREAS[i % len(AREAS)]}.{TOPICS[i // len(AREAS) % len(TOPICS)]}" for i in (early, middle)
    }
    business, enterprise = Context(account=BUSINESS), Context(account=ENTERPRISE)
    cases: list[tuple[str, Event, Context, str]] = [
        (
            f"create, matches rule {early + 1}",
            created_event(11, **neutral, category=category[early]),
            business,
            rule_name(early),
        ),
        (
            f"create, matches rule {middle + 1}",
            created_event(12, **neutral, category=category[middle]),
            business,
            rule_name(middle),
        ),
        ("create, catch-all (all 200)", created_event(13, **neutral), business, "default"),
        (
            "  same, enterprise (24x7 SLA)",
            created_event(14, **{**neutral, "account_id": "acme"}),
            enterprise,
            "default",
        ),
    ]
    out = []
    for label, event, context, route in cases:
        first = decide(None, event, context, policy, NOW)
        matched = [r.rule for r in first.reasons if r.matched and r.rule.startswith("routing.")]
        if matched != [f"routing.{route}"]:
            raise SystemExit(f"{label}: expected routing.{route}, the decision matched {matched}")
        env = environment(opened_ticket(event, policy.version), event, context, NOW)
        walked = walked_conditions(policy, first, event.type.value, created=True)
        out.append(Scenario(label, None, event, context, NOW, route, env, walked))
    # A customer reply, 30 minutes later, on the catch-all ticket: no routing, 40-odd escalations.
    base = out[2]
    ticket = decide(None, base.event, base.context, policy, NOW).ticket
    at = NOW + timedelta(minutes=30)
    reply = reply_event(13, ticket, "Any news? We need the totals for our board meeting on Friday.", at)
    first = decide(ticket, reply, base.context, policy, at)
    env = environment(first.ticket, reply, base.context, at)
    walked = walked_conditions(policy, first, reply.type.value, created=False)
    out.append(Scenario("reply on an existing ticket", ticket, reply, base.context, at, None, env, walked))
    for scenario in out:
        decision = decide(scenario.ticket, scenario.event, scenario.context, policy, scenario.now)
        fired = [r.rule for r in decision.reasons if r.matched and r.rule.startswith("escalation.")]
        if fired:
            raise SystemExit(f"{scenario.label}: escalations {fired} matched; the scenarios assume none does")
    return out


@dataclass
class Timings:
    decide: list[float]
    compiled: list[float]
    floor: list[float]


def time_calls(call: Callable[[], object], count: int, into: list[float]) -> None:
    clock = time.perf_counter_ns
    for _ in range(count):
        start = clock()
        call()
        into.append((clock() - start) / 1e6)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered)))) - 1]


def decision_part(*, decisions: int, rounds: int, profile: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="baton-bench-policy-") as scratch:
        folder = Path(scratch) / "policy"
        generated = write_policy(folder)
        started = time.perf_counter()
        policy = compile_policy(folder)
        compile_s = time.perf_counter() - started
    natives = {" ".join(c.source.split()): c.native_function() for c in (*generated, *EXAMPLE_CONDITIONS)}
    print(
        f"2. Decisions with {len(policy.routing)} routing rules and"
        f" {len(policy.escalations)} escalation rules"
        f" (compiled once in {compile_s:.2f} s); {decisions:,} decisions per scenario, in {rounds} rounds"
    )
    cases = scenarios(policy)
    plans: list[tuple[Callable[[], object], Callable[[], object], Callable[[], object]]] = []
    for s in cases:
        pairs = []
        for expr in s.walked:
            function = natives[" ".join(expr.source.split())]
            if expr.evaluate_bool(s.env) is not bool(function(s.env)):
                raise SystemExit(f"{s.label}: compiled and native disagree on {expr.source!r}")
            pairs.append((expr, function))
        compiled_list = [expr.evaluate_bool_safe for expr, _ in pairs]
        native_list = [function for _, function in pairs]

        def run_decide(s: Scenario = s) -> object:
            return decide(s.ticket, s.event, s.context, policy, s.now)

        def run_compiled(conditions: list[Any] = compiled_list, env: Env = s.env) -> None:
            for condition in conditions:
                condition(env)

        def run_native(conditions: list[Native] = native_list, env: Env = s.env) -> None:
            for condition in conditions:
                condition(env)

        plans.append((run_decide, run_compiled, run_native))
    timings = [Timings([], [], []) for _ in cases]
    for plan in plans:  # warm up every path once before measuring
        for call in plan:
            time_calls(call, 20, [])
    per_round = max(1, decisions // rounds)
    for _ in range(rounds):
        for plan, timing in zip(plans, timings, strict=True):
            time_calls(plan[0], per_round, timing.decide)
            time_calls(plan[1], per_round, timing.compiled)
            time_calls(plan[2], per_round, timing.floor)
    headers = (
        "scenario", "conditions", "decide p50 ms", "decide p99 ms", "compiled loop ms", "native floor ms",
        "decide/floor", "compiled/floor",
    )  # fmt: skip
    rows = []
    for s, t in zip(cases, timings, strict=True):
        median, compiled, floor = (
            statistics.median(t.decide),
            statistics.median(t.compiled),
            statistics.median(t.floor),
        )
        rows.append(
            (s.label, len(s.walked), f"{median:.3f}", f"{percentile(t.decide, 99):.3f}", f"{compiled:.4f}",
             f"{floor:.4f}", f"{median / floor:,.0f}x", f"{compiled / floor:.1f}x")
        )  # fmt: skip
    print_table(headers, rows)
    print(
        "   conditions: every condition the decision evaluates (routing walk, SLA choice, pause test,"
        " escalations"
        " listening to the event);\n   the loops run them over the routing environment, once per decision;"
        " medians of single timed calls."
    )
    print()
    if profile:
        profile_worst(policy, cases[2])
    return statistics.median(timings[2].decide)


def profile_worst(policy: Policy, s: Scenario) -> None:
    print(f"cProfile of decide, scenario {s.label.strip()!r}, 2,000 decisions (times inflated by profiling):")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(2_000):
        decide(s.ticket, s.event, s.context, policy, s.now)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)


# --- output -----------------------------------------------------------------------------------------


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(
        "   "
        + "  ".join(
            h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    )
    print("   " + "  ".join("-" * w for w in widths))
    for row in cells:
        print(
            "   "
            + "  ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}"
    return str(value)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and decisions")
    parser.add_argument("--profile", action="store_true", help="cProfile the worst-case decision")
    args = parser.parse_args(argv)
    repeats, target_s = (3, 0.05) if args.quick else (7, 0.15)
    decisions, rounds = (300, 3) if args.quick else (2_000, 10)
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}{' (--quick)' if args.quick else ''}"
    )
    print()
    started = time.perf_counter()
    ratio = evaluator_part(repeats=repeats, target_s=target_s)
    median_ms = decision_part(decisions=decisions, rounds=rounds, profile=args.profile)
    met = (
        "met" if ratio >= EVALUATOR_TARGET else "NOT met",
        "met" if median_ms < DECISION_TARGET_MS else "NOT met",
    )
    print(
        f"SUMMARY: evaluator/native {ratio:.0%} (target >= {EVALUATOR_TARGET:.0%}: {met[0]}); "
        f"median decision with {ROUTING_RULES} rules, worst case {median_ms:.3f} ms "
        f"(target < {DECISION_TARGET_MS} ms: {met[1]})  [{time.perf_counter() - started:.0f} s]"
    )


if __name__ == "__main__":
    main()
