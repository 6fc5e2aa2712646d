"""How fast compiled policy conditions run, against hand-written Python doing the same work.

Each condition is compiled with ``baton.policy.expr`` and evaluated through the public API
(``evaluate_bool(env)``, which also reads the names out of the environment). The baseline is a
native lambda handed the values directly, the fastest way plain Python could be written. Both
see the same data, chosen so that every clause is evaluated (no short circuit). The figure is
the best of several repeats, as ``timeit`` recommends; the target is a ratio of at least 30%.

Run: ``python bench/policy_expr.py``
"""

from __future__ import annotations

import os
import platform
import timeit
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from baton.policy.expr import compile_expression

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TICKET = {
    "id": "T-1042",
    "priority": "urgent",
    "subject": "Checkout is down for all EU customers",
    "description": "Since 09:00 UTC every payment fails with a 502; sev1 declared by on-call.",
    "channel": "email",
}
ACCOUNT = {"id": "acme", "plan": "enterprise", "mrr": 12_500, "renewal_date": date(2025, 3, 20)}
ENV = {"ticket": TICKET, "account": ACCOUNT, "event": {}, "signals": {}, "now": NOW}

# The baselines: what a programmer would write by hand, with dict lookups and nothing else.
NativeCondition = Callable[[Any, Any, datetime], bool]
CASES: list[tuple[str, str, NativeCondition]] = [
    (
        "three clauses",
        'ticket.priority == "urgent" and account.mrr > 1000'
        ' and contains_any(ticket.subject, ["outage", "down"])',
        lambda ticket, account, now: (
            ticket.get("priority") == "urgent"
            and account.get("mrr", 0) > 1000
            and ("outage" in (subject := ticket.get("subject", "").casefold()) or "down" in subject)
        ),
    ),
    (
        "renewal window",
        "account.mrr * 12 >= 50000 and days_until(account.renewal_date) <= 30",
        lambda ticket, account, now: (
            account.get("mrr", 0) * 12 >= 50_000 and (account["renewal_date"] - now.date()).days <= 30
        ),
    ),
    (
        "keywords",
        'contains_any(ticket.subject, ["outage", "data loss", "breach"])'
        ' or contains(ticket.description, "sev1")',
        lambda ticket, account, now: (
            "outage" in (subject := ticket.get("subject", "").casefold())
            or "data loss" in subject
            or "breach" in subject
            or "sev1" in ticket.get("description", "").casefold()
        ),
    ),
]


def rates(*timers: timeit.Timer, repeats: int = 9) -> list[float]:
    """Runs per second of each timer: the best of ``repeats`` runs of about 0.2 s each.

    The timers take turns within each repeat, so a busy machine slows them alike.
    """
    numbers = [timer.autorange()[0] for timer in timers]
    best = [float("inf")] * len(timers)
    for _ in range(repeats):
        for index, (timer, number) in enumerate(zip(timers, numbers, strict=True)):
            best[index] = min(best[index], timer.timeit(number) / number)
    return [1 / seconds for seconds in best]


def main() -> None:
    # The load matters: on a busy machine both sides slow down, the ratio much less so.
    print(f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'condition':<16} {'compiled/s':>12} {'native/s':>12} {'ratio':>7}")
    for label, source, native in CASES:
        compiled = compile_expression(source)
        expected = native(TICKET, ACCOUNT, NOW)
        if compiled.evaluate_bool(ENV) is not expected:
            raise SystemExit(f"{label}: compiled and native conditions disagree")
        # Statements rather than lambdas, so timing adds no call of its own to either side.
        ours, theirs = rates(
            timeit.Timer("condition(env)", globals={"condition": compiled.evaluate_bool, "env": ENV}),
            timeit.Timer(
                "condition(t, a, n)", globals={"condition": native, "t": TICKET, "a": ACCOUNT, "n": NOW}
            ),
        )
        print(f"{label:<16} {ours:>12,.0f} {theirs:>12,.0f} {ours / theirs:>7.0%}")


if __name__ == "__main__":
    main()
