"""handler.clock: stored times as ISO 8601 strings."""

from __future__ import annotations

from handler.clock import iso_time


def test_times_are_utc_to_the_millisecond() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00.000+00:00"
    assert iso_time(1_700_000_000.1234) == "2023-11-14T22:13:20.123+00:00"


def test_iso_strings_sort_as_time() -> None:
    times = [1_700_000_000.5, 1_699_999_999.999, 1_700_000_060.0, 946_684_800.0]
    assert sorted(iso_time(t) for t in times) == [iso_time(t) for t in sorted(times)]
