"""History as it happened: the KPIs of what the people in a log actually did.

The log is replayed through an *observer* policy that decides nothing of its own: one routing rule
that sets nothing, no SLA policy that ever matches, no escalation rules, and the mapping's tiers
(lowest first). ``decide`` then only applies what the log records — each team or tier change
becomes an ``external.<source>`` handoff record, solves, reopens and waits change the stage — and
the KPIs are computed from the result exactly as for a policy or the live store. SLA compliance
comes from the source's own verdict where the log records one (``made_sla`` in ServiceNow); the
observer starts no clocks of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from baton.model import Account
from baton.policy.compiler import compile_files
from baton.policy.model import Policy
from baton.replay.run import Replayed, replay_history
from baton.signals.history_mapping import HistoryMapping

__all__ = ["as_it_happened", "observer_policy"]

_ROLE = "as-recorded"


def observer_policy(mapping: HistoryMapping) -> Policy:
    """A policy under which ``decide`` records what the log says and adds nothing."""
    tiers = mapping.tiers or ("L1",)
    tier_map = ", ".join(f"{_quote(t)}: {_ROLE}" for t in tiers)
    files = {
        "baton.yaml": (
            f"name: as-it-happened\ndescription: the {mapping.source} log as it happened\n"
            f"tiers: {{{tier_map}}}\n"
        ).encode(),
        "teams.yaml": (
            f"teams: {{{_ROLE}: {{members: {{nobody: {{capacity: 0}}}}}}}}\n"
            f"roles: {{{_ROLE}: {{team: {_ROLE}, members: [nobody]}}}}\n"
        ).encode(),
        "sla.yaml": (
            b"sla:\n  - name: none\n    enabled: false\n"  # no clocks: the log has its own times
            b"    targets: {resolution: {urgent: 1h, high: 1h, normal: 1h, low: 1h}}\n"
        ),
        "routing.yaml": b"routing:\n  - name: as-recorded\n    set: {}\n",
    }
    return compile_files(files, root=Path(f"<as-it-happened {mapping.name}>"))


def _quote(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def as_it_happened(
    path: Path,
    mapping: HistoryMapping,
    *,
    accounts: dict[str, Account] | None = None,
    limit: int | None = None,
    on_error: Callable[[int, str], None] | None = None,
) -> Replayed:
    """Replay ``path`` through :func:`observer_policy`: the KPIs of the log itself."""
    return replay_history(
        path,
        mapping,
        policy=observer_policy(mapping),
        accounts=accounts,
        limit=limit,
        on_error=on_error,
        tiers=mapping.tiers,
    )
