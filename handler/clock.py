"""Time as the service reads it: one injectable clock, and ISO strings for stored times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Seconds since the epoch, as :func:`time.time` (the default everywhere); tests inject
their own to cross minute boundaries, refill buckets and expire records without sleeping."""


def iso_time(seconds: float) -> str:
    """``seconds`` since the epoch as ISO 8601 in UTC, to the millisecond (sorts as time)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
