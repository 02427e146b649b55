"""handler.engine: what needs no model (the temperature schedule)."""

from __future__ import annotations

import pytest

from handler.engine import temperature_schedule


@pytest.mark.parametrize(
    ("temperature", "schedule"),
    [
        (None, (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)),  # Whisper's own fallback
        (0.0, (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)),
        (0.2, (0.2, 0.4, 0.6, 0.8, 1.0)),
        (0.3, (0.3, 0.5, 0.7, 0.9)),  # steps of 0.2 from the client's, never past 1
        (0.5, (0.5, 0.7, 0.9)),
        (0.9, (0.9,)),
        (1.0, (1.0,)),
    ],
)
def test_fallback_starts_at_the_clients_temperature(
    temperature: float | None, schedule: tuple[float, ...]
) -> None:
    assert temperature_schedule(temperature) == schedule
