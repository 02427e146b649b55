"""handler.stores.rate_limits: the GCRA arithmetic, with times given (no clock, no table).

The store's conditional writes are exercised against DynamoDB Local in
``tests/integration/test_rate_limits.py``; here, what a bucket answers at a given moment."""

from __future__ import annotations

import pytest

from handler.stores.rate_limits import (
    MICROS,
    RateLimitState,
    admitted,
    emission_interval,
    latest_tat,
    refused,
)

START = 1_700_000_000 * MICROS + 123_456  # any moment: no minute boundary matters


def take(tat: int | None, now: int, rpm: int) -> tuple[int | None, RateLimitState]:
    """One request through a bucket as the store's two conditional writes decide it: counted
    if ``max(tat, now) + T`` stays within reach, otherwise refused and the tat unchanged."""
    proposed = max(tat or 0, now) + emission_interval(rpm)
    if proposed - emission_interval(rpm) <= latest_tat(now, rpm):
        return proposed, admitted(rpm, now, proposed)
    assert tat is not None
    return tat, refused(rpm, now, tat)


@pytest.mark.parametrize(
    ("rpm", "interval"), [(1, 60_000_000), (3, 20_000_000), (60, 1_000_000), (7, 8_571_428)]
)
def test_each_request_costs_a_minute_over_rpm(rpm: int, interval: int) -> None:
    assert emission_interval(rpm) == interval


def test_a_full_bucket_admits_rpm_requests_then_refuses_with_the_exact_wait() -> None:
    tat: int | None = None
    states = []
    for _ in range(4):
        tat, state = take(tat, START, 3)
        states.append(state)
    assert [(s.allowed, s.remaining, s.reset_micros) for s in states] == [
        (True, 2, 20_000_000),
        (True, 1, 40_000_000),
        (True, 0, 60_000_000),
        (False, 0, 60_000_000),
    ]
    refusal = states[-1]
    assert refusal.wait_micros == 20_000_000
    assert (refusal.retry_after, refusal.retry_after_ms) == (20, 20_000)


def test_waiting_the_advertised_time_is_exactly_enough() -> None:
    tat: int | None = None
    for _ in range(3):
        tat, _ = take(tat, START, 3)
    _, refusal = take(tat, START, 3)
    _, too_early = take(tat, START + refusal.wait_micros - 1, 3)
    assert not too_early.allowed and too_early.wait_micros == 1
    _, on_time = take(tat, START + refusal.wait_micros, 3)
    assert on_time.allowed and on_time.remaining == 0


def test_a_bucket_refills_continuously() -> None:
    tat: int | None = None
    for _ in range(3):
        tat, _ = take(tat, START, 3)
    # 50 s later two and a half requests have refilled: two fit, the third does not.
    later = START + 50 * MICROS
    tat, first = take(tat, later, 3)
    tat, second = take(tat, later, 3)
    _, third = take(tat, later, 3)
    assert (first.allowed, first.remaining) == (True, 1)
    assert (second.allowed, second.remaining) == (True, 0)
    assert not third.allowed and third.wait_micros == 10 * MICROS


def test_an_idle_bucket_is_full() -> None:
    _, state = take(START - 3600 * MICROS, START, 60)
    assert (state.allowed, state.remaining, state.reset_micros) == (True, 59, 1_000_000)
    assert state.reset_seconds == 1.0


@pytest.mark.parametrize(
    ("wait_micros", "seconds", "milliseconds"),
    [
        (0, 1, 1),  # never "retry after 0"
        (1, 1, 1),
        (999, 1, 1),
        (1_000, 1, 1),
        (1_001, 1, 2),
        (1_000_000, 1, 1000),
        (1_000_001, 2, 1001),
        (59_000_000, 59, 59_000),
        (60_000_000, 59, 59_999),  # capped below 60 s (the Vercel AI SDK ignores 60 and more)
        (600_000_000, 59, 59_999),
    ],
)
def test_retry_after_rounds_up_and_stays_under_a_minute(
    wait_micros: int, seconds: int, milliseconds: int
) -> None:
    state = RateLimitState(1, False, 0, 0, wait_micros=wait_micros)
    assert (state.retry_after, state.retry_after_ms) == (seconds, milliseconds)
