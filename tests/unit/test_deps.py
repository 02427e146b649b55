"""handler.deps: OpenAI's rate-limit headers from a bucket's state."""

from __future__ import annotations

import pytest

from handler.deps import format_duration, rate_limit_headers
from handler.stores.rate_limits import RateLimitState


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.0004, "0s"), (0.012, "12ms"), (0.85, "850ms"), (1, "1s"), (6.5, "6.5s"),
     (59.9994, "59.999s"), (60, "1m0s"), (61.25, "1m1.25s"), (-1, "0s")],
)  # fmt: skip
def test_reset_times_are_written_as_openai_writes_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_headers_carry_the_limit_what_is_left_and_the_reset() -> None:
    state = RateLimitState(limit=60, allowed=True, remaining=58, reset_micros=2_000_000)
    assert rate_limit_headers(state) == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "58",
        "x-ratelimit-reset-requests": "2s",
    }
