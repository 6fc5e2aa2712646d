"""Business calendars: hand-computed examples first, then properties checked with hypothesis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from baton.errors import ConfigError
from baton.policy import calendar as calendar_module
from baton.policy.calendar import (
    ALWAYS_OPEN,
    BusinessCalendar,
    DayHours,
    add_business_time,
    add_business_time_with_pauses,
    add_business_times,
    business_time_between,
    is_open,
    parse_hours,
    public_holidays,
    wall_clock_instant,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
LORD_HOWE = "Australia/Lord_Howe"
H = timedelta(hours=1)
M = timedelta(minutes=1)
TICK = timedelta(microseconds=1)


def local(
    tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    """An aware datetime read on the wall clock of ``tz`` (first occurrence if repeated)."""
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=ZoneInfo(tz))


def office(tz: str = BERLIN, hours: str = "09:00-17:00", holidays: tuple[date, ...] = ()) -> BusinessCalendar:
    return BusinessCalendar.build(
        name="office", tz=tz, hours={day: hours for day in range(5)}, holidays=holidays
    )


# --- hand-computed examples -------------------------------------------------------------------

# January 2025 in Berlin: Mon 6, Fri 10, Sat 11, Mon 13. No DST change nearby.
ADD_CASES = [
    ("Friday 16:00 + 2h = Monday 10:00", (2025, 1, 10, 16), 2 * H, (2025, 1, 13, 10)),
    ("before opening counts from 09:00", (2025, 1, 6, 8), H, (2025, 1, 6, 10)),
    ("Saturday counts from Monday", (2025, 1, 11, 12), 30 * M, (2025, 1, 13, 9, 30)),
    ("at closing counts from next day", (2025, 1, 8, 17), H, (2025, 1, 9, 10)),
    ("a full day ends at closing, not next opening", (2025, 1, 6, 9), 8 * H, (2025, 1, 6, 17)),
    ("a full week ends Friday 17:00", (2025, 1, 6, 9), 40 * H, (2025, 1, 10, 17)),
    ("one tick past a full week", (2025, 1, 6, 9), 40 * H + TICK, (2025, 1, 13, 9, 0, 0, 1)),
    ("ten weeks skip whole weeks", (2025, 1, 6, 9), 400 * H, (2025, 3, 14, 17)),
    ("mid-interval", (2025, 1, 7, 12, 15), 3 * H + 10 * M, (2025, 1, 7, 15, 25)),
]


@pytest.mark.parametrize(("label", "start", "duration", "expected"), ADD_CASES, ids=[c[0] for c in ADD_CASES])
def test_add_business_time_examples(
    label: str, start: tuple[int, ...], duration: timedelta, expected: tuple[int, ...]
) -> None:
    result = add_business_time(office(), local(BERLIN, *start), duration)
    assert result == local(BERLIN, *expected)
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        ((2025, 1, 10, 16), 2 * H, (2025, 1, 13, 10)),  # Friday afternoon to Monday
        ((2025, 1, 6, 11, 30), H, (2025, 1, 6, 13, 30)),  # lunch does not count
        ((2025, 1, 6, 12, 30), 30 * M, (2025, 1, 6, 13, 30)),  # starting at lunch waits for 13:00
        ((2025, 1, 6, 9), 7 * H, (2025, 1, 6, 17)),  # a split day holds 7 hours
    ],
)
def test_add_with_a_lunch_break(
    start: tuple[int, ...], duration: timedelta, expected: tuple[int, ...]
) -> None:
    calendar = office(hours="09:00-12:00, 13:00-17:00")
    assert add_business_time(calendar, local(BERLIN, *start), duration) == local(BERLIN, *expected)


def test_zero_duration_returns_start_even_when_closed() -> None:
    saturday = local(BERLIN, 2025, 1, 11, 12)
    assert add_business_time(office(), saturday, timedelta(0)) == saturday


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((2025, 1, 10, 16), (2025, 1, 13, 10), 2 * H),
        ((2025, 1, 6, 0), (2025, 1, 13, 0), 40 * H),
        ((2025, 1, 11, 0), (2025, 1, 12, 23), timedelta(0)),  # weekend
        ((2025, 1, 6, 10), (2025, 1, 6, 10), timedelta(0)),
        ((2025, 1, 7, 10), (2025, 1, 6, 10), timedelta(0)),  # b before a
        ((2025, 1, 6, 0), (2025, 3, 17, 0), 400 * H),
    ],
)
def test_business_time_between_examples(a: tuple[int, ...], b: tuple[int, ...], expected: timedelta) -> None:
    assert business_time_between(office(), local(BERLIN, *a), local(BERLIN, *b)) == expected


def test_is_open_is_half_open() -> None:
    calendar = office()
    assert is_open(calendar, local(BERLIN, 2025, 1, 6, 9))
    assert is_open(calendar, local(BERLIN, 2025, 1, 6, 17) - TICK)
    assert not is_open(calendar, local(BERLIN, 2025, 1, 6, 17))
    assert not is_open(calendar, local(BERLIN, 2025, 1, 6, 9) - TICK)
    assert not is_open(calendar, local(BERLIN, 2025, 1, 11, 12))


def test_always_open_is_elapsed_time() -> None:
    start = local(NEW_YORK, 2024, 3, 9, 23)  # 04:00 UTC, three hours before the change
    # Real time, not wall-clock arithmetic (which would give 02:00, a time that never happens).
    assert add_business_time(ALWAYS_OPEN, start, 3 * H) == datetime(2024, 3, 10, 7, tzinfo=UTC)
    assert business_time_between(ALWAYS_OPEN, start, datetime(2024, 3, 12, 6, tzinfo=UTC)) == 50 * H


# --- DST --------------------------------------------------------------------------------------


def test_weekend_spring_forward_in_new_york() -> None:
    # 2024-03-10 is the change; Friday 16:00 EST + 2h is Monday 10:00 EDT (14:00 UTC).
    result = add_business_time(office(NEW_YORK), local(NEW_YORK, 2024, 3, 8, 16), 2 * H)
    assert result == datetime(2024, 3, 11, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "day", "open_day_length"),
    [
        (NEW_YORK, date(2024, 3, 10), 23 * H),
        (NEW_YORK, date(2024, 11, 3), 25 * H),
        (BERLIN, date(2025, 3, 30), 23 * H),
        (BERLIN, date(2025, 10, 26), 25 * H),
        (LORD_HOWE, date(2024, 10, 6), 23 * H + 30 * M),  # the clock moves half an hour
        (LORD_HOWE, date(2024, 4, 7), 24 * H + 30 * M),
        (LORD_HOWE, date(2024, 4, 8), 24 * H),
    ],
)
def test_dst_days_last_as_long_as_they_really_do(tz: str, day: date, open_day_length: timedelta) -> None:
    every_day = {d: "09:00-17:00" for d in range(7)}
    nine_to_five = BusinessCalendar.build(name="daily", tz=tz, hours=every_day)
    # A whole-day calendar that is not 24x7 (one far-off holiday) takes the general path.
    whole_days = BusinessCalendar.always(tz=tz, holidays=[date(2099, 1, 1)])
    midnight = local(tz, day.year, day.month, day.day)
    next_midnight = wall_clock_instant(day + timedelta(days=1), time(0), ZoneInfo(tz))
    assert business_time_between(nine_to_five, midnight, next_midnight) == 8 * H
    assert business_time_between(whole_days, midnight, next_midnight) == open_day_length
    assert add_business_time(whole_days, midnight, open_day_length) == next_midnight


def test_gap_and_fold_boundaries_follow_the_first_reading_rule() -> None:
    ny = ZoneInfo(NEW_YORK)
    # 02:30 does not exist on 2024-03-10: it means the jump, 03:00 EDT = 07:00 UTC.
    assert wall_clock_instant(date(2024, 3, 10), time(2, 30), ny) == datetime(2024, 3, 10, 7, tzinfo=UTC)
    # 01:30 happens twice on 2024-11-03: the first time, 01:30 EDT = 05:30 UTC.
    assert wall_clock_instant(date(2024, 11, 3), time(1, 30), ny) == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)
    assert wall_clock_instant(date(2024, 11, 3), time(2), ny) == datetime(2024, 11, 3, 7, tzinfo=UTC)
    lord_howe = ZoneInfo(LORD_HOWE)  # 02:00 (+10:30) jumps to 02:30 (+11) on 2024-10-06
    assert wall_clock_instant(date(2024, 10, 6), time(2, 10), lord_howe) == datetime(
        2024, 10, 5, 15, 30, tzinfo=UTC
    )


def test_gap_boundaries_with_microseconds_still_mean_the_jump() -> None:
    ny = ZoneInfo(NEW_YORK)
    moment = wall_clock_instant(date(2024, 3, 10), time(2, 59, 59, 999_999), ny)
    assert moment == datetime(2024, 3, 10, 7, tzinfo=UTC)


def test_clocks_going_back_across_midnight() -> None:
    # Goose Bay, 29 Oct 2000: at 00:01 ADT (03:01 UTC) clocks went back to 23:01 AST on the 28th.
    # Sunday's interval opens at the first midnight, so the repeated Saturday 23:xx is open.
    calendar = BusinessCalendar.build(name="night", tz="America/Goose_Bay", hours={"sun": "00:00-06:00"})
    repeated_saturday = datetime(2000, 10, 29, 3, 30, tzinfo=UTC)  # 23:30 AST on the 28th
    assert repeated_saturday.astimezone(ZoneInfo("America/Goose_Bay")).date() == date(2000, 10, 28)
    assert is_open(calendar, repeated_saturday)
    saturday_noon = local("America/Goose_Bay", 2000, 10, 28, 12)
    assert business_time_between(calendar, saturday_noon, repeated_saturday) == 30 * M
    assert add_business_time(calendar, saturday_noon, 30 * M) == repeated_saturday
    assert business_time_between(calendar, saturday_noon, saturday_noon + 2 * timedelta(days=1)) == 7 * H


def test_two_offset_changes_in_one_week_are_not_skipped_over() -> None:
    # Recife started DST at midnight on Sunday 8 Oct 2000 and ended it a week later, so the week
    # from the 8th has the same offset at both ends but lost Sunday's first hour.
    hours: dict[int | str, str] = {"sun": "00:00-02:00", **{day: "09:00-17:00" for day in range(5)}}
    calendar = BusinessCalendar.build(name="recife", tz="America/Recife", hours=hours)
    start = local("America/Recife", 2000, 10, 1)
    # Four weeks hold 42 + 41 + 42 + 42 hours; the 168th hour is Sunday 29th, 00:00-01:00 local.
    assert business_time_between(calendar, start, local("America/Recife", 2000, 10, 29)) == 167 * H
    assert add_business_time(calendar, start, 168 * H) == datetime(2000, 10, 29, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("hours", "day", "expected"),
    [
        ("02:30-04:00", date(2024, 3, 10), H),  # opens at the jump, 03:00 EDT
        ("02:30-04:00", date(2024, 3, 17), 90 * M),  # an ordinary Sunday
        ("02:00-03:00", date(2024, 3, 10), timedelta(0)),  # wholly inside the gap: closed
        ("00:00-06:00", date(2024, 3, 10), 5 * H),
        ("00:00-06:00", date(2024, 11, 3), 7 * H),
        ("00:00-01:30", date(2024, 11, 3), 90 * M),  # closes at the first 01:30
        ("01:30-03:00", date(2024, 11, 3), 150 * M),  # 01:30 EDT to 03:00 EST
    ],
)
def test_sunday_night_intervals_across_new_york_changes(hours: str, day: date, expected: timedelta) -> None:
    calendar = BusinessCalendar.build(name="night", tz=NEW_YORK, hours={"sun": hours})
    start = local(NEW_YORK, day.year, day.month, day.day)
    assert business_time_between(calendar, start, start + 30 * H) == expected


# Berlin, Monday to Friday 09-17 plus Sunday 00-06, which holds the changes: a 46-hour week.
NIGHT_AND_DAY: dict[int | str, str] = {**{day: "09:00-17:00" for day in range(5)}, "sun": "00:00-06:00"}


def test_skipping_a_year_of_weeks_stays_exact_across_both_changes() -> None:
    calendar = BusinessCalendar.build(name="n&d", tz=BERLIN, hours=NIGHT_AND_DAY)
    assert calendar.week_length == 46 * H
    # The spring Sunday loses an hour and the autumn one gains it back: 52 weeks of business
    # time end at the last closing of the 52nd week.
    start = local(BERLIN, 2025, 1, 6)
    assert add_business_time(calendar, start, 52 * 46 * H) == local(BERLIN, 2026, 1, 4, 6)
    assert business_time_between(calendar, start, local(BERLIN, 2026, 1, 5)) == 52 * 46 * H


def test_skipping_weeks_across_spring_only() -> None:
    calendar = BusinessCalendar.build(name="n&d", tz=BERLIN, hours=NIGHT_AND_DAY)
    start = local(BERLIN, 2025, 3, 3)
    # Ten weeks hold 459 hours (30 March lost one), so one hour remains for Monday 12 May.
    assert business_time_between(calendar, start, local(BERLIN, 2025, 5, 12)) == 459 * H
    assert add_business_time(calendar, start, 460 * H) == local(BERLIN, 2025, 5, 12, 10)


def test_large_durations_skip_weeks_instead_of_walking_days(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = calendar_module.wall_clock_instant

    def counting(day: date, wall: time, zone: ZoneInfo) -> datetime:
        nonlocal calls
        calls += 1
        return real(day, wall, zone)

    monkeypatch.setattr(calendar_module, "wall_clock_instant", counting)
    result = add_business_time(office(), local(BERLIN, 2025, 1, 6, 9), 52 * 40 * H)
    assert result == local(BERLIN, 2026, 1, 2, 17)
    # Walking 52 weeks day by day takes nearly 900 conversions; skipping needs one per week.
    assert calls < 200


# --- holidays ---------------------------------------------------------------------------------


def test_listed_holidays_are_closed() -> None:
    calendar = office(holidays=(date(2025, 1, 13),))
    assert add_business_time(calendar, local(BERLIN, 2025, 1, 10, 16), 2 * H) == local(
        BERLIN, 2025, 1, 14, 10
    )
    assert not is_open(calendar, local(BERLIN, 2025, 1, 13, 12))


def test_country_holidays_skip_easter() -> None:
    calendar = BusinessCalendar.build(
        name="munich",
        tz=BERLIN,
        hours={day: "09:00-17:00" for day in range(5)},
        country="DE",
        subdiv="BY",
        years=[2025],
    )
    assert {date(2025, 4, 18), date(2025, 4, 21), date(2025, 1, 6)} <= calendar.holidays
    # Maundy Thursday 16:00 + 2h: Good Friday, the weekend and Easter Monday are closed.
    thursday = local(BERLIN, 2025, 4, 17, 16)
    assert add_business_time(calendar, thursday, 2 * H) == local(BERLIN, 2025, 4, 22, 10)


def test_public_holidays_span_is_inclusive_and_filtered() -> None:
    days = public_holidays("US", span=(date(2026, 7, 3), date(2026, 11, 26)))
    assert min(days) == date(2026, 7, 3)  # Independence Day observed
    assert max(days) == date(2026, 11, 26)  # Thanksgiving
    assert date(2026, 1, 1) not in days


@pytest.mark.parametrize(
    "call",
    [
        lambda: public_holidays("XX", years=[2025]),
        lambda: public_holidays("DE", subdiv="ZZ", years=[2025]),
        lambda: public_holidays("DE"),
        lambda: public_holidays("DE", years=[2025], span=(date(2025, 1, 1), date(2025, 2, 1))),
        lambda: public_holidays("DE", span=(date(2025, 2, 1), date(2025, 1, 1))),
        lambda: BusinessCalendar.build(name="x", tz=BERLIN, hours={0: "09:00-17:00"}, years=[2025]),
    ],
)
def test_bad_holiday_requests_are_config_errors(call: Callable[[], object]) -> None:
    with pytest.raises(ConfigError):
        call()


# --- validation -------------------------------------------------------------------------------

WEEKDAY_9_17: tuple[DayHours, ...] = (((time(9), time(17)),),) * 5 + ((), ())


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "../etc/passwd", "Europe", "europe/berlin"])
def test_unknown_time_zone_is_a_config_error(tz: str) -> None:
    with pytest.raises(ConfigError, match="time zone"):
        BusinessCalendar(name="x", tz=tz, weekly_hours=WEEKDAY_9_17)


@pytest.mark.parametrize(
    ("weekly_hours", "holidays", "message"),
    [
        (((),) * 7, frozenset(), "no open hours"),
        ((((time(22), time(2)),),) + ((),) * 6, frozenset(), "spans midnight"),
        ((((time(9), time(9)),),) + ((),) * 6, frozenset(), "empty"),
        ((((time(9), time(13)), (time(12), time(17))),) + ((),) * 6, frozenset(), "overlap"),
        ((((time(9), time(0)), (time(12), time(17))),) + ((),) * 6, frozenset(), "overlap"),
        (WEEKDAY_9_17[:5], frozenset(), "7 days"),
        (WEEKDAY_9_17, frozenset({datetime(2025, 1, 1, tzinfo=UTC)}), "not a date"),
    ],
)
def test_bad_calendars_are_config_errors(
    weekly_hours: tuple[DayHours, ...], holidays: frozenset[date], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        BusinessCalendar(name="x", tz=BERLIN, weekly_hours=weekly_hours, holidays=holidays)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "hours",
    [
        {"monkey": "09:00-17:00"},
        {7: "09:00-17:00"},
        {True: "09:00-17:00"},
        {"mon": "09:00-17:00", 0: "10:00-11:00"},
    ],
)
def test_bad_weekday_keys_are_config_errors(hours: dict[int | str, str]) -> None:
    with pytest.raises(ConfigError, match=r"weekday|twice"):
        BusinessCalendar.build(name="x", tz=BERLIN, hours=hours)


def test_hours_are_normalised() -> None:
    calendar = BusinessCalendar(
        name="x", tz=BERLIN, weekly_hours=(((time(13), time(17)), (time(9), time(13))),) + ((),) * 6
    )
    assert calendar.weekly_hours[0] == ((time(9), time(17)),)
    assert calendar == BusinessCalendar.build(name="x", tz=BERLIN, hours={"monday": "09:00-17:00"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-12:00, 13:00-17:30", ((time(9), time(12)), (time(13), time(17, 30)))),
        ("22:00-24:00", ((time(22), time(0)),)),
        ("closed", ()),
        ("", ()),
    ],
)
def test_parse_hours(text: str, expected: DayHours) -> None:
    assert parse_hours(text) == expected


@pytest.mark.parametrize("text", ["9-17", "09:00-25:00", "09:00 to 17:00", "09:60-10:00"])
def test_parse_hours_rejects_nonsense(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_hours(text)


def test_naive_datetimes_and_negative_durations_are_rejected() -> None:
    calendar = office()
    naive = datetime(2025, 1, 6, 9)
    aware = naive.replace(tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(calendar, naive, H)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_time_between(calendar, aware, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(calendar, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time_with_pauses(calendar, aware, H, [(naive, naive)])
    with pytest.raises(ValueError, match="negative"):
        add_business_time(calendar, aware, -H)


# --- pauses -----------------------------------------------------------------------------------

MONDAY = (2025, 1, 6)


def _monday(hour: int, minute: int = 0) -> datetime:
    return local(BERLIN, *MONDAY, hour, minute)


@pytest.mark.parametrize(
    ("start", "duration", "pauses", "expected"),
    [
        (9, 4 * H, [(10, 11)], _monday(14)),
        (9, 4 * H, [(10, 11), (10.5, 12)], _monday(15)),  # overlapping pauses merge
        (9, 4 * H, [(10.5, 12), (10, 11)], _monday(15)),  # in any order
        (9, 4 * H, [(10, 14), (11, 12)], _monday(17)),  # a pause inside another
        (9, H, [(10, 11)], _monday(10)),  # reached exactly when the pause begins
        (10, H, [(9, 11)], _monday(12)),  # started while paused
        (9, 4 * H, [(7, 8)], _monday(13)),  # a pause before start is ignored
        (9, 4 * H, [(10, 10)], _monday(13)),  # an empty pause changes nothing
        (16, 2 * H, [(16.5, 17.5)], local(BERLIN, 2025, 1, 7, 10, 30)),
    ],
)
def test_pauses(
    start: int, duration: timedelta, pauses: list[tuple[float, float]], expected: datetime
) -> None:
    def at(hour: float) -> datetime:
        return _monday(int(hour), int(hour % 1 * 60))

    spans = [(at(a), at(b)) for a, b in pauses]
    assert add_business_time_with_pauses(office(), at(start), duration, spans) == expected


def test_pause_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        add_business_time_with_pauses(office(), _monday(9), H, [(_monday(11), _monday(10))])


# --- properties -------------------------------------------------------------------------------

ZONES = [NEW_YORK, BERLIN, LORD_HOWE, "Europe/London", "Asia/Kolkata", "UTC"]
# Dates of DST changes in the zones above, so that generated instants often straddle one.
CHANGES = [
    date(2024, 3, 10), date(2024, 11, 3), date(2025, 3, 9), date(2025, 11, 2),  # New York
    date(2024, 3, 31), date(2024, 10, 27), date(2025, 3, 30), date(2025, 10, 26),  # Europe
    date(2024, 4, 7), date(2024, 10, 6), date(2025, 4, 6), date(2025, 10, 5),  # Lord Howe
]  # fmt: skip
FIRST, LAST = datetime(2024, 1, 1, tzinfo=UTC), datetime(2026, 6, 30, tzinfo=UTC)


@st.composite
def day_hours(draw: st.DrawFn, boundaries: st.SearchStrategy[int]) -> DayHours:
    """Zero to three disjoint intervals, from sorted distinct minute-of-day boundaries."""
    count = draw(st.integers(0, 3))
    points = sorted(draw(st.sets(boundaries, min_size=2 * count, max_size=2 * count)))
    return tuple(
        (time(*divmod(a, 60)), time(*divmod(b % 1440, 60)))
        for a, b in zip(points[::2], points[1::2], strict=True)
    )


ANY_BOUNDARY = st.integers(0, 96).map(lambda q: q * 15)
# Boundaries clear of every change window (00:00 is allowed as an opening: the interval then
# contains the change whole), so a wall-clock reading oracle must agree exactly.
SAFE_BOUNDARY = st.one_of(st.just(0), st.integers(16, 96).map(lambda q: q * 15))


@st.composite
def calendars(draw: st.DrawFn, boundaries: st.SearchStrategy[int] = ANY_BOUNDARY) -> BusinessCalendar:
    week = tuple(draw(day_hours(boundaries)) for _ in range(7))
    assume(any(week))
    holidays = draw(st.frozensets(st.dates(date(2024, 1, 1), date(2026, 12, 31)), max_size=15))
    return BusinessCalendar(
        name="generated", tz=draw(st.sampled_from(ZONES)), weekly_hours=week, holidays=holidays
    )


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """Any instant in 2024-2026, often within three days of a DST change."""
    if draw(st.booleans()):
        return draw(
            st.datetimes(FIRST.replace(tzinfo=None), LAST.replace(tzinfo=None), timezones=st.just(UTC))
        )
    change = draw(st.sampled_from(CHANGES))
    offset = draw(st.timedeltas(timedelta(days=-3), timedelta(days=3)))
    return datetime.combine(change, time(12), tzinfo=UTC) + offset


@st.composite
def durations(draw: st.DrawFn, calendar: BusinessCalendar) -> timedelta:
    """Short durations, or up to 30 weeks' worth of this calendar's hours (to exercise skipping)."""
    if draw(st.booleans()):
        return draw(st.timedeltas(timedelta(0), timedelta(hours=30)))
    return calendar.week_length * draw(st.integers(0, 30_000_000)) // 1_000_000


PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data(), calendar=calendars(), start=instants())
def test_adding_then_measuring_gives_the_duration_back(
    data: st.DataObject, calendar: BusinessCalendar, start: datetime
) -> None:
    duration = data.draw(durations(calendar))
    end = add_business_time(calendar, start, duration)
    assert end >= start
    assert business_time_between(calendar, start, end) == duration
    if duration > timedelta(0):
        # Earliest: the instant just before is open, so the result is inside open time or
        # exactly at a closing, never at an opening or in closed time.
        assert is_open(calendar, end - TICK)


@PROPERTY
@given(data=st.data(), calendar=calendars(), start=instants())
def test_adding_several_durations_in_one_walk_matches_adding_each(
    data: st.DataObject, calendar: BusinessCalendar, start: datetime
) -> None:
    # An SLA target and its thresholds: shares of one duration, and independent ones, with repeats.
    target = data.draw(durations(calendar))
    shares = [target * pct // 100 for pct in data.draw(st.lists(st.integers(0, 150), max_size=4))]
    several = [target, *shares, *data.draw(st.lists(durations(calendar), max_size=3))]
    fresh = BusinessCalendar(
        name="fresh", tz=calendar.tz, weekly_hours=calendar.weekly_hours, holidays=calendar.holidays
    )
    assert add_business_times(fresh, start, several) == [
        add_business_time(calendar, start, d) for d in several
    ]


def test_adding_several_durations_checks_them_like_adding_one() -> None:
    start = local(BERLIN, 2025, 1, 6, 9)
    assert add_business_times(office(), start, []) == []
    assert add_business_times(office(), start, [timedelta(0), H]) == [start, start + H]
    with pytest.raises(ValueError, match="negative"):
        add_business_times(office(), start, [H, -H])
    with pytest.raises(ValueError, match="naive"):
        add_business_times(office(), start.replace(tzinfo=None), [H])


@PROPERTY
@given(data=st.data(), calendar=calendars(), start=instants())
def test_addition_is_additive(data: st.DataObject, calendar: BusinessCalendar, start: datetime) -> None:
    first, second = data.draw(durations(calendar)), data.draw(durations(calendar))
    via_midpoint = add_business_time(calendar, add_business_time(calendar, start, first), second)
    assert via_midpoint == add_business_time(calendar, start, first + second)


@PROPERTY
@given(data=st.data(), calendar=calendars(), a=instants(), b=instants())
def test_addition_is_monotonic(
    data: st.DataObject, calendar: BusinessCalendar, a: datetime, b: datetime
) -> None:
    a, b = sorted((a, b))
    d1, d2 = sorted((data.draw(durations(calendar)), data.draw(durations(calendar))))
    assert add_business_time(calendar, a, d1) <= add_business_time(calendar, b, d1)
    assert add_business_time(calendar, a, d1) <= add_business_time(calendar, a, d2)


@PROPERTY
@given(calendar=calendars(), a=instants(), b=instants(), c=instants())
def test_measuring_is_additive_and_bounded(
    calendar: BusinessCalendar, a: datetime, b: datetime, c: datetime
) -> None:
    a, b, c = sorted((a, b, c))
    assert business_time_between(calendar, a, c) == business_time_between(
        calendar, a, b
    ) + business_time_between(calendar, b, c)
    assert timedelta(0) <= business_time_between(calendar, a, c) <= c - a
    assert business_time_between(calendar, c, a) == timedelta(0)


@PROPERTY
@given(calendar=calendars(), start=instants(), weeks=st.integers(2, 40))
def test_skipping_weeks_matches_walking_in_small_steps(
    calendar: BusinessCalendar, start: datetime, weeks: int
) -> None:
    # Steps shorter than a week never take the skipping path, so they are an independent route.
    step = calendar.week_length / 3
    walked = start
    for _ in range(3 * weeks):
        walked = add_business_time(calendar, walked, step)
    assert add_business_time(calendar, start, 3 * weeks * step) == walked
    chunk = timedelta(days=3)
    span_end = start + weeks * timedelta(days=7)
    pieces = [start + k * chunk for k in range((span_end - start) // chunk)] + [span_end]
    measured = sum(
        (business_time_between(calendar, x, y) for x, y in pairwise(pieces)),
        timedelta(0),
    )
    assert business_time_between(calendar, start, span_end) == measured


def _open_by_wall_clock(calendar: BusinessCalendar, moment: datetime) -> bool:
    """Independent oracle: read the local clock and look the time up in the weekly table."""
    wall = moment.astimezone(ZoneInfo(calendar.tz))
    if wall.date() in calendar.holidays:
        return False
    clock = wall.time().replace(tzinfo=None, fold=0)
    return any(
        opens <= clock and (closes == time(0) or clock < closes)
        for opens, closes in calendar.weekly_hours[wall.weekday()]
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendar=calendars(SAFE_BOUNDARY), start=instants(), minutes=st.integers(0, 3 * 24 * 60))
def test_measuring_agrees_with_reading_the_wall_clock_minute_by_minute(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    start = start.replace(second=0, microsecond=0)
    expected = sum(_open_by_wall_clock(calendar, start + k * M) for k in range(minutes)) * M
    assert business_time_between(calendar, start, start + minutes * M) == expected
    assert is_open(calendar, start) == _open_by_wall_clock(calendar, start)


@PROPERTY
@given(data=st.data(), calendar=calendars(), start=instants())
def test_holidays_are_never_counted(data: st.DataObject, calendar: BusinessCalendar, start: datetime) -> None:
    holiday = data.draw(st.sampled_from(sorted(calendar.holidays))) if calendar.holidays else date(2025, 1, 1)
    with_holiday = BusinessCalendar(
        name="h", tz=calendar.tz, weekly_hours=calendar.weekly_hours, holidays=calendar.holidays | {holiday}
    )
    zone = ZoneInfo(calendar.tz)
    day_start = wall_clock_instant(holiday, time(0), zone)
    day_end = wall_clock_instant(holiday + timedelta(days=1), time(0), zone)
    assert business_time_between(with_holiday, day_start, day_end) == timedelta(0)
    end = add_business_time(with_holiday, start, data.draw(durations(calendar)))
    assert not day_start < end <= day_end or end == start


@PROPERTY
@given(data=st.data(), calendar=calendars(), start=instants())
def test_paused_business_time_does_not_count(
    data: st.DataObject, calendar: BusinessCalendar, start: datetime
) -> None:
    duration = data.draw(durations(calendar))
    # Disjoint pauses by construction, so the test need not merge them itself.
    gaps = data.draw(st.lists(st.timedeltas(timedelta(0), timedelta(days=2)), min_size=0, max_size=8))
    cuts = [start - timedelta(hours=6)]
    for gap in gaps:
        cuts.append(cuts[-1] + gap + TICK)
    pauses = list(zip(cuts[::2], cuts[1::2], strict=False))
    end = add_business_time_with_pauses(calendar, start, duration, pauses)
    paused = sum(
        (business_time_between(calendar, max(a, start), min(b, end)) for a, b in pauses), timedelta(0)
    )
    assert business_time_between(calendar, start, end) - paused == duration
    if duration > timedelta(0):
        just_before = end - TICK
        assert is_open(calendar, just_before)
        assert not any(a <= just_before < b for a, b in pauses)
    assert add_business_time_with_pauses(calendar, start, duration, []) == add_business_time(
        calendar, start, duration
    )
