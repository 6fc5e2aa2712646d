"""The outbox's retry wait: exponential backoff with full jitter, or exactly the vendor's Retry-After."""

from __future__ import annotations

import random

import pytest

from baton.engine.outbox import backoff_seconds

# (failed attempt, base, cap, the ceiling of the jitter)
CEILINGS = [
    (1, 1.0, 300.0, 1.0),
    (2, 1.0, 300.0, 2.0),
    (3, 1.0, 300.0, 4.0),
    (9, 1.0, 300.0, 256.0),
    (10, 1.0, 300.0, 300.0),  # 512 capped
    (5, 0.5, 300.0, 8.0),
    (4, 2.0, 10.0, 10.0),  # 16 capped
    (0, 1.0, 300.0, 1.0),  # below 1 counts as 1
    (-3, 1.0, 300.0, 1.0),
    (5_000, 1.0, 300.0, 300.0),  # no overflow however many failures
]


@pytest.mark.parametrize(("attempt", "base", "cap", "ceiling"), CEILINGS)
def test_the_wait_stays_within_zero_and_the_capped_exponential(
    attempt: int, base: float, cap: float, ceiling: float
) -> None:
    rng = random.Random(attempt)
    waits = [backoff_seconds(attempt, base=base, cap=cap, rng=rng) for _ in range(2_000)]
    assert all(0 <= w <= ceiling for w in waits)
    # Full jitter: the whole range is used, not only its top (as "equal jitter" would).
    assert min(waits) < ceiling * 0.05 and max(waits) > ceiling * 0.95


def test_the_ceiling_doubles_per_failure_until_the_cap() -> None:
    spans = []
    for n in range(1, 12):
        rng = random.Random(n)
        spans.append(max(backoff_seconds(n, base=1.0, cap=300.0, rng=rng) for _ in range(3_000)))
    for n, top in enumerate(spans, start=1):
        expected = min(300.0, 2.0 ** (n - 1))
        assert expected * 0.98 <= top <= expected


def test_a_seeded_generator_makes_the_waits_reproducible() -> None:
    first = [backoff_seconds(n, rng=random.Random(42)) for n in range(1, 9)]
    again = [backoff_seconds(n, rng=random.Random(42)) for n in range(1, 9)]
    other = [backoff_seconds(n, rng=random.Random(43)) for n in range(1, 9)]
    assert first == again and first != other
    # The same draw as uniform(0, ceiling) from that generator: no hidden extra randomness.
    assert first[3] == random.Random(42).uniform(0, 8.0)


@pytest.mark.parametrize(
    ("attempt", "retry_after", "spread"), [(1, 30.0, 3.0), (3, 0.5, 0.05), (12, 900.0, 30.0), (2, 7.0, 0.7)]
)
def test_retry_after_is_a_floor_with_a_little_jitter_on_top(
    attempt: int, retry_after: float, spread: float
) -> None:
    waits = [backoff_seconds(attempt, retry_after=retry_after, rng=random.Random(n)) for n in range(2_000)]
    # Never sooner than asked (even above the cap), at most a tenth (30 s at most) later...
    assert min(waits) >= retry_after and max(waits) <= retry_after + spread
    # ...and spread over that span, so the actions one 429 held back do not all return at once.
    assert min(waits) < retry_after + spread * 0.05 and max(waits) > retry_after + spread * 0.95
    assert len(set(waits)) > 1_900


def test_a_retry_after_of_zero_means_now() -> None:
    rng = random.Random(5)
    assert {backoff_seconds(n, retry_after=0.0, rng=rng) for n in range(1, 20)} == {0.0}
    assert rng.random() == random.Random(5).random()  # the generator was not drawn from


def test_negative_settings_are_refused() -> None:
    for bad in ({"base": -1.0}, {"cap": -1.0}, {"retry_after": -5.0}):
        with pytest.raises(ValueError, match="must not be negative"):
            backoff_seconds(1, **bad)
