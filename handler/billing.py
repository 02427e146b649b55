"""Money arithmetic in integer micro-USD (1 USD = 1,000,000): no floats touch a balance."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICRO_PER_USD = 1_000_000
BASIS_POINTS = 10_000


def billable_seconds(duration: float, increment_seconds: int = 1) -> int:
    """Audio seconds billed: the duration rounded up to whole increments (8.47 s -> 9 s).

    The duration is measured to the nearest millisecond first, as it is reported: one
    sample at 16 kHz (0.0625 ms) of resampler rounding or float noise past 10.000 s does
    not bill 11 s, and 10.001 s does. Any audio at all bills one increment.
    """
    milliseconds = max(round(duration * 1000), 1) if duration > 0 else 0
    increment_ms = increment_seconds * 1000
    return -(-milliseconds // increment_ms) * increment_seconds


def cost_micro_usd(seconds: int, price_micro_usd_per_minute: int) -> int:
    """Price of ``seconds`` of audio, rounded up to the next micro-USD."""
    return -(-seconds * price_micro_usd_per_minute // 60)


def split_top_up(paid_micro_usd: int, fee_basis_points: int) -> tuple[int, int]:
    """``(fee, credit)`` of a top-up: the fee rounds half up, the rest is credited."""
    fee = (paid_micro_usd * fee_basis_points + BASIS_POINTS // 2) // BASIS_POINTS
    return fee, paid_micro_usd - fee


def usd_to_micro(amount: str | int | Decimal) -> int:
    """Parse a USD amount such as ``"10"`` or ``"0.25"``; at most six decimals, not negative."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount of USD: {amount!r}") from exc
    micro = value * MICRO_PER_USD
    if not value.is_finite() or value < 0 or micro != micro.to_integral_value():
        raise ValueError(f"USD amounts are positive with at most 6 decimals: {amount!r}")
    return int(micro)


def micro_to_usd(micro: int) -> str:
    """``1234567`` -> ``"1.234567"``: exact, for display."""
    return str((Decimal(micro) / MICRO_PER_USD).quantize(Decimal("0.000001")))
