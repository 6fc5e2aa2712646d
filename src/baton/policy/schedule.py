"""On-call schedules: who owns a page at a given instant, and why.

The model
---------
A :class:`Schedule` stacks *layers*; each layer is a :class:`Rotation` in which members take
turns, one shift each, starting at the rotation's anchor instant. Before its anchor, and from its
``end`` if it has one, a rotation has nobody on shift. Where several layers have someone the
*last* layer wins, so a holiday-season layer listed after the regular one takes over while it
runs, and the regular layer is the next in line when its person is away. An
:class:`Override` (person, start, end) beats every layer; when overrides overlap, the one listed
last wins (:func:`overlapping_overrides` reports such overlaps so a policy check can flag them).
:class:`OutOfOffice` entries, passed per call because they change often, make people unavailable.

Shift boundaries
----------------
* A ``timedelta`` shift length is absolute time: hand-off *k* is ``start + k * length``, so a
  12-hour shift is 12 real hours even across a DST change.
* ``"daily"`` and ``"weekly"`` are calendar days or weeks in the rotation's ``tz``: hand-off *k*
  happens at the anchor's local wall-clock time on the anchor's local date plus *k* days or weeks.
  A weekly rotation anchored on Monday 09:00 hands off at 09:00 local every Monday, so the shift
  over a DST change lasts 167 or 169 hours. A hand-off time that does not exist that day (spring
  forward) happens when the clock jumps past it; one that occurs twice happens at its first
  occurrence (see :func:`baton.policy.calendar.wall_clock_instant`).

Resolution
----------
:func:`resolve` walks candidates in order and takes the first who is not out of office: active
overrides (last listed first); then, for each layer from the top, the person on shift and then
that rotation's backup (the next different member in rotation order); then the caller's
``fallback`` chain (say, the team's on-call person, then a manager). Every candidate looked at is
recorded in the :class:`Resolution`'s trail, so an explanation can say who was skipped and why. If
everyone is away the resolution has ``person=None`` and the full trail.

All functions are pure. A bad definition raises :class:`~baton.errors.ConfigError` (a
``ValueError``); a bad call argument, such as a naive datetime, raises ``ValueError``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

from baton.errors import ConfigError
from baton.policy.calendar import load_zone, wall_clock_instant

__all__ = [
    "OutOfOffice",
    "Outcome",
    "Override",
    "OverrideOverlap",
    "Resolution",
    "Rotation",
    "Schedule",
    "Shift",
    "ShiftLength",
    "Source",
    "Step",
    "overlapping_overrides",
    "resolve",
    "shifts",
]

ShiftLength = timedelta | Literal["daily", "weekly"]
_STEP_DAYS = {"daily": 1, "weekly": 7}


def _require_aware(moment: datetime, what: str, error: type[ValueError] = ValueError) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise error(f"{what} must be a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Rotation:
    """One layer: ``members`` take turns in shifts of ``shift`` starting at ``start``.

    ``shift`` is a ``timedelta`` (absolute time) or ``"daily"``/``"weekly"`` (local calendar days
    in ``tz``, handing off at ``start``'s local wall-clock time). A member may appear more than
    once, for an uneven share of shifts. A rotation with an ``end`` stops there (the last shift is
    cut short): to change a layer, end it and start a new one, and past instants keep resolving
    as they did. Shift 0 begins at :meth:`handoff` ``(0)``, which is ``start`` itself unless, for a
    daily or weekly rotation, ``start`` is the second occurrence of a repeated wall-clock time.
    """

    name: str
    members: tuple[str, ...]
    start: datetime
    shift: ShiftLength
    tz: str = "UTC"
    end: datetime | None = None
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _anchor_day: date = field(init=False, repr=False, compare=False)
    _handoff_time: time = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a rotation needs a name")
        members = tuple(self.members)
        if not members or not all(isinstance(m, str) and m for m in members):
            raise ConfigError(f"rotation {self.name!r} needs at least one member, each a non-empty id")
        begins = _require_aware(self.start, f"rotation {self.name!r} start", ConfigError)
        if (
            self.end is not None
            and _require_aware(self.end, f"rotation {self.name!r} end", ConfigError) <= begins
        ):
            raise ConfigError(f"rotation {self.name!r} must end after it starts")
        if isinstance(self.shift, timedelta):
            if self.shift <= timedelta(0):
                raise ConfigError(f"rotation {self.name!r}: shift length must be positive")
        elif self.shift not in _STEP_DAYS:
            raise ConfigError(
                f"rotation {self.name!r}: shift must be a timedelta, 'daily' or 'weekly', got {self.shift!r}"
            )
        zone = load_zone(self.tz)
        local = self.start.astimezone(zone)
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_anchor_day", local.date())
        object.__setattr__(self, "_handoff_time", local.time())  # naive wall-clock time

    def handoff(self, k: int) -> datetime:
        """The instant (UTC) shift ``k`` begins; shift 0 begins at the anchor."""
        if isinstance(self.shift, timedelta):
            return self.start.astimezone(UTC) + k * self.shift
        day = self._anchor_day + timedelta(days=k * _STEP_DAYS[self.shift])
        return wall_clock_instant(day, self._handoff_time, self._zone)

    def shift_index(self, at: datetime) -> int | None:
        """The index of the shift running at ``at``, or None before the rotation begins or after it ends."""
        moment = _require_aware(at, "at")
        if self.end is not None and moment >= self.end:
            return None
        if isinstance(self.shift, timedelta):
            if moment < self.handoff(0):
                return None
            return (moment - self.handoff(0)) // self.shift
        # Estimate from local dates, then correct: hand-offs are monotonic but not evenly spaced.
        elapsed_days = (moment.astimezone(self._zone).date() - self._anchor_day).days
        k = max(elapsed_days // _STEP_DAYS[self.shift], 0)
        while self.handoff(k) > moment:
            if k == 0:
                return None
            k -= 1
        while self.handoff(k + 1) <= moment:  # also steps over empty shifts
            k += 1
        return k

    def member(self, k: int) -> str:
        """Who works shift ``k``."""
        return self.members[k % len(self.members)]

    def backup(self, k: int) -> str | None:
        """The next member after shift ``k``'s in rotation order who is a different person."""
        primary = self.member(k)
        for step in range(1, len(self.members)):
            candidate = self.member(k + step)
            if candidate != primary:
                return candidate
        return None


@dataclass(frozen=True, slots=True)
class Override:
    """``person`` takes the schedule over for ``[start, end)``, ahead of every layer."""

    person: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _check_span("override", self.person, self.start, self.end)

    def covers(self, at: datetime) -> bool:
        """Whether ``at`` lies in ``[start, end)``."""
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class OutOfOffice:
    """``person`` cannot be paged during ``[start, end)``."""

    person: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _check_span("out-of-office entry", self.person, self.start, self.end)

    def covers(self, at: datetime) -> bool:
        """Whether ``at`` lies in ``[start, end)``."""
        return self.start <= at < self.end


def _check_span(kind: str, person: str, start: datetime, end: datetime) -> None:
    if not person:
        raise ConfigError(f"{kind} needs a person")
    begin = _require_aware(start, f"{kind} start for {person!r}", ConfigError)
    finish = _require_aware(end, f"{kind} end for {person!r}", ConfigError)
    if finish <= begin:
        raise ConfigError(f"{kind} for {person!r} must end after it starts ({start} .. {end})")


@dataclass(frozen=True, slots=True)
class Schedule:
    """Layers (the last listed wins where it has someone) and overrides (beat all layers)."""

    name: str
    layers: tuple[Rotation, ...]
    overrides: tuple[Override, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a schedule needs a name")
        layers, overrides = tuple(self.layers), tuple(self.overrides)
        names = [layer.name for layer in layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            # Layer names identify layers in trails and previews, so they must be unique.
            raise ConfigError(f"schedule {self.name!r}: layer names repeat: {', '.join(duplicates)}")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "overrides", overrides)


class Source(enum.StrEnum):
    """Where a candidate came from."""

    OVERRIDE = "override"
    LAYER = "layer"
    BACKUP = "backup"
    FALLBACK = "fallback"


class Outcome(enum.StrEnum):
    """What happened to a candidate."""

    CHOSEN = "chosen"
    OUT_OF_OFFICE = "out_of_office"
    NOBODY = "nobody"  # the layer has no one on shift (its rotation has not begun, or has ended)


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a resolution's trail."""

    source: Source
    outcome: Outcome
    person: str | None = None
    layer: str | None = None

    def __str__(self) -> str:
        where = {
            Source.OVERRIDE: "override",
            Source.LAYER: f"layer {self.layer!r}",
            Source.BACKUP: f"layer {self.layer!r} backup",
            Source.FALLBACK: "fallback",
        }[self.source]
        if self.outcome is Outcome.NOBODY:
            return f"{where}: nobody on shift"
        if self.outcome is Outcome.OUT_OF_OFFICE:
            return f"{where}: {self.person} is out of office, skipped"
        return f"{where}: {self.person} is on call"


@dataclass(frozen=True, slots=True)
class Resolution:
    """Who is on call for ``schedule`` at ``at`` (None when nobody is available), and why."""

    schedule: str
    at: datetime
    person: str | None
    trail: tuple[Step, ...]

    @property
    def chosen(self) -> Step | None:
        """The step that picked ``person``, if anyone was picked."""
        return self.trail[-1] if self.trail and self.trail[-1].outcome is Outcome.CHOSEN else None

    def explain(self) -> str:
        lines = [str(step) for step in self.trail]
        if self.person is None:
            lines.append("nobody available")
        return "\n".join(lines)


def resolve(
    schedule: Schedule,
    at: datetime,
    *,
    ooo: Iterable[OutOfOffice] = (),
    fallback: Sequence[str] = (),
) -> Resolution:
    """Who is on call at ``at``, skipping anyone out of office; see the module docstring."""
    moment = _require_aware(at, "at")
    away = frozenset(entry.person for entry in ooo if entry.covers(moment))
    trail: list[Step] = []

    def take(source: Source, person: str, layer: str | None = None) -> bool:
        available = person not in away
        trail.append(Step(source, Outcome.CHOSEN if available else Outcome.OUT_OF_OFFICE, person, layer))
        return available

    def done() -> Resolution:
        return Resolution(schedule.name, moment, trail[-1].person, tuple(trail))

    for override in reversed(schedule.overrides):
        if override.covers(moment) and take(Source.OVERRIDE, override.person):
            return done()
    for layer in reversed(schedule.layers):
        k = layer.shift_index(moment)
        if k is None:
            trail.append(Step(Source.LAYER, Outcome.NOBODY, None, layer.name))
            continue
        if take(Source.LAYER, layer.member(k), layer.name):
            return done()
        backup = layer.backup(k)
        if backup is not None and take(Source.BACKUP, backup, layer.name):
            return done()
    for person in fallback:
        if take(Source.FALLBACK, person):
            return done()
    return Resolution(schedule.name, moment, None, tuple(trail))


@dataclass(frozen=True, slots=True)
class Shift:
    """``person`` is scheduled for ``[start, end)``; ``person`` None marks a coverage gap."""

    person: str | None
    start: datetime
    end: datetime
    source: Source | None = None  # OVERRIDE or LAYER; None for a gap
    layer: str | None = None


# What a span of time is assigned to: (source, layer name or None, shift or override index).
_Origin = tuple[Source, str | None, int]


def _scheduled(schedule: Schedule, at: datetime) -> tuple[str, _Origin] | None:
    """Who the schedule puts on call at ``at``, ignoring out-of-office, and from where."""
    for index in range(len(schedule.overrides) - 1, -1, -1):
        if schedule.overrides[index].covers(at):
            return schedule.overrides[index].person, (Source.OVERRIDE, None, index)
    for layer in reversed(schedule.layers):
        k = layer.shift_index(at)
        if k is not None:
            return layer.member(k), (Source.LAYER, layer.name, k)
    return None


def _cuts(rotation: Rotation, start: datetime, end: datetime) -> Iterator[datetime]:
    """The instants strictly inside ``(start, end)`` where the rotation's assignment changes."""
    stop = end if rotation.end is None else min(end, rotation.end.astimezone(UTC))
    if stop <= start:
        return
    current = rotation.shift_index(start)
    k = 0 if current is None else current + 1
    while (moment := rotation.handoff(k)) < stop:
        if moment > start:
            yield moment
        k += 1
    if stop < end:
        yield stop


def shifts(schedule: Schedule, start: datetime, end: datetime) -> tuple[Shift, ...]:
    """The effective shifts in ``[start, end)``, in order, tiling the range without gaps or overlaps.

    Layers and overrides are combined as :func:`resolve` would (out-of-office is not applied);
    spans where nobody is scheduled appear as shifts with ``person=None``. A shift cut by the
    range's ends is clipped to it.
    """
    begin = _require_aware(start, "start")
    finish = _require_aware(end, "end")
    if finish < begin:
        raise ValueError(f"range ends ({finish.isoformat()}) before it starts ({begin.isoformat()})")
    cuts = {begin, finish}
    for layer in schedule.layers:
        cuts.update(_cuts(layer, begin, finish))
    for override in schedule.overrides:
        cuts.update(
            t for t in (override.start.astimezone(UTC), override.end.astimezone(UTC)) if begin < t < finish
        )
    points = sorted(cuts)
    result: list[Shift] = []
    previous: _Origin | None = None
    for lo, hi in pairwise(points):
        found = _scheduled(schedule, lo)
        origin = None if found is None else found[1]
        if result and origin == previous:
            # The same underlying shift or override, cut only by another layer's hand-off.
            result[-1] = Shift(result[-1].person, result[-1].start, hi, result[-1].source, result[-1].layer)
            continue
        if found is None:
            result.append(Shift(None, lo, hi))
        else:
            person, (source, layer_name, _) = found
            result.append(Shift(person, lo, hi, source, layer_name))
        previous = origin
    return tuple(result)


@dataclass(frozen=True, slots=True)
class OverrideOverlap:
    """Two overrides of one schedule overlap during ``[start, end)``; ``second`` (listed later) wins."""

    first: Override
    second: Override
    start: datetime
    end: datetime


def overlapping_overrides(schedule: Schedule) -> tuple[OverrideOverlap, ...]:
    """Every pair of the schedule's overrides whose time spans overlap, ordered by overlap start."""
    ordered = sorted(enumerate(schedule.overrides), key=lambda item: item[1].start)
    found: list[OverrideOverlap] = []
    for position, (i, a) in enumerate(ordered):
        for j, b in ordered[position + 1 :]:
            if b.start >= a.end:
                break  # sorted by start: no later override can overlap ``a`` either
            first, second = (a, b) if i < j else (b, a)
            found.append(OverrideOverlap(first, second, max(a.start, b.start), min(a.end, b.end)))
    found.sort(key=lambda overlap: (overlap.start, overlap.end))
    return tuple(found)
