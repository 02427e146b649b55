"""handler.billing: integer micro-USD arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from handler.billing import (
    billable_seconds,
    cost_micro_usd,
    micro_to_usd,
    split_top_up,
    usd_to_micro,
)


@pytest.mark.parametrize(
    ("duration", "increment", "seconds"),
    [
        (0.0, 1, 0),  # no audio, no bill
        (-1.0, 1, 0),
        (0.0001, 1, 1),  # any audio at all bills one increment
        (0.0004, 1, 1),  # under half a millisecond still counts
        (1.0, 1, 1),
        (8.47, 1, 9),
        (10.0, 1, 10),
        (10.0 + 1 / 16_000, 1, 10),  # one sample of resampler noise past 10 s is not 11 s
        (10.0004, 1, 10),  # rounds to 10.000 s
        (10.0006, 1, 11),  # rounds to 10.001 s
        (10.001, 1, 11),
        (59.999, 15, 60),
        (60.0, 15, 60),
        (60.001, 15, 75),
        (1.0, 15, 15),
    ],
)
def test_billable_seconds_round_up_to_whole_increments(
    duration: float, increment: int, seconds: int
) -> None:
    assert billable_seconds(duration, increment) == seconds


@pytest.mark.parametrize(
    ("seconds", "price", "micro"),
    [
        (0, 4000, 0),
        (60, 4000, 4000),  # one minute at $0.004
        (1, 4000, 67),  # 66.67 rounds up
        (3, 4000, 200),
        (4, 4000, 267),  # 266.67 rounds up
        (7, 6000, 700),
        (1, 1, 1),  # a 60th of a micro-USD is still one micro-USD
        (61, 0, 0),  # free
    ],
)
def test_cost_rounds_up_to_the_next_micro_usd(seconds: int, price: int, micro: int) -> None:
    assert cost_micro_usd(seconds, price) == micro


@pytest.mark.parametrize(
    ("paid", "basis_points", "fee", "credit"),
    [
        (10_000_000, 500, 500_000, 9_500_000),  # $10 at 5%
        (1, 500, 0, 1),  # 0.05 rounds down
        (10, 500, 1, 9),  # 0.5 rounds half up
        (29, 500, 1, 28),  # 1.45
        (30, 500, 2, 28),  # 1.5
        (1_000_000, 0, 0, 1_000_000),
        (1_000_000, 10_000, 1_000_000, 0),
    ],
)
def test_top_up_fee_rounds_half_up_and_the_rest_is_credited(
    paid: int, basis_points: int, fee: int, credit: int
) -> None:
    assert split_top_up(paid, basis_points) == (fee, credit)


@pytest.mark.parametrize(
    ("amount", "micro"),
    [("10", 10_000_000), ("0.25", 250_000), ("0.000001", 1), (3, 3_000_000),
     (Decimal("1.5"), 1_500_000), ("0", 0), ("1e2", 100_000_000)],
)  # fmt: skip
def test_usd_amounts_parse_exactly(amount: str | int | Decimal, micro: int) -> None:
    assert usd_to_micro(amount) == micro


@pytest.mark.parametrize(
    ("amount", "says"),
    [("-3", "positive"), ("0.0000001", "6 decimals"), ("NaN", "positive"),
     ("Infinity", "positive"), ("ten", "not an amount"), ("", "not an amount")],
)  # fmt: skip
def test_bad_usd_amounts_are_refused(amount: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        usd_to_micro(amount)


@pytest.mark.parametrize(
    ("micro", "text"),
    [(1_234_567, "1.234567"), (0, "0.000000"), (1, "0.000001"), (10_000_000, "10.000000")],
)
def test_micro_usd_display_is_exact(micro: int, text: str) -> None:
    assert micro_to_usd(micro) == text
