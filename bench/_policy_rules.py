"""The 200-rule policy ``bench/policy.py`` generates, with each condition also written as native Python.

Not a public module; ``policy.py`` next to it imports it as ``_policy_rules``. The native side's
helpers use the same algorithms as the compiled ones (``baton.policy.expr``), minus the type
checks, so the comparison measures the evaluator and not a choice of algorithm.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from baton.policy.expr import MAX_MATCH_TEXT_CHARS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = ROOT / "examples" / "policy"
ROUTING_RULES = 200
GENERATED_ESCALATIONS = 50

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
            # The category keeps two rules with the same code apart: a rule repeating another's
            # condition could never match, and `policy check` says so.
            return Condition(
                f'matches(ticket.subject, {literal(pattern)}) and ticket.priority != "low"'
                f' and ticket.category == "{category}"',
                f'matches((t := env["ticket"])["subject"], R{i}) and t["priority"] != "low"'
                f' and t["category"] == "{category}"',
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
        '"billing" in ticket.tags and account.mrr >= 5000 and 0 <= days_until(account.renewal_date) <= 90',
        '"billing" in env["ticket"]["tags"] and (mrr := (a := env["account"]).get("mrr")) is not None'
        " and mrr >= 5000"
        ' and (d := days_until(a.get("renewal_date"), env["now"])) is not None and 0 <= d <= 90',
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
