"""How fast policies run: compiled conditions against native Python, and whole decisions with 200 rules.

    python bench/policy.py             # the full run (about a minute)
    python bench/policy.py --quick     # fewer repeats and decisions (about 20 s)
    python bench/policy.py --profile   # also cProfile the worst-case decision and show where time goes

Run from the repository root with ``src`` on the path. The machines are shared and noisy, so
every figure has a baseline measured in the same run, and the ratios are what to compare. Times
are the thread's CPU time (``CLOCK_THREAD_CPUTIME_ID``), which leaves out waiting for a core;
wall time is shown next to the decision medians.

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
import math
import os
import platform
import pstats
import re
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

from _policy_rules import (  # the script's own folder is on sys.path when run as a script
    AREAS,
    EXAMPLE_CONDITIONS,
    ROUTING_RULES,
    TOPICS,
    Condition,
    Env,
    Native,
    rule_name,
    word_pattern,
    write_policy,
)

from baton.engine.decide import decide
from baton.engine.env import environment
from baton.model import Account, Context, Decision, Event, Priority, Stage, Ticket
from baton.policy.compiler import compile_policy
from baton.policy.expr import CompiledExpression, compile_expression
from baton.policy.model import Policy

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # a Tuesday, inside Berlin business hours
EVALUATOR_TARGET = 0.30
DECISION_TARGET_MS = 0.2

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
                timeit.Timer(
                    "f(env)", timer=time.thread_time, globals={"f": compiled.evaluate_bool, "env": env}
                ),
                timeit.Timer(
                    "f(env)", timer=time.thread_time, globals={"f": compiled.evaluate_bool_safe, "env": env}
                ),
                timeit.Timer("f(env)", timer=time.thread_time, globals={"f": function, "env": env}),
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


# --- part 2: decisions with 200 routing rules ---------------------------------------------------


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
    decide_wall: list[float]
    compiled: list[float]
    floor: list[float]


def time_calls(
    call: Callable[[], object], count: int, cpu: list[float], wall: list[float] | None = None
) -> None:
    """Time ``count`` calls one by one: the thread's CPU time in ms (into ``cpu``), and wall time.

    CPU time leaves out the time this process waits for a core, which on a shared machine is most
    of the noise. Each sample includes one read of each clock; ``clock_overhead`` measures that.
    """
    cpu_clock, wall_clock = time.thread_time_ns, time.perf_counter_ns
    for _ in range(count):
        wall_start = wall_clock()
        start = cpu_clock()
        call()
        end = cpu_clock()
        wall_end = wall_clock()
        cpu.append((end - start) / 1e6)
        if wall is not None:
            wall.append((wall_end - wall_start) / 1e6)


def clock_overhead() -> float:
    """What ``time_calls`` reports for a call that does nothing, in ms: subtracted from every median."""
    samples: list[float] = []
    time_calls(lambda: None, 5_000, samples)
    return statistics.median(samples)


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
    timings = [Timings([], [], [], []) for _ in cases]
    for plan in plans:  # warm up every path once before measuring
        for call in plan:
            time_calls(call, 20, [])
    per_round = max(1, decisions // rounds)
    for _ in range(rounds):
        for plan, timing in zip(plans, timings, strict=True):
            time_calls(plan[0], per_round, timing.decide, timing.decide_wall)
            time_calls(plan[1], per_round, timing.compiled)
            time_calls(plan[2], per_round, timing.floor)
    headers = (
        "scenario", "conditions", "decide p50 ms", "p99 ms", "wall p50 ms", "compiled loop ms",
        "native floor ms", "decide/floor", "compiled/floor",
    )  # fmt: skip
    rows = []
    overhead = clock_overhead()
    medians: list[float] = []
    for s, t in zip(cases, timings, strict=True):
        median, p99, compiled, floor = (
            max(value - overhead, 1e-6)
            for value in (
                statistics.median(t.decide),
                percentile(t.decide, 99),
                statistics.median(t.compiled),
                statistics.median(t.floor),
            )
        )
        medians.append(median)
        rows.append(
            (s.label, len(s.walked), f"{median:.3f}", f"{p99:.3f}", f"{statistics.median(t.decide_wall):.3f}",
             f"{compiled:.4f}", f"{floor:.4f}", f"{median / floor:,.0f}x", f"{compiled / floor:.1f}x")
        )  # fmt: skip
    print_table(headers, rows)
    print(
        "   conditions: every condition the decision evaluates (routing walk, SLA choice, pause test,"
        " escalations"
        " listening to the event);\n   the loops run them over the routing environment, once per decision."
        f" Times are medians of single calls in thread CPU time, less the {overhead * 1e3:.1f} us"
        " it takes to read the clock;\n   wall p50 is elapsed time, which includes waiting for a core."
    )
    print()
    if profile:
        profile_worst(policy, cases[2])
    return medians[2]


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
