"""SLA clock arithmetic (capability D2), pure.

A clock measures *business* time on its policy's calendar. It runs in segments: ``consumed`` is
the business time used before the current segment, ``running_since`` when the current one began
(None while paused or stopped). Its due instant and each threshold's instant are therefore
``add_business_time(calendar, running_since, share_of_target - consumed)``: pauses and closed hours
push them out exactly, and resuming recomputes them from what is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from baton.model import SlaClock, replace
from baton.policy.calendar import (
    BusinessCalendar,
    add_business_time,
    add_business_times,
    business_time_between,
)

__all__ = [
    "due_at",
    "pause",
    "resume",
    "start",
    "start_with_thresholds",
    "stop",
    "threshold_due",
    "threshold_dues",
    "used_fraction",
]

_MS = timedelta(milliseconds=1)
_ZERO = timedelta(0)


def start(
    *, name: str, policy: str, version: str, calendar: BusinessCalendar, target: timedelta, at: datetime
) -> SlaClock:
    return SlaClock(
        name=name,
        sla_policy=policy,
        calendar=calendar.name,
        target_ms=target // _MS,
        started_at=at,
        running_since=at,
        due_at=add_business_time(calendar, at, target),
        policy_version=version,
    )


def start_with_thresholds(
    *,
    name: str,
    policy: str,
    version: str,
    calendar: BusinessCalendar,
    target: timedelta,
    at: datetime,
    pcts: Sequence[int],
) -> tuple[SlaClock, list[datetime | None]]:
    """:func:`start`, and the clock's :func:`threshold_due` for each of ``pcts``, in one walk of
    the calendar."""
    target_ms = target // _MS
    shares = [_remaining(target_ms, 0, pct) for pct in pcts]
    dues = add_business_times(calendar, at, [target, *(s for s in shares if s is not None)])
    clock = SlaClock(
        name=name,
        sla_policy=policy,
        calendar=calendar.name,
        target_ms=target_ms,
        started_at=at,
        running_since=at,
        due_at=dues[0],
        policy_version=version,
    )
    found = iter(dues[1:])
    return clock, [None if s is None else next(found) for s in shares]


def _remaining(target_ms: int, consumed_ms: int, pct: int) -> timedelta | None:
    """Business time from the current segment's start to ``pct`` percent of the target, or None
    when that was reached in an earlier segment (it fell due then, not now)."""
    remaining = _share(target_ms, pct)
    if consumed_ms:
        remaining -= timedelta(milliseconds=consumed_ms)
    if remaining < _ZERO or (remaining == _ZERO and consumed_ms > 0):
        return None
    return remaining


@lru_cache(maxsize=4_096)  # a policy has a few targets and thresholds; a float timedelta is slow
def _share(target_ms: int, pct: int) -> timedelta:
    return timedelta(milliseconds=target_ms * pct / 100)


def threshold_due(clock: SlaClock, calendar: BusinessCalendar, pct: int) -> datetime | None:
    """When ``pct`` percent of the target will have been used, or None if already past or not running."""
    if clock.running_since is None or clock.stopped_at is not None:
        return None
    remaining = _remaining(clock.target_ms, clock.consumed_ms, pct)
    if remaining is None:
        return None
    return add_business_time(calendar, clock.running_since, remaining)


def threshold_dues(clock: SlaClock, calendar: BusinessCalendar, pcts: Sequence[int]) -> list[datetime | None]:
    """:func:`threshold_due` for each of ``pcts``, in one walk of the calendar."""
    if clock.running_since is None or clock.stopped_at is not None:
        return [None] * len(pcts)
    shares = [_remaining(clock.target_ms, clock.consumed_ms, pct) for pct in pcts]
    found = iter(add_business_times(calendar, clock.running_since, [s for s in shares if s is not None]))
    return [None if s is None else next(found) for s in shares]


def due_at(clock: SlaClock, calendar: BusinessCalendar) -> datetime:
    return threshold_due(clock, calendar, 100) or clock.due_at


def pause(clock: SlaClock, calendar: BusinessCalendar, at: datetime) -> SlaClock:
    if clock.running_since is None or clock.stopped_at is not None:
        return clock
    used = business_time_between(calendar, clock.running_since, at)
    return replace(clock, consumed_ms=clock.consumed_ms + used // _MS, running_since=None, paused_at=at)


def resume(clock: SlaClock, calendar: BusinessCalendar, at: datetime) -> SlaClock:
    if clock.paused_at is None or clock.stopped_at is not None:
        return clock
    paused_for = max(at - clock.paused_at, timedelta(0))
    running = replace(clock, running_since=at, paused_at=None, paused_ms=clock.paused_ms + paused_for // _MS)
    return replace(running, due_at=due_at(running, calendar))


def stop(clock: SlaClock, calendar: BusinessCalendar, at: datetime) -> SlaClock:
    if clock.stopped_at is not None:
        return clock
    consumed = clock.consumed_ms
    if clock.running_since is not None:
        consumed += business_time_between(calendar, clock.running_since, at) // _MS
    return replace(
        clock,
        stopped_at=at,
        running_since=None,
        paused_at=None,
        consumed_ms=consumed,
        breached=clock.breached or consumed > clock.target_ms,
    )


def used_fraction(clock: SlaClock, calendar: BusinessCalendar, at: datetime) -> float:
    """Share of the target used at ``at`` (can exceed 1 once breached)."""
    consumed = clock.consumed_ms
    if clock.running_since is not None and clock.stopped_at is None:
        consumed += business_time_between(calendar, clock.running_since, at) // _MS
    return consumed / clock.target_ms if clock.target_ms else 1.0
