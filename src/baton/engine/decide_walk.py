"""Rule walks: a policy's rule lists prepared once for ``decide``.

``decide`` walks the routing rules of every new ticket, and the escalation rules listening to
every event, in order to the first rule whose condition holds. What does not depend on the event
is prepared once per policy and kept in ``Policy.prepared``: which rules are enabled, their
names as the record spells them, their conditions compiled into one function that walks them
(:mod:`baton.policy.expr_walk`), the data paths each condition reads (already split into keys),
and for a run of rules that did not match, the paths they read together and the note that
names them. Everything here is pure; the caches only remember.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

from baton.policy.expr import CompiledExpression
from baton.policy.expr_walk import Walker, compile_walk
from baton.policy.model import Escalation, Policy, Route, SlaPolicy

__all__ = [
    "Listening",
    "Path",
    "Routing",
    "Walk",
    "listening",
    "routing",
    "sla_policies",
    "split_paths",
    "stage_watchers",
]

Path = tuple[str, tuple[str, ...]]  # "ticket.owner.role" and ("ticket", "owner", "role")
_SPANS = 4_096  # remembered (start, end) runs per walk; a run is a slice of at most every rule


@lru_cache(maxsize=4_096)
def split_paths(paths: tuple[str, ...]) -> tuple[Path, ...]:
    return tuple((path, tuple(path.split("."))) for path in paths)


@dataclass(frozen=True, slots=True)
class Walk:
    """Rules in walking order: record names, conditions, and the paths each condition reads."""

    names: tuple[str, ...]
    conditions: tuple[CompiledExpression, ...]
    paths: tuple[tuple[Path, ...], ...]
    walker: Walker = field(init=False, repr=False)
    _spans: dict[tuple[int, int], tuple[tuple[Path, ...], str]] = field(
        init=False, default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "walker", compile_walk(self.conditions))

    @classmethod
    def of(cls, kind: str, rules: Sequence[Route | Escalation]) -> Walk:
        return cls(
            names=tuple(f"{kind}.{rule.name}" for rule in rules),
            conditions=tuple(rule.when for rule in rules),
            paths=tuple(split_paths(rule.when.paths_used) for rule in rules),
        )

    def first(self, env: Mapping[str, object], start: int) -> tuple[int, str | None]:
        """From ``start``, the first rule whose condition holds, as ``(index, None)``, or whose
        evaluation failed, as ``(index, message)``; ``(len, None)`` when none does."""
        index = self.walker(env, start)
        if index >= 0:
            return index, None
        # A condition failed: from there on, one at a time, as each condition says for itself.
        for at in range(-1 - index, len(self.conditions)):
            hit, error = self.conditions[at].evaluate_bool_safe(env)
            if hit or error is not None:
                return at, error
        return len(self.conditions), None

    def missed(self, start: int, end: int) -> tuple[tuple[Path, ...], str]:
        """The rules ``start`` to ``end`` (excluded), which did not match: the paths they read,
        each once in the order first read, and the note naming them (at most 50)."""
        key = (start, end)
        found = self._spans.get(key)
        if found is None:
            found = missed_note(self.names[start:end], self.paths[start:end])
            if len(self._spans) >= _SPANS:
                self._spans.clear()
            self._spans[key] = found
        return found


def missed_note(names: Sequence[str], paths: Sequence[tuple[Path, ...]]) -> tuple[tuple[Path, ...], str]:
    read = tuple(dict.fromkeys(path for rule in paths for path in rule))
    note = f"not matched: {', '.join(names[:50])}" + (
        f" and {len(names) - 50} more" if len(names) > 50 else ""
    )
    return read, note


@dataclass(frozen=True, slots=True)
class Routing:
    """The enabled routing rules, and the record's note about the disabled ones."""

    routes: tuple[Route, ...]
    walk: Walk
    disabled: str | None


def routing(policy: Policy) -> Routing:
    # Each entry keeps the rules it was made from: a copy of the policy with other rules (as
    # ``model.replace`` makes, sharing this dict) builds its own instead of reading a stale one.
    found = cast(tuple[object, Routing] | None, policy.prepared.get("routing"))
    if found is None or found[0] is not policy.routing:
        routes = tuple(r for r in policy.routing if r.enabled)
        disabled = [f"routing.{r.name}" for r in policy.routing if not r.enabled]
        note = f"disabled: {', '.join(disabled)}" if disabled else None
        found = policy.prepared["routing"] = (
            policy.routing,
            Routing(routes, Walk.of("routing", routes), note),
        )
    return found[1]


@dataclass(frozen=True, slots=True)
class Listening:
    """The enabled escalation rules listening to one trigger, and the record names of those that
    apply ``once``."""

    rules: tuple[Escalation, ...]
    walk: Walk
    once: frozenset[str]


def listening(policy: Policy, trigger: str, applied: frozenset[str] = frozenset()) -> Listening:
    """The rules listening to ``trigger``, less those that apply once and are in ``applied``."""
    key = ("escalations", trigger, applied)
    found = cast(tuple[object, Listening] | None, policy.prepared.get(key))
    if found is None or found[0] is not policy.escalations:
        rules = tuple(
            r
            for r in policy.escalations
            if trigger in r.on and r.enabled and not (r.once and f"escalation.{r.name}" in applied)
        )
        once = frozenset(f"escalation.{r.name}" for r in rules if r.once)
        found = policy.prepared[key] = (
            policy.escalations,
            Listening(rules, Walk.of("escalation", rules), once),
        )
    return found[1]


def sla_policies(policy: Policy) -> dict[str | None, SlaPolicy]:
    """The SLA policies by name (the first of a name, as a walk would find it)."""
    found = cast(tuple[object, dict[str | None, SlaPolicy]] | None, policy.prepared.get("sla"))
    if found is None or found[0] is not policy.sla:
        by_name: dict[str | None, SlaPolicy] = {}
        for p in policy.sla:
            by_name.setdefault(p.name, p)
        found = policy.prepared["sla"] = (policy.sla, by_name)
    return found[1]


def stage_watchers(policy: Policy) -> tuple[Escalation, ...]:
    """The enabled escalation rules with a time in stage (``stuck``)."""
    found = cast(tuple[object, tuple[Escalation, ...]] | None, policy.prepared.get("stuck"))
    if found is None or found[0] is not policy.escalations:
        rules = tuple(r for r in policy.escalations if r.enabled and r.stuck is not None)
        found = policy.prepared["stuck"] = (policy.escalations, rules)
    return found[1]
