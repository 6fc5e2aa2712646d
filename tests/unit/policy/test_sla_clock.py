"""SLA clock arithmetic (``baton.policy.sla``) checked against an independent computation.

The clock keeps its state in segments (``consumed`` before the current run, ``running_since``);
:func:`~baton.policy.calendar.add_business_time_with_pauses` computes a deadline from the start,
the target and the list of pauses in one go. On random business calendars (per-weekday hours and
holidays, in zones with DST changes) and random pause/resume sequences the two must agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baton.model import SlaClock
from baton.policy import sla
from baton.policy.calendar import (
    WEEKDAYS,
    BusinessCalendar,
    Pause,
    add_business_time_with_pauses,
    business_time_between,
)

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
# 2026 in those zones: clocks change on 8 Mar, 29 Mar, 5 Apr, 4 Oct, 25 Oct and 1 Nov.
FIRST_START = datetime(2026, 2, 20, tzinfo=UTC)
MS = timedelta(milliseconds=1)
MINUTE = timedelta(minutes=1)
# How far after the due instant a pause or resume lands, when a step aims at it: exactly on it,
# just after it, and well after it (often in closed hours).
AFTER_DUE = [timedelta(0), MINUTE, 30 * MINUTE, timedelta(hours=1), timedelta(hours=7), timedelta(days=1)]


def _wall(quarter: int) -> str:
    hours, quarters = divmod(quarter, 4)
    return f"{hours:02d}:{quarters * 15:02d}"


@st.composite
def day_hours(draw: st.DrawFn) -> str:
    """Zero to three disjoint intervals on quarter hours, as calendars.yaml writes them."""
    count = draw(st.integers(0, 3))
    points = sorted(draw(st.sets(st.integers(0, 96), min_size=2 * count, max_size=2 * count)))
    return ", ".join(f"{_wall(a)}-{_wall(b)}" for a, b in zip(points[::2], points[1::2], strict=True))


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    week = {day: draw(day_hours()) for day in WEEKDAYS}
    hours = {day: text for day, text in week.items() if text}
    if not hours:  # a calendar must open at some point in the week
        hours = {draw(st.sampled_from(WEEKDAYS)): "09:00-17:00"}
    holidays = draw(st.frozensets(st.dates(date(2026, 2, 1), date(2026, 12, 31)), max_size=25))
    return BusinessCalendar.build(
        name="generated", tz=draw(st.sampled_from(ZONES)), hours=hours, holidays=holidays
    )


starts = st.integers(0, 300 * 24 * 60).map(lambda minutes: FIRST_START + minutes * MINUTE)
targets = st.integers(1, 60 * 60).map(lambda minutes: minutes * MINUTE)


def _start(calendar: BusinessCalendar, at: datetime, target: timedelta) -> SlaClock:
    return sla.start(name="resolution", policy="p", version="v1", calendar=calendar, target=target, at=at)


def _next_instant(
    data: st.DataObject, now: datetime, clock: SlaClock, calendar: BusinessCalendar
) -> datetime:
    """A later instant: either a random step, or one aimed at the clock's due instant."""
    if data.draw(st.booleans(), label="aim at the due instant"):
        aimed = sla.due_at(clock, calendar) + data.draw(st.sampled_from(AFTER_DUE), label="after due")
        if aimed >= now:
            return aimed
    return now + data.draw(st.integers(0, 4 * 24 * 60), label="minutes later") * MINUTE


def _consumed(clock: SlaClock) -> timedelta:
    return clock.consumed_ms * MS


def _paused_business_time(calendar: BusinessCalendar, pauses: list[Pause]) -> timedelta:
    return sum((business_time_between(calendar, a, b) for a, b in pauses), timedelta(0))


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(calendar=calendars(), start=starts, target=targets, steps=st.integers(1, 8), data=st.data())
def test_due_instant_after_pauses_equals_the_independent_computation(
    calendar: BusinessCalendar, start: datetime, target: timedelta, steps: int, data: st.DataObject
) -> None:
    clock = _start(calendar, start, target)
    assert sla.due_at(clock, calendar) == add_business_time_with_pauses(calendar, start, target, [])
    pauses: list[Pause] = []
    now = paused_at = start
    for _ in range(steps):
        now = _next_instant(data, now, clock, calendar)
        if clock.running_since is not None:
            clock = sla.pause(clock, calendar, now)
            paused_at = now
            continue
        clock = sla.resume(clock, calendar, now)
        pauses.append((paused_at, now))
        expected = add_business_time_with_pauses(calendar, start, target, pauses)
        assert sla.due_at(clock, calendar) == expected, f"pauses {pauses}"
        assert clock.due_at == expected


@PROPERTY
@given(calendar=calendars(), start=starts, target=targets, steps=st.integers(0, 8), data=st.data())
def test_consumed_business_time_never_exceeds_elapsed_business_time(
    calendar: BusinessCalendar, start: datetime, target: timedelta, steps: int, data: st.DataObject
) -> None:
    clock = _start(calendar, start, target)
    pauses: list[Pause] = []
    now = paused_at = start
    for _ in range(steps):
        now = _next_instant(data, now, clock, calendar)
        if clock.running_since is not None:
            clock = sla.pause(clock, calendar, now)
            paused_at = now
        else:
            clock = sla.resume(clock, calendar, now)
            pauses.append((paused_at, now))
        elapsed = business_time_between(calendar, start, now)
        assert _consumed(clock) <= elapsed
        if clock.running_since is None:  # just paused: everything up to now that was not paused ran
            assert _consumed(clock) == elapsed - _paused_business_time(calendar, pauses)
    end = _next_instant(data, now, clock, calendar)
    stopped = sla.stop(clock, calendar, end)
    if clock.paused_at is not None:
        pauses.append((clock.paused_at, end))
    elapsed = business_time_between(calendar, start, end)
    assert _consumed(stopped) <= elapsed
    assert _consumed(stopped) == elapsed - _paused_business_time(calendar, pauses)


@PROPERTY
@given(calendar=calendars(), start=starts, target=targets, steps=st.integers(0, 8), data=st.data())
def test_stopping_marks_breached_exactly_when_consumed_exceeds_target(
    calendar: BusinessCalendar, start: datetime, target: timedelta, steps: int, data: st.DataObject
) -> None:
    clock = _start(calendar, start, target)
    now = start
    for _ in range(steps):
        now = _next_instant(data, now, clock, calendar)
        running = clock.running_since is not None
        clock = sla.pause(clock, calendar, now) if running else sla.resume(clock, calendar, now)
    stopped = sla.stop(clock, calendar, _next_instant(data, now, clock, calendar))
    assert stopped.stopped_at is not None
    assert stopped.running_since is None
    assert stopped.breached == (stopped.consumed_ms > stopped.target_ms)
    # Stopping twice changes nothing, and a stopped clock no longer pauses or resumes.
    later = stopped.stopped_at + timedelta(days=1)
    assert sla.stop(stopped, calendar, later) == stopped
    assert sla.pause(stopped, calendar, later) == stopped
    assert sla.resume(stopped, calendar, later) == stopped


@PROPERTY
@given(
    calendar=calendars(),
    start=starts,
    target=targets,
    steps=st.integers(0, 6),
    pcts=st.lists(st.integers(1, 1_000), min_size=1, max_size=8),
    data=st.data(),
)
def test_threshold_instants_are_monotone_in_pct_and_the_100_percent_one_is_due(
    calendar: BusinessCalendar,
    start: datetime,
    target: timedelta,
    steps: int,
    pcts: list[int],
    data: st.DataObject,
) -> None:
    clock = _start(calendar, start, target)
    now = start
    for _ in range(steps):
        now = _next_instant(data, now, clock, calendar)
        running = clock.running_since is not None
        clock = sla.pause(clock, calendar, now) if running else sla.resume(clock, calendar, now)
    if clock.running_since is None:
        clock = sla.resume(clock, calendar, _next_instant(data, now, clock, calendar))
    instants = [sla.threshold_due(clock, calendar, pct) for pct in sorted({*pcts, 100})]
    # Thresholds already passed (None) come first; the rest fall due in order.
    reached = [when for when in instants if when is not None]
    assert instants[len(instants) - len(reached) :] == reached
    assert reached == sorted(reached)
    at_100 = sla.threshold_due(clock, calendar, 100)
    if at_100 is not None:
        assert at_100 == sla.due_at(clock, calendar)
    if clock.consumed_ms < clock.target_ms:
        assert at_100 == sla.due_at(clock, calendar) == clock.due_at


def test_threshold_due_of_a_paused_or_stopped_clock_is_none() -> None:
    calendar = BusinessCalendar.build(name="office", tz="UTC", hours={day: "09:00-17:00" for day in range(5)})
    clock = _start(calendar, datetime(2026, 3, 2, 9, tzinfo=UTC), timedelta(hours=4))
    ten = datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert sla.threshold_due(sla.pause(clock, calendar, ten), calendar, 50) is None
    assert sla.threshold_due(sla.stop(clock, calendar, ten), calendar, 50) is None


def test_a_clock_paused_after_it_ran_out_at_closing_time_stays_due_at_closing_time() -> None:
    # Due Monday 17:00 (2 h from 15:00); the agent sets the ticket pending at 18:00 and the
    # customer replies Tuesday 10:00. The clock ran out on Monday at 17:00, and stays due then.
    calendar = BusinessCalendar.build(name="office", tz="UTC", hours={day: "09:00-17:00" for day in range(5)})
    start = datetime(2026, 3, 2, 15, tzinfo=UTC)
    clock = _start(calendar, start, timedelta(hours=2))
    assert clock.due_at == datetime(2026, 3, 2, 17, tzinfo=UTC)
    pause = (datetime(2026, 3, 2, 18, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC))
    resumed = sla.resume(sla.pause(clock, calendar, pause[0]), calendar, pause[1])
    expected = add_business_time_with_pauses(calendar, start, timedelta(hours=2), [pause])
    assert expected == datetime(2026, 3, 2, 17, tzinfo=UTC)
    assert sla.due_at(resumed, calendar) == expected
    # Nor is the 100% threshold due again (it would fire a second breach escalation on resume).
    assert sla.threshold_due(resumed, calendar, 100) is None
