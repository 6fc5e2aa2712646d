"""Business calendars: when an SLA clock runs.

The model
---------
A :class:`BusinessCalendar` says when a team works: for each weekday (Monday first) zero or more
wall-clock intervals in the calendar's time zone, minus whole-day holidays. *Business time* is real
elapsed time while the calendar is open, so "4 business hours" is four hours someone could actually
work, and a 09:00-17:00 day is 8 hours even on the day the clocks change.

Intervals are half-open, ``[opens, closes)``, and never cross midnight: ``22:00-02:00`` is rejected,
write ``22:00-24:00`` on one day and ``00:00-02:00`` on the next. A closing time of ``time(0)``
means midnight at the *end* of the day (24:00), so ``(time(0), time(0))`` is a whole day.

Wall-clock boundaries and DST
-----------------------------
Every boundary is mapped to an instant by one rule, implemented by :func:`wall_clock_instant`:
*the first instant at which the local clock reads that time or later*. Consequences:

* a boundary inside a spring-forward gap (02:30 in New York on the March change day) is the
  moment of the jump, 03:00 EDT; an interval that lies wholly in the gap is empty that day;
* a boundary inside a repeated fall-back hour refers to its first occurrence (01:30 EDT, not
  01:30 EST);
* the rule is monotonic, so a day's intervals keep their order, adjacent intervals and adjacent
  days meet exactly, and no instant is ever counted twice. A ``00:00-24:00`` day lasts 23 or 25
  hours on change days, which is simply how long that day was.

Holidays are local dates: the whole local day is closed. Holidays from the ``holidays`` package are
resolved once, when the calendar is built, for the years asked for; evaluation never consults the
package, so it stays pure and fast. A date outside the years loaded is an ordinary working day.

Arithmetic
----------
:func:`add_business_time` returns the *earliest* instant at which the duration has elapsed, so a
positive duration always ends inside open time or exactly at a closing boundary, never at an opening,
and ``add(start, 0) == start`` even when ``start`` is closed. Work proceeds interval by interval,
and a week with no holiday and no UTC-offset change is skipped whole, so the cost grows with the
number of weeks, not minutes. All results are aware UTC datetimes; precision is a microsecond.

Errors: a bad calendar definition raises :class:`~baton.errors.ConfigError` (a ``ValueError``); a
bad call argument, such as a naive datetime or a negative duration, raises ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

from baton.errors import ConfigError

__all__ = [
    "ALWAYS_OPEN",
    "WEEKDAYS",
    "BusinessCalendar",
    "DayHours",
    "Interval",
    "Pause",
    "WeeklyHours",
    "add_business_time",
    "add_business_time_with_pauses",
    "add_business_times",
    "business_time_between",
    "is_open",
    "load_zone",
    "parse_hours",
    "public_holidays",
    "wall_clock_instant",
]

Interval = tuple[time, time]
"""``(opens, closes)`` in local wall-clock time; ``closes == time(0)`` means 24:00."""
DayHours = tuple[Interval, ...]
Pause = tuple[datetime, datetime]
# Weekday (0 = Monday, or "mon".."sun") to intervals or text; spelled out because Mapping keys are
# invariant, so a dict[int, str] would not match Mapping[int | str, ...].
WeeklyHours = Mapping[int, DayHours | str] | Mapping[str, DayHours | str] | Mapping[int | str, DayHours | str]

_R = TypeVar("_R")
# A local day's first instant, its open periods (UTC instants, in order) and their total length.
_DayRecord = tuple[datetime, list[tuple[datetime, datetime]], timedelta]
_MISSING: Final = object()
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ZERO: Final = timedelta(0)
_SECOND: Final = timedelta(seconds=1)
_DAY: Final = timedelta(days=1)
_WEEK: Final = timedelta(days=7)
_MIDNIGHT: Final = time(0)
_HOURS_RE: Final = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


def load_zone(key: str) -> ZoneInfo:
    """The zone for an IANA key such as ``"Europe/Berlin"``; ConfigError when there is none."""
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # ValueError: malformed key ("", "../x"); OSError: a directory such as "Europe".
        raise ConfigError(f"unknown time zone {key!r}") from exc


def wall_clock_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clock in ``zone`` reads ``wall`` on ``day``, or later.

    For an ordinary time that is the obvious instant. A time that occurs twice (fall-back) gives
    its first occurrence; a time that never occurs (spring-forward gap) gives the instant of the
    jump, the first moment the clock shows a later time.
    """
    if wall.tzinfo is not None:
        raise ValueError("wall-clock times must be naive; the zone says where they are read")
    naive = datetime.combine(day, wall)
    # PEP 495: for a repeated time fold=0 is the earlier instant (larger offset); for a time in a
    # gap fold=0 uses the offset before the jump and fold=1 the offset after it.
    before = _offset(naive.replace(tzinfo=zone))
    after = _offset(naive.replace(tzinfo=zone, fold=1))
    if before >= after:
        return (naive - before).replace(tzinfo=UTC)
    # In a gap the jump happened strictly after ``naive - after`` and no later than
    # ``naive - before``. tzdata transitions fall on whole seconds, so bisect to the second.
    lo = (naive - after).replace(tzinfo=UTC, microsecond=0)
    hi = (naive - before).replace(tzinfo=UTC)
    if hi.microsecond:
        hi = hi.replace(microsecond=0) + _SECOND
    while hi - lo > _SECOND:
        mid = (lo + (hi - lo) // 2).replace(microsecond=0)
        if _offset(mid.astimezone(zone)) == before:
            lo = mid
        else:
            hi = mid
    return hi


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    if offset is None:  # pragma: no cover - every ZoneInfo answers; this keeps mypy honest
        raise ValueError(f"{moment!r} has no UTC offset")
    return offset


def parse_hours(text: str) -> DayHours:
    """Parse ``"09:00-12:00, 13:00-17:00"`` (``""`` or ``"closed"`` for none; ``24:00`` allowed)."""
    text = text.strip()
    if text.lower() in {"", "closed"}:
        return ()
    intervals: list[Interval] = []
    for part in text.split(","):
        match = _HOURS_RE.match(part.strip())
        if match is None:
            raise ConfigError(f"cannot read business hours {part.strip()!r}; expected HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h2, m2) == (24, 0):
            h2 = 0  # 24:00 is stored as midnight-at-end-of-day
        try:
            intervals.append((time(h1, m1), time(h2, m2)))
        except ValueError as exc:
            raise ConfigError(f"cannot read business hours {part.strip()!r}: {exc}") from exc
    return tuple(intervals)


def public_holidays(
    country: str,
    *,
    subdiv: str | None = None,
    years: Iterable[int] | None = None,
    span: tuple[date, date] | None = None,
) -> frozenset[date]:
    """Public holidays (observed days included) of a country or subdivision, from ``holidays``.

    Give ``years`` (e.g. ``range(2025, 2028)``) or an inclusive date ``span``. Load every year an
    SLA could reach: a date outside them counts as a working day.
    """
    if (years is None) == (span is None):
        raise ConfigError(f"holidays for {country!r}: give either years or a date span")
    if span is not None:
        first, last = span
        if last < first:
            raise ConfigError(f"holiday span {first}..{last} ends before it starts")
        years = range(first.year, last.year + 1)
    try:
        found = holidays_lib.country_holidays(country, subdiv=subdiv, years=list(years or ()))
    except NotImplementedError as exc:  # how the package says "no such country or subdivision"
        raise ConfigError(f"no holiday data for {country!r} subdivision {subdiv!r}: {exc}") from exc
    days = frozenset(found.keys())
    if span is not None:
        days = frozenset(d for d in days if span[0] <= d <= span[1])
    return days


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Open hours per weekday in ``tz``, closed on ``holidays``. See the module docstring.

    ``weekly_hours`` has seven entries, Monday first. It is stored normalised: each day's
    intervals sorted, and touching intervals merged. Use :meth:`build` or :meth:`always` rather
    than the constructor when starting from text or from a country's holidays.
    """

    name: str
    tz: str
    weekly_hours: tuple[DayHours, ...]
    holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _week: timedelta = field(init=False, repr=False, compare=False)
    _always_open: bool = field(init=False, repr=False, compare=False)
    # Per-day results (open periods, midnights, plain weeks) are pure functions of the calendar and
    # the day; memoising them makes repeated SLA arithmetic cheap. Bounded: cleared when full.
    _memo: dict[tuple[str, date], Any] = field(init=False, repr=False, compare=False, hash=False)
    # The same for what every step of the arithmetic reads about a day, in one lookup.
    _days: dict[date, _DayRecord] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a business calendar needs a name")
        zone = load_zone(self.tz)
        if len(self.weekly_hours) != len(WEEKDAYS):
            raise ConfigError(
                f"calendar {self.name!r}: weekly_hours needs 7 days (Monday first), "
                f"got {len(self.weekly_hours)}"
            )
        hours = tuple(_normalise_day(self.name, WEEKDAYS[i], day) for i, day in enumerate(self.weekly_hours))
        for day in self.holidays:
            # datetime is a subclass of date; a datetime here is almost certainly a mistake.
            if not isinstance(day, date) or isinstance(day, datetime):
                raise ConfigError(f"calendar {self.name!r}: holiday {day!r} is not a date")
        week = sum((_wall_length(interval) for day in hours for interval in day), _ZERO)
        if week <= _ZERO:
            # Without this every search for the next open minute would run forever.
            raise ConfigError(f"calendar {self.name!r} has no open hours in the week")
        full_day: DayHours = ((_MIDNIGHT, _MIDNIGHT),)
        object.__setattr__(self, "weekly_hours", hours)
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_week", week)
        object.__setattr__(self, "_always_open", not self.holidays and all(day == full_day for day in hours))
        object.__setattr__(self, "_memo", {})
        object.__setattr__(self, "_days", {})

    @classmethod
    def build(
        cls,
        *,
        name: str,
        tz: str,
        hours: WeeklyHours,
        holidays: Iterable[date] = (),
        country: str | None = None,
        subdiv: str | None = None,
        years: Iterable[int] | None = None,
        span: tuple[date, date] | None = None,
    ) -> BusinessCalendar:
        """A calendar from per-day hours and holidays.

        ``hours`` maps weekdays (0 = Monday, or ``"mon"``..``"sun"``) to intervals or text for
        :func:`parse_hours`; days not mentioned are closed. ``holidays`` lists extra closed dates;
        with ``country`` (and optionally ``subdiv``) the public holidays for ``years`` or ``span``
        are added, resolved now so that evaluation never calls the holiday package.
        """
        week: list[DayHours | None] = [None] * len(WEEKDAYS)
        for key, value in hours.items():
            index = _weekday_index(name, key)
            if week[index] is not None:
                raise ConfigError(f"calendar {name!r}: {WEEKDAYS[index]} is given twice")
            week[index] = parse_hours(value) if isinstance(value, str) else tuple(value)
        closed = frozenset(holidays)
        if country is not None:
            closed |= public_holidays(country, subdiv=subdiv, years=years, span=span)
        elif years is not None or span is not None or subdiv is not None:
            raise ConfigError(f"calendar {name!r}: years, span and subdiv need a country")
        return cls(name=name, tz=tz, weekly_hours=tuple(day or () for day in week), holidays=closed)

    @classmethod
    def always(
        cls, *, name: str = "24x7", tz: str = "UTC", holidays: Iterable[date] = ()
    ) -> BusinessCalendar:
        """Calendar time: open around the clock (except on ``holidays``, if any are given)."""
        full_day: DayHours = ((_MIDNIGHT, _MIDNIGHT),)
        return cls(name=name, tz=tz, weekly_hours=(full_day,) * 7, holidays=frozenset(holidays))

    @property
    def week_length(self) -> timedelta:
        """Open time in a week with no holiday and no DST change (the sum of the wall hours)."""
        return self._week


def _weekday_index(name: str, key: int | str) -> int:
    if isinstance(key, str):
        for index, (short, full) in enumerate(zip(WEEKDAYS, _WEEKDAY_NAMES, strict=True)):
            if key.lower() in {short, full}:
                return index
    elif not isinstance(key, bool) and 0 <= key < len(WEEKDAYS):
        return key
    raise ConfigError(f"calendar {name!r}: {key!r} is not a weekday (0-6 or mon..sun)")


def _wall_length(interval: Interval) -> timedelta:
    opens, closes = interval
    end = _DAY if closes == _MIDNIGHT else _since_midnight(closes)
    return end - _since_midnight(opens)


def _since_midnight(wall: time) -> timedelta:
    return timedelta(hours=wall.hour, minutes=wall.minute, seconds=wall.second, microseconds=wall.microsecond)


def _normalise_day(name: str, weekday: str, intervals: DayHours) -> DayHours:
    checked: list[Interval] = []
    for interval in intervals:
        if len(interval) != 2 or not all(isinstance(t, time) for t in interval):
            raise ConfigError(f"calendar {name!r} {weekday}: {interval!r} is not a (time, time) pair")
        opens, closes = interval
        if opens.tzinfo is not None or closes.tzinfo is not None:
            raise ConfigError(f"calendar {name!r} {weekday}: use naive times; the calendar has a tz")
        if _wall_length(interval) <= _ZERO:
            raise ConfigError(
                f"calendar {name!r} {weekday}: interval {opens:%H:%M}-{closes:%H:%M} is empty or "
                "spans midnight; split it at 24:00 into one interval on each day"
            )
        checked.append((opens.replace(fold=0), closes.replace(fold=0)))
    checked.sort(key=lambda iv: iv[0])
    merged: list[Interval] = []
    for opens, closes in checked:
        if merged:
            prev_opens, prev_closes = merged[-1]
            if prev_closes == _MIDNIGHT or prev_closes > opens:
                raise ConfigError(
                    f"calendar {name!r} {weekday}: intervals starting {prev_opens:%H:%M} and "
                    f"{opens:%H:%M} overlap"
                )
            if prev_closes == opens:  # touching: one interval
                merged[-1] = (prev_opens, closes)
                continue
        merged.append((opens, closes))
    return tuple(merged)


def _require_aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _local_date(calendar: BusinessCalendar, moment: datetime) -> date:
    return moment.astimezone(calendar._zone).date()


_MEMO_LIMIT: Final = 50_000


def _memo(calendar: BusinessCalendar, kind: str, day: date, compute: Callable[[], _R]) -> _R:
    memo = calendar._memo
    key = (kind, day)
    found = memo.get(key, _MISSING)
    if found is _MISSING:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        found = memo[key] = compute()
    return found  # type: ignore[no-any-return]


def _day_start(calendar: BusinessCalendar, day: date) -> datetime:
    return _memo(calendar, "start", day, lambda: wall_clock_instant(day, _MIDNIGHT, calendar._zone))


def _periods(calendar: BusinessCalendar, day: date) -> list[tuple[datetime, datetime]]:
    """The open periods of one local day as UTC instants, in order; empty ones left out."""
    return _memo(calendar, "periods", day, lambda: _compute_periods(calendar, day))


def _day_record(calendar: BusinessCalendar, day: date) -> _DayRecord:
    days = calendar._days
    found = days.get(day)
    if found is None:
        periods = _periods(calendar, day)
        if len(days) >= _MEMO_LIMIT:
            days.clear()
        found = days[day] = (_day_start(calendar, day), periods, sum((b - a for a, b in periods), _ZERO))
    return found


def _compute_periods(calendar: BusinessCalendar, day: date) -> list[tuple[datetime, datetime]]:
    if day in calendar.holidays:
        return []
    zone = calendar._zone
    periods = []
    for opens, closes in calendar.weekly_hours[day.weekday()]:
        start = wall_clock_instant(day, opens, zone)
        end = (
            _day_start(calendar, day + _DAY) if closes == _MIDNIGHT else wall_clock_instant(day, closes, zone)
        )
        if end > start:
            periods.append((start, end))
    return periods


def _is_plain_week(calendar: BusinessCalendar, day: date) -> bool:
    """Whether the seven local days from ``day`` hold exactly ``week_length`` of open time.

    True when none of them is a holiday and the UTC offset is the same at all eight midnights from
    ``day`` to ``day + 7``: then no interval is stretched or shortened by an offset change. That
    relies on no zone changing its offset twice within one day, which holds for all of tzdata
    (the closest pair of changes since 1970 is almost seven days apart).
    """
    return _memo(calendar, "plain", day, lambda: _compute_plain_week(calendar, day))


def _compute_plain_week(calendar: BusinessCalendar, day: date) -> bool:
    if any(day + k * _DAY in calendar.holidays for k in range(7)):
        return False
    zone = calendar._zone
    first = _offset(datetime.combine(day, _MIDNIGHT, tzinfo=zone))
    return all(
        _offset(datetime.combine(day + k * _DAY, _MIDNIGHT, tzinfo=zone)) == first for k in range(1, 8)
    )


def is_open(calendar: BusinessCalendar, at: datetime) -> bool:
    """Whether ``at`` lies in open time (intervals are half-open: closed at the closing instant)."""
    moment = _require_aware(at, "at")
    local = _local_date(calendar, moment)
    # The next day too: where the clocks go back across midnight (America/St_Johns used 00:01 ->
    # 23:01 until 2011) an instant still dated today can lie inside tomorrow's first interval.
    # No earlier day can matter: its intervals end before today's midnight was first reached.
    return any(
        opens <= moment < closes for day in (local, local + _DAY) for opens, closes in _periods(calendar, day)
    )


def add_business_time(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """The earliest instant (UTC) by which ``duration`` of business time has elapsed since ``start``.

    When ``start`` is closed, counting begins at the next opening. ``duration`` must not be
    negative; a zero duration returns ``start`` itself.
    """
    cursor = _require_aware(start, "start")
    if duration < _ZERO:
        raise ValueError(f"duration must not be negative, got {duration}")
    if duration == _ZERO or calendar._always_open:
        return cursor + duration
    remaining = duration
    day = _local_date(calendar, cursor)  # earlier days close before this one first began
    while True:
        day_start = _day_start(calendar, day)
        if remaining > calendar._week and day_start >= cursor and _is_plain_week(calendar, day):
            # Strictly greater: if the week used up the duration exactly, the answer is the last
            # closing inside it, not the start of the next week.
            remaining -= calendar._week
            day += _WEEK
            continue
        for opens, closes in _periods(calendar, day):
            if closes <= cursor:
                continue
            opens = max(opens, cursor)
            if remaining <= closes - opens:
                return opens + remaining
            remaining -= closes - opens
        day += _DAY


def add_business_times(
    calendar: BusinessCalendar, start: datetime, durations: Sequence[timedelta]
) -> list[datetime]:
    """:func:`add_business_time` of each of ``durations`` from one ``start``, in one walk.

    An SLA clock's due instant and its thresholds are shares of one target from one start; this
    walks the calendar once, to the longest. Each result is exactly what ``add_business_time``
    returns: the walk takes the same steps for the shortest duration not yet reached, and a week
    skipped by a longer duration alone holds exactly ``calendar._week``, which walking it day by
    day adds up to as well.
    """
    cursor = _require_aware(start, "start")
    if not durations:
        return []
    for duration in durations:
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
    if calendar._always_open:
        return [cursor + duration for duration in durations]
    pending = sorted(set(durations))
    found: dict[timedelta, datetime] = {}
    k = 0
    if pending[0] == _ZERO:
        found[_ZERO] = cursor
        k = 1
    elapsed = _ZERO
    day = _local_date(calendar, cursor)
    days, week = calendar._days, calendar._week
    while k < len(pending):
        day_start, periods, total = days.get(day) or _day_record(calendar, day)
        if day_start >= cursor:
            gap = pending[k] - elapsed
            if gap > week and _is_plain_week(calendar, day):
                elapsed += week
                day += _WEEK
                continue
            if gap > total:  # the whole day passes: what walking its periods would add up to
                elapsed += total
                day += _DAY
                continue
        for opens, closes in periods:
            if closes <= cursor:
                continue
            opens = max(opens, cursor)
            span = closes - opens
            while k < len(pending) and pending[k] - elapsed <= span:
                found[pending[k]] = opens + (pending[k] - elapsed)
                k += 1
            if k == len(pending):
                break
            elapsed += span
        day += _DAY
    return [found[duration] for duration in durations]


def business_time_between(calendar: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    """Business time elapsed from ``a`` to ``b``; zero when ``b`` is not after ``a``."""
    start = _require_aware(a, "a")
    end = _require_aware(b, "b")
    if end <= start:
        return _ZERO
    if calendar._always_open:
        return end - start
    total = _ZERO
    day = _local_date(calendar, start)
    last = _local_date(calendar, end) + _DAY  # see is_open: tomorrow can begin before today ends
    days = calendar._days
    while day <= last:
        day_start, periods, length = days.get(day) or _day_record(calendar, day)
        if day_start >= start and _day_start(calendar, day + _WEEK) <= end and _is_plain_week(calendar, day):
            total += calendar._week
            day += _WEEK
            continue
        if day_start >= start and (not periods or periods[-1][1] <= end):
            total += length  # every period of the day lies inside: their sum is the day's length
            day += _DAY
            continue
        for opens, closes in periods:
            overlap = min(closes, end) - max(opens, start)
            if overlap > _ZERO:
                total += overlap
        day += _DAY
    return total


def add_business_time_with_pauses(
    calendar: BusinessCalendar,
    start: datetime,
    duration: timedelta,
    pauses: Iterable[Pause],
) -> datetime:
    """Like :func:`add_business_time`, but business time inside any pause does not count.

    ``pauses`` are ``(start, end)`` instants, in any order, possibly overlapping; parts before
    ``start`` are ignored. An empty pause (``end == start``) is allowed and changes nothing.
    """
    cursor = _require_aware(start, "start")
    if duration < _ZERO:
        raise ValueError(f"duration must not be negative, got {duration}")
    remaining = duration
    for pause_start, pause_end in _merge_pauses(pauses, cursor):
        deadline = add_business_time(calendar, cursor, remaining)
        if deadline <= pause_start:
            return deadline
        remaining -= business_time_between(calendar, cursor, pause_start)
        cursor = pause_end
    return add_business_time(calendar, cursor, remaining)


def _merge_pauses(pauses: Iterable[Pause], after: datetime) -> list[Pause]:
    """Pauses clipped to start no earlier than ``after``, sorted, overlapping ones merged."""
    clipped: list[Pause] = []
    for pause_start, pause_end in pauses:
        begin = _require_aware(pause_start, "pause start")
        finish = _require_aware(pause_end, "pause end")
        if finish < begin:
            raise ValueError(f"pause ends ({finish.isoformat()}) before it starts ({begin.isoformat()})")
        if finish > after and finish > begin:
            clipped.append((max(begin, after), finish))
    clipped.sort()
    merged: list[Pause] = []
    for begin, finish in clipped:
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged


ALWAYS_OPEN: Final = BusinessCalendar.always()
"""Calendar time in UTC: business time equals elapsed time."""
