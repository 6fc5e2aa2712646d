"""On-call schedules: hand-computed hand-offs and resolutions, then hypothesis properties."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from baton.errors import ConfigError
from baton.policy.calendar import wall_clock_instant
from baton.policy.schedule import (
    Outcome,
    OutOfOffice,
    Override,
    OverrideOverlap,
    Resolution,
    Rotation,
    Schedule,
    Shift,
    Source,
    Step,
    overlapping_overrides,
    resolve,
    shifts,
)

NEW_YORK = "America/New_York"
LONDON = "Europe/London"
H = timedelta(hours=1)
DAY = timedelta(days=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def one_layer(rotation: Rotation) -> Schedule:
    return Schedule(name="s", layers=(rotation,))


def boundaries(found: tuple[Shift, ...]) -> list[datetime]:
    return [shift.start for shift in found[1:]]


# --- hand-offs across DST ---------------------------------------------------------------------


def test_weekly_rotation_hands_off_at_nine_local_across_spring_forward() -> None:
    # Monday 4 March 2024 09:00 EST is 14:00 UTC; after 10 March 09:00 EDT is 13:00 UTC.
    start = datetime(2024, 3, 4, 9, tzinfo=ZoneInfo(NEW_YORK))
    rotation = Rotation("primary", ("alice", "bob", "carol"), start, "weekly", tz=NEW_YORK)
    schedule = one_layer(rotation)
    assert resolve(schedule, utc(2024, 3, 4, 13, 59)).person is None
    assert resolve(schedule, utc(2024, 3, 4, 14)).person == "alice"
    assert resolve(schedule, utc(2024, 3, 11, 12, 59)).person == "alice"
    assert resolve(schedule, utc(2024, 3, 11, 13)).person == "bob"
    assert shifts(schedule, utc(2024, 3, 4, 14), utc(2024, 3, 25, 13)) == (
        Shift("alice", utc(2024, 3, 4, 14), utc(2024, 3, 11, 13), Source.LAYER, "primary"),
        Shift("bob", utc(2024, 3, 11, 13), utc(2024, 3, 18, 13), Source.LAYER, "primary"),
        Shift("carol", utc(2024, 3, 18, 13), utc(2024, 3, 25, 13), Source.LAYER, "primary"),
    )


def test_weekly_rotation_across_fall_back_lasts_169_hours() -> None:
    start = datetime(2024, 10, 28, 9, tzinfo=ZoneInfo(NEW_YORK))
    rotation = Rotation("primary", ("alice", "bob"), start, "weekly", tz=NEW_YORK)
    assert rotation.handoff(1) == utc(2024, 11, 4, 14)
    assert rotation.handoff(1) - rotation.handoff(0) == 169 * H


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        # Europe/London changes on 30 March and 26 October 2025.
        (
            datetime(2025, 3, 29, 9, tzinfo=UTC),
            [utc(2025, 3, 29, 9), utc(2025, 3, 30, 8), utc(2025, 3, 31, 8)],
        ),
        (
            datetime(2025, 10, 25, 8, tzinfo=UTC),
            [utc(2025, 10, 25, 8), utc(2025, 10, 26, 9), utc(2025, 10, 27, 9)],
        ),
    ],
)
def test_daily_rotation_in_london_hands_off_at_nine_local(anchor: datetime, expected: list[datetime]) -> None:
    rotation = Rotation("daily", ("alice", "bob"), anchor, "daily", tz=LONDON)
    assert [rotation.handoff(k) for k in range(3)] == expected
    assert {rotation.handoff(k).astimezone(ZoneInfo(LONDON)).time() for k in range(3)} == {time(9)}


def test_hand_off_time_missing_on_the_change_day_happens_at_the_jump() -> None:
    start = datetime(2024, 3, 8, 2, 30, tzinfo=ZoneInfo(NEW_YORK))
    rotation = Rotation("night", ("alice", "bob"), start, "daily", tz=NEW_YORK)
    assert rotation.handoff(2) == utc(2024, 3, 10, 7)  # 02:30 never happens; 03:00 EDT does
    assert rotation.handoff(3) == utc(2024, 3, 11, 6, 30)  # 02:30 EDT


def test_fixed_length_shifts_are_absolute_time() -> None:
    # 12-hour shifts from 20:00 EST on 9 March: after the change they hand off at 09:00/21:00 EDT.
    start = datetime(2024, 3, 9, 20, tzinfo=ZoneInfo(NEW_YORK))
    rotation = Rotation("twelve", ("alice", "bob"), start, 12 * H, tz=NEW_YORK)
    assert [rotation.handoff(k) for k in range(3)] == [
        utc(2024, 3, 10, 1),
        utc(2024, 3, 10, 13),
        utc(2024, 3, 11, 1),
    ]
    assert rotation.handoff(2).astimezone(ZoneInfo(NEW_YORK)).time() == time(21)
    assert rotation.shift_index(utc(2024, 3, 10, 12, 59)) == 0
    assert rotation.shift_index(utc(2024, 3, 10, 13)) == 1
    assert rotation.shift_index(utc(2024, 3, 10, 0, 59)) is None


# --- resolution and its trail -----------------------------------------------------------------

WEEK_ONE = utc(2025, 1, 6, 9)  # a Monday
SECONDARY = Rotation("secondary", ("dave", "erin"), WEEK_ONE, "weekly")
PRIMARY = Rotation("primary", ("alice", "bob", "carol"), WEEK_ONE, "weekly")
SUPPORT = Schedule("support", layers=(SECONDARY, PRIMARY))  # primary is on top
WEDNESDAY = utc(2025, 1, 8, 12)


def away(*people: str) -> list[OutOfOffice]:
    return [OutOfOffice(person, utc(2025, 1, 1), utc(2025, 2, 1)) for person in people]


def layer(outcome: Outcome, person: str | None, name: str) -> Step:
    return Step(Source.LAYER, outcome, person, name)


CHOSEN, OOO, NOBODY = Outcome.CHOSEN, Outcome.OUT_OF_OFFICE, Outcome.NOBODY

RESOLVE_CASES = [
    ("top layer wins", [], [], "alice", [layer(CHOSEN, "alice", "primary")]),
    (
        "backup in the same rotation",
        ["alice"],
        [],
        "bob",
        [layer(OOO, "alice", "primary"), Step(Source.BACKUP, CHOSEN, "bob", "primary")],
    ),
    (
        "then the next layer",
        ["alice", "bob"],
        [],
        "dave",
        [
            layer(OOO, "alice", "primary"),
            Step(Source.BACKUP, OOO, "bob", "primary"),
            layer(CHOSEN, "dave", "secondary"),
        ],
    ),
    (
        "then the caller's fallback chain",
        ["alice", "bob", "dave", "erin", "lead"],
        ["lead", "manager"],
        "manager",
        [
            layer(OOO, "alice", "primary"),
            Step(Source.BACKUP, OOO, "bob", "primary"),
            layer(OOO, "dave", "secondary"),
            Step(Source.BACKUP, OOO, "erin", "secondary"),
            Step(Source.FALLBACK, OOO, "lead"),
            Step(Source.FALLBACK, CHOSEN, "manager"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("label", "ooo", "fallback", "person", "trail"), RESOLVE_CASES, ids=[case[0] for case in RESOLVE_CASES]
)
def test_fallback_chain(
    label: str, ooo: list[str], fallback: list[str], person: str, trail: list[Step]
) -> None:
    result = resolve(SUPPORT, WEDNESDAY, ooo=away(*ooo), fallback=fallback)
    assert result == Resolution("support", WEDNESDAY, person, tuple(trail))
    assert result.chosen == trail[-1]


def test_nobody_available_keeps_the_whole_trail() -> None:
    result = resolve(SUPPORT, WEDNESDAY, ooo=away("alice", "bob", "dave", "erin", "lead"), fallback=["lead"])
    assert result.person is None
    assert result.chosen is None
    assert [step.outcome for step in result.trail] == [OOO] * 5
    assert result.explain().splitlines() == [
        "layer 'primary': alice is out of office, skipped",
        "layer 'primary' backup: bob is out of office, skipped",
        "layer 'secondary': dave is out of office, skipped",
        "layer 'secondary' backup: erin is out of office, skipped",
        "fallback: lead is out of office, skipped",
        "nobody available",
    ]


def test_out_of_office_is_half_open() -> None:
    leave = [OutOfOffice("alice", utc(2025, 1, 7), WEDNESDAY)]
    assert resolve(SUPPORT, WEDNESDAY, ooo=leave).person == "alice"
    assert resolve(SUPPORT, WEDNESDAY - timedelta(microseconds=1), ooo=leave).person == "bob"


def test_override_beats_layers_and_falls_through_when_away() -> None:
    cover = Override("zoe", utc(2025, 1, 8), utc(2025, 1, 9))
    schedule = Schedule("support", layers=(SECONDARY, PRIMARY), overrides=(cover,))
    assert resolve(schedule, WEDNESDAY).trail == (Step(Source.OVERRIDE, CHOSEN, "zoe"),)
    assert resolve(schedule, utc(2025, 1, 9)).person == "alice"  # the override has ended
    result = resolve(schedule, WEDNESDAY, ooo=away("zoe"))
    assert result.trail == (Step(Source.OVERRIDE, OOO, "zoe"), layer(CHOSEN, "alice", "primary"))
    assert str(result.trail[0]) == "override: zoe is out of office, skipped"


def test_the_last_listed_override_wins() -> None:
    first = Override("zoe", utc(2025, 1, 8), utc(2025, 1, 9))
    second = Override("yann", utc(2025, 1, 8, 10), utc(2025, 1, 8, 14))
    schedule = Schedule("support", layers=(PRIMARY,), overrides=(first, second))
    assert resolve(schedule, WEDNESDAY).person == "yann"
    assert resolve(schedule, WEDNESDAY, ooo=away("yann")).person == "zoe"
    assert resolve(schedule, utc(2025, 1, 8, 14)).person == "zoe"


def test_layer_not_yet_started_is_reported_and_skipped() -> None:
    later = Rotation("primary", ("alice",), utc(2025, 1, 13), "weekly")
    result = resolve(Schedule("s", layers=(SECONDARY, later)), WEDNESDAY)
    assert result.trail == (layer(NOBODY, None, "primary"), layer(CHOSEN, "dave", "secondary"))
    assert str(result.trail[0]) == "layer 'primary': nobody on shift"


@pytest.mark.parametrize(
    ("members", "k", "backup"),
    [
        (("alice",), 0, None),
        (("alice", "alice", "bob"), 0, "bob"),
        (("alice", "alice", "bob"), 1, "bob"),
        (("alice", "alice", "bob"), 2, "alice"),
        (("alice", "bob", "carol"), 5, "alice"),
    ],
)
def test_backup_is_the_next_different_member(members: tuple[str, ...], k: int, backup: str | None) -> None:
    assert Rotation("r", members, WEEK_ONE, "daily").backup(k) == backup


def test_single_member_rotation_has_no_backup_step() -> None:
    solo = Rotation("solo", ("alice",), WEEK_ONE, "weekly")
    result = resolve(Schedule("s", layers=(SECONDARY, solo)), WEDNESDAY, ooo=away("alice"))
    assert result.trail == (layer(OOO, "alice", "solo"), layer(CHOSEN, "dave", "secondary"))


# --- shifts and overlaps ----------------------------------------------------------------------


def test_shifts_combine_layers_overrides_and_gaps() -> None:
    secondary = Rotation("secondary", ("dave", "erin"), utc(2025, 1, 6), "weekly")
    primary = Rotation("primary", ("alice", "bob"), utc(2025, 1, 8), "daily")
    cover = Override("zoe", utc(2025, 1, 8, 20), utc(2025, 1, 9, 4))  # spans primary's hand-off
    schedule = Schedule("s", layers=(secondary, primary), overrides=(cover,))
    assert shifts(schedule, utc(2025, 1, 5), utc(2025, 1, 10)) == (
        Shift(None, utc(2025, 1, 5), utc(2025, 1, 6)),
        Shift("dave", utc(2025, 1, 6), utc(2025, 1, 8), Source.LAYER, "secondary"),
        Shift("alice", utc(2025, 1, 8), utc(2025, 1, 8, 20), Source.LAYER, "primary"),
        Shift("zoe", utc(2025, 1, 8, 20), utc(2025, 1, 9, 4), Source.OVERRIDE, None),
        Shift("bob", utc(2025, 1, 9, 4), utc(2025, 1, 10), Source.LAYER, "primary"),
    )


def test_an_ended_layer_lets_the_one_below_show_through() -> None:
    primary = Rotation("primary", ("alice", "bob"), utc(2025, 1, 8), "daily", end=utc(2025, 1, 9, 12))
    schedule = Schedule("s", layers=(SECONDARY, primary))
    assert shifts(schedule, utc(2025, 1, 9), utc(2025, 1, 10)) == (
        Shift("bob", utc(2025, 1, 9), utc(2025, 1, 9, 12), Source.LAYER, "primary"),
        Shift("dave", utc(2025, 1, 9, 12), utc(2025, 1, 10), Source.LAYER, "secondary"),
    )
    assert resolve(schedule, utc(2025, 1, 9, 12)).trail[0] == layer(NOBODY, None, "primary")
    assert shifts(schedule, utc(2025, 2, 1), utc(2025, 2, 2)) == (
        Shift("erin", utc(2025, 2, 1), utc(2025, 2, 2), Source.LAYER, "secondary"),  # week 4
    )


def test_shifts_of_an_empty_range_and_a_reversed_one() -> None:
    assert shifts(SUPPORT, WEDNESDAY, WEDNESDAY) == ()
    with pytest.raises(ValueError, match="before it starts"):
        shifts(SUPPORT, WEDNESDAY, WEDNESDAY - H)


def test_overlapping_overrides_are_reported_in_listing_order() -> None:
    ten_to_noon = Override("alice", utc(2025, 1, 8, 10), utc(2025, 1, 8, 12))
    eleven_to_one = Override("bob", utc(2025, 1, 8, 11), utc(2025, 1, 8, 13))
    noon_to_two = Override("carol", utc(2025, 1, 8, 12), utc(2025, 1, 8, 14))  # touches, no overlap
    later = Override("dave", utc(2025, 1, 8, 15), utc(2025, 1, 8, 16))
    schedule = Schedule("s", layers=(PRIMARY,), overrides=(eleven_to_one, ten_to_noon, noon_to_two, later))
    assert overlapping_overrides(schedule) == (
        OverrideOverlap(eleven_to_one, ten_to_noon, utc(2025, 1, 8, 11), utc(2025, 1, 8, 12)),
        OverrideOverlap(eleven_to_one, noon_to_two, utc(2025, 1, 8, 12), utc(2025, 1, 8, 13)),
    )
    assert overlapping_overrides(SUPPORT) == ()


# --- validation -------------------------------------------------------------------------------

NAIVE = datetime(2025, 1, 6, 9)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Rotation("", ("alice",), WEEK_ONE, "weekly"),
        lambda: Rotation("r", (), WEEK_ONE, "weekly"),
        lambda: Rotation("r", ("alice", ""), WEEK_ONE, "weekly"),
        lambda: Rotation("r", ("alice",), NAIVE, "weekly"),
        lambda: Rotation("r", ("alice",), WEEK_ONE, timedelta(0)),
        lambda: Rotation("r", ("alice",), WEEK_ONE, "monthly"),  # type: ignore[arg-type]
        lambda: Rotation("r", ("alice",), WEEK_ONE, "weekly", tz="Mars/Olympus_Mons"),
        lambda: Rotation("r", ("alice",), WEEK_ONE, "weekly", end=WEEK_ONE),
        lambda: Override("alice", WEDNESDAY, WEDNESDAY),
        lambda: Override("alice", NAIVE, WEDNESDAY),
        lambda: OutOfOffice("", WEEK_ONE, WEDNESDAY),
        lambda: Schedule("s", layers=(PRIMARY, PRIMARY)),
        lambda: Schedule("", layers=(PRIMARY,)),
    ],
)
def test_bad_definitions_are_config_errors(build: Callable[[], object]) -> None:
    with pytest.raises(ConfigError):
        build()


def test_naive_instants_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        resolve(SUPPORT, NAIVE)
    with pytest.raises(ValueError, match="timezone-aware"):
        shifts(SUPPORT, NAIVE, WEDNESDAY)


# --- properties -------------------------------------------------------------------------------

ZONES = [NEW_YORK, LONDON, "Australia/Lord_Howe", "UTC"]
PEOPLE = ["alice", "bob", "carol", "dave", "erin"]
FIRST, LAST = datetime(2024, 1, 1), datetime(2025, 12, 31)
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Hand-off times from 04:00 on are clear of every DST change in ZONES, so the oracle below, which
# reads local clocks and never resolves a wall time, applies exactly.
SAFE_HANDOFF = st.builds(time, st.integers(4, 23), st.sampled_from([0, 15, 30, 45]))


@st.composite
def rotations(draw: st.DrawFn, name: str = "r", *, may_end: bool = False) -> Rotation:
    members = tuple(draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=4)))
    kind = draw(st.sampled_from(["daily", "weekly", "fixed"]))
    tz = draw(st.sampled_from(ZONES))
    if kind == "fixed":
        start = draw(st.datetimes(FIRST, LAST, timezones=st.just(UTC)))
        length = draw(st.integers(30, 72 * 60).map(lambda m: timedelta(minutes=m)))
        rotation = Rotation(name, members, start, length, tz=tz)
    else:
        day = draw(st.dates(FIRST.date(), LAST.date()))
        start = wall_clock_instant(day, draw(SAFE_HANDOFF), ZoneInfo(tz))
        rotation = Rotation(name, members, start, "daily" if kind == "daily" else "weekly", tz=tz)
    if may_end and draw(st.booleans()):
        end = rotation.start + draw(st.timedeltas(H, timedelta(days=60)))
        rotation = Rotation(name, members, rotation.start, rotation.shift, tz=tz, end=end)
    return rotation


def expected_index(rotation: Rotation, at: datetime) -> int | None:
    """Independent oracle: count hand-offs by reading local calendars and clocks."""
    if isinstance(rotation.shift, timedelta):
        return None if at < rotation.start else (at - rotation.start) // rotation.shift
    zone = ZoneInfo(rotation.tz)
    now, anchor = at.astimezone(zone), rotation.start.astimezone(zone)
    days = (now.date() - anchor.date()).days - (now.time() < anchor.time())
    return None if days < 0 else days // (1 if rotation.shift == "daily" else 7)


@PROPERTY
@given(rotation=rotations(), offset=st.timedeltas(-10 * DAY, 400 * DAY))
def test_every_instant_resolves_to_exactly_the_member_on_shift(rotation: Rotation, offset: timedelta) -> None:
    at = rotation.start + offset
    result = resolve(one_layer(rotation), at)
    k = expected_index(rotation, at)
    if k is None:
        assert result.person is None
        assert result.trail == (Step(Source.LAYER, NOBODY, None, "r"),)
    else:
        assert result.person == rotation.members[k % len(rotation.members)]
        assert result.trail == (Step(Source.LAYER, CHOSEN, result.person, "r"),)


@PROPERTY
@given(rotation=rotations(), k=st.integers(0, 500))
def test_each_shift_starts_exactly_at_its_hand_off(rotation: Rotation, k: int) -> None:
    begins = rotation.handoff(k)
    assert rotation.shift_index(begins) == k
    assert rotation.shift_index(begins - timedelta(microseconds=1)) == (None if k == 0 else k - 1)
    assert resolve(one_layer(rotation), begins).person == rotation.member(k)


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    count = draw(st.integers(1, 3))
    layers = tuple(draw(rotations(f"layer{i}", may_end=True)) for i in range(count))
    overrides = tuple(draw(st.lists(overrides_near(layers[0].start), max_size=4)))
    return Schedule("generated", layers=layers, overrides=overrides)


def overrides_near(anchor: datetime) -> st.SearchStrategy[Override]:
    return st.builds(
        lambda person, begin, length: Override(person, anchor + begin, anchor + begin + length),
        st.sampled_from(PEOPLE),
        st.timedeltas(-5 * DAY, 40 * DAY),
        st.timedeltas(timedelta(minutes=1), 10 * DAY),
    )


@PROPERTY
@given(schedule=schedules(), data=st.data())
def test_shifts_tile_the_range_and_agree_with_resolve(schedule: Schedule, data: st.DataObject) -> None:
    begin = schedule.layers[0].start + data.draw(st.timedeltas(-3 * DAY, 30 * DAY))
    length = data.draw(st.timedeltas(timedelta(0), 20 * DAY))
    found = shifts(schedule, begin, begin + length)
    if length == timedelta(0):
        assert found == ()
        return
    assert found[0].start == begin
    assert found[-1].end == begin + length
    assert all(a.end == b.start for a, b in pairwise(found))
    assert all(shift.start < shift.end for shift in found)
    for _ in range(5):
        at = begin + data.draw(st.timedeltas(timedelta(0), length - timedelta(microseconds=1)))
        [shift] = [s for s in found if s.start <= at < s.end]
        result = resolve(schedule, at)
        assert result.person == shift.person
        if result.chosen is not None:
            assert (result.chosen.source, result.chosen.layer) == (shift.source, shift.layer)


CHANGE_WINDOWS = {
    NEW_YORK: [
        (datetime(2024, 3, 1), datetime(2024, 3, 20)),
        (datetime(2024, 10, 25), datetime(2024, 11, 13)),
    ],
    LONDON: [(datetime(2024, 3, 22), datetime(2024, 4, 10)), (datetime(2024, 10, 18), datetime(2024, 11, 6))],
}


@PROPERTY
@given(
    tz=st.sampled_from(sorted(CHANGE_WINDOWS)),
    spring=st.booleans(),
    weekly=st.booleans(),
    anchor_day=st.dates(date(2023, 6, 1), date(2024, 2, 1)),
    handoff=SAFE_HANDOFF,
    members=st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3),
)
def test_calendar_hand_offs_keep_their_local_wall_time_across_dst(
    tz: str, spring: bool, weekly: bool, anchor_day: date, handoff: time, members: list[str]
) -> None:
    zone = ZoneInfo(tz)
    start = wall_clock_instant(anchor_day, handoff, zone)
    rotation = Rotation("r", tuple(members), start, "weekly" if weekly else "daily", tz=tz)
    first, last = CHANGE_WINDOWS[tz][0 if spring else 1]
    found = shifts(one_layer(rotation), first.replace(tzinfo=zone), last.replace(tzinfo=zone))
    instants = boundaries(found)
    cuts = [b.astimezone(zone) for b in instants]
    step = 7 if weekly else 1
    assert cuts, "a window of 19 days holds hand-offs"
    assert {cut.time() for cut in cuts} == {handoff}
    assert {cut.weekday() for cut in cuts} <= ({anchor_day.weekday()} if weekly else set(range(7)))
    assert all((b.date() - a.date()).days == step for a, b in pairwise(cuts))
    # Real lengths (in UTC: subtracting two New York times would give wall-clock hours): the
    # shift holding the change is an hour shorter or longer.
    lengths = Counter(b - a for a, b in pairwise(instants))
    changed = step * 24 * H + (-H if spring else H)
    assert lengths[changed] == 1
    assert set(lengths) == {step * 24 * H, changed} or (weekly and set(lengths) == {changed})


@PROPERTY
@given(schedule=schedules(), data=st.data())
def test_overrides_win(schedule: Schedule, data: st.DataObject) -> None:
    assume(schedule.overrides)
    chosen = data.draw(st.sampled_from(schedule.overrides))
    at = chosen.start + data.draw(
        st.timedeltas(timedelta(0), chosen.end - chosen.start - timedelta(microseconds=1))
    )
    winner = [o for o in schedule.overrides if o.start <= at < o.end][-1]
    result = resolve(schedule, at)
    assert result.person == winner.person
    assert result.trail == (Step(Source.OVERRIDE, CHOSEN, winner.person),)


@PROPERTY
@given(schedule=schedules(), data=st.data())
def test_never_pages_someone_out_of_office(schedule: Schedule, data: st.DataObject) -> None:
    at = schedule.layers[0].start + data.draw(st.timedeltas(-2 * DAY, 40 * DAY))
    ooo = data.draw(st.lists(overrides_near(at - 2 * DAY), max_size=8))
    leave = [OutOfOffice(o.person, o.start, o.end) for o in ooo]
    fallback = data.draw(st.lists(st.sampled_from([*PEOPLE, "lead", "manager"]), max_size=3))
    gone = {entry.person for entry in leave if entry.start <= at < entry.end}
    result = resolve(schedule, at, ooo=leave, fallback=fallback)
    *skipped, last = result.trail or (None,)
    assert all(step.outcome in {OOO, NOBODY} for step in skipped)
    assert all(step.person in gone for step in result.trail if step.outcome is OOO)
    if result.person is None:
        assert set(fallback) <= gone
    else:
        assert result.person not in gone
        assert last == result.chosen
    scheduled = resolve(schedule, at).person
    if scheduled is not None and scheduled not in gone:
        assert result.person == scheduled  # being away elsewhere changes nothing


@PROPERTY
@given(overrides=st.lists(overrides_near(utc(2025, 1, 1)), max_size=8))
def test_overlapping_overrides_match_checking_every_pair(overrides: list[Override]) -> None:
    schedule = Schedule("s", layers=(PRIMARY,), overrides=tuple(overrides))
    expected = Counter(
        (a, b, max(a.start, b.start), min(a.end, b.end))
        for i, a in enumerate(overrides)
        for b in overrides[i + 1 :]
        if max(a.start, b.start) < min(a.end, b.end)
    )
    found = overlapping_overrides(schedule)
    assert Counter((o.first, o.second, o.start, o.end) for o in found) == expected
    assert [o.start for o in found] == sorted(o.start for o in found)
