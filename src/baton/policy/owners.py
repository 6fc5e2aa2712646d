"""Who owns a ticket now (capability D3), pure.

A role is filled either from an on-call schedule or from a pool of members:

- schedule: whoever :func:`~baton.policy.schedule.resolve` finds on call at ``now``, skipping
  people out of office (backup in the rotation, then later layers);
- pool: the available member with the lowest load relative to capacity (``loads`` comes from the
  context: open tickets per person), ties broken by a stable hash of the ticket id so that equal
  members share the work evenly.

When nobody in the role is available the fallback chain is: the role's backup, whoever is on
call in the team's ``oncall`` schedule (resolved at ``now`` like a schedule role, skipping people
out of office), the team's manager. Every step is written into the trail, which the decision
records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from baton.policy.model import Policy
from baton.policy.schedule import resolve

__all__ = ["Assignment", "assign"]


@dataclass(frozen=True, slots=True)
class Assignment:
    role: str
    person: str | None
    trail: tuple[str, ...]


def _away(policy: Policy, person: str, now: datetime) -> bool:
    if person not in _absentees(policy):
        return False
    return any(entry.person == person and entry.covers(now) for entry in policy.out_of_office)


def _absentees(policy: Policy) -> frozenset[str]:
    """Everyone with an out-of-office entry at all (kept with the entries it was read from)."""
    found = cast(tuple[object, frozenset[str]] | None, policy.prepared.get("absentees"))
    if found is None or found[0] is not policy.out_of_office:
        people = frozenset(entry.person for entry in policy.out_of_office)
        found = policy.prepared["absentees"] = (policy.out_of_office, people)
    return found[1]


def _stable(ticket_id: str, person: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{ticket_id}\0{person}".encode()).digest()[:8], "big")


def assign(
    policy: Policy, role_name: str, *, now: datetime, ticket_id: str, loads: Mapping[str, int] | None = None
) -> Assignment:
    role = policy.roles[role_name]
    trail: list[str] = []
    loads = loads or {}
    if role.schedule is not None:
        resolution = resolve(policy.schedules[role.schedule], now, ooo=policy.out_of_office)
        trail.extend(f"schedule {role.schedule}: {step}" for step in resolution.trail)
        if resolution.person is not None:
            return Assignment(role_name, resolution.person, tuple(trail))
    else:
        candidates = []
        for person in role.members:
            if _away(policy, person, now):
                trail.append(f"{person}: out of office")
                continue
            member = policy.members[person]
            load = loads.get(person, 0)
            if load >= member.capacity:  # capacity 0: takes no new tickets
                trail.append(f"{person}: at capacity ({load}/{member.capacity})")
                continue
            candidates.append((load / member.capacity, _stable(ticket_id, person), person))
        if candidates:
            load_share, _, person = min(candidates)
            trail.append(
                f"{person}: least loaded of {len(candidates)} available ({load_share:.0%} of capacity)"
            )
            return Assignment(role_name, person, tuple(trail))
    team = policy.teams[role.team]
    for label, fallback in (
        ("backup", role.backup),
        ("team on-call", team.oncall),
        ("manager", team.manager),
    ):
        if fallback is None:
            continue
        if label == "team on-call":
            oncall = resolve(policy.schedules[fallback], now, ooo=policy.out_of_office)
            trail.extend(f"team on-call {fallback}: {step}" for step in oncall.trail)
            if oncall.person is None:
                continue
            person = oncall.person
        else:
            person = fallback
            if _away(policy, person, now):
                trail.append(f"{label} {person}: out of office")
                continue
        trail.append(f"{label} {person}: nobody in {role_name} available")
        return Assignment(role_name, person, tuple(trail))
    trail.append(f"nobody available for {role_name}")
    return Assignment(role_name, None, tuple(trail))
