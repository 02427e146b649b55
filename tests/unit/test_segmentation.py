"""handler.segmentation's arithmetic on hand-made speech probabilities (no Silero, no audio):
how speech spans are found and padded, how a long one is cut, how spans pack into windows.
Silero itself is exercised on real audio in ``tests/integration/test_segmentation.py``."""

from __future__ import annotations

import numpy as np
import pytest

from handler.audio import SAMPLE_RATE
from handler.segmentation import (
    FRAME_SAMPLES,
    Span,
    Window,
    pause_seconds,
    plan_windows,
    speech_mask,
    speech_spans,
    split_long,
)
from handler.transcript import VadOptions


def scores(frames: int, *speech: tuple[int, int], level: float = 0.9) -> np.ndarray:
    """Probabilities per 32 ms frame: ``level`` on the frames ``[first, last)`` of each
    ``speech`` pair, 0 elsewhere."""
    probabilities = np.zeros(frames, dtype=np.float32)
    for first, last in speech:
        probabilities[first:last] = level
    return probabilities


def frame(index: int) -> int:
    return index * FRAME_SAMPLES


def test_one_stretch_of_speech_is_padded_and_kept_inside_the_audio() -> None:
    probabilities = scores(100, (10, 40))
    spans = speech_spans(probabilities, frame(100), VadOptions(prefix_padding_ms=100))
    assert spans == [Span(frame(10) - 1600, frame(40) + 1600)]
    # 400 ms of padding reaches past the start: cut at sample 0.
    assert speech_spans(probabilities, frame(100), VadOptions()) == [Span(0, frame(40) + 6400)]


def test_padding_between_close_spans_meets_in_the_middle() -> None:
    probabilities = scores(100, (10, 40), (60, 90))
    spans = speech_spans(probabilities, frame(100), VadOptions(prefix_padding_ms=400))
    # 20 frames (10,240 samples) apart: each side gets half, not 6,400.
    assert spans == [Span(0, frame(50)), Span(frame(50), frame(100))]  # the end: cut


def test_a_short_pause_stays_inside_the_speech() -> None:
    # 9 frames (288 ms) of silence are under silence_duration_ms (300): one span.
    probabilities = scores(100, (10, 40), (49, 80))
    spans = speech_spans(probabilities, frame(100), VadOptions(prefix_padding_ms=0))
    assert spans == [Span(frame(10), frame(80))]
    # With 200 ms enough to end speech, the same pause splits it.
    split = VadOptions(prefix_padding_ms=0, silence_duration_ms=200)
    assert speech_spans(probabilities, frame(100), split) == [
        Span(frame(10), frame(40)),
        Span(frame(49), frame(80)),
    ]


def test_a_click_shorter_than_the_minimum_speech_is_dropped() -> None:
    # 4 frames = 128 ms < min_speech_duration_ms (150); 5 frames = 160 ms is kept.
    options = VadOptions(prefix_padding_ms=0)
    assert speech_spans(scores(100, (10, 14)), frame(100), options) == []
    assert speech_spans(scores(100, (10, 15)), frame(100), options) == [Span(frame(10), frame(15))]


def test_speech_until_the_end_ends_at_the_last_sample() -> None:
    spans = speech_spans(scores(100, (90, 100)), frame(100) - 7, VadOptions(prefix_padding_ms=0))
    assert spans == [Span(frame(90), frame(100) - 7)]


def test_hysteresis_keeps_speech_going_between_the_two_thresholds() -> None:
    probabilities = scores(100, (10, 80))
    probabilities[30:60] = 0.4  # under 0.5 but not under 0.35: still speech
    options = VadOptions(prefix_padding_ms=0)
    assert speech_spans(probabilities, frame(100), options) == [Span(frame(10), frame(80))]
    strict = VadOptions(threshold=0.95, prefix_padding_ms=0)
    assert speech_spans(probabilities, frame(100), strict) == []


def test_a_long_span_is_cut_in_the_middle_of_its_longest_pause() -> None:
    probabilities = scores(60, (0, 60))
    probabilities[20:26] = 0.0  # the longest pause: cut at its middle frame, 22 (or 23)
    probabilities[40] = 0.0  # a shorter one
    pieces = split_long(Span(0, frame(60)), probabilities, frame(50), frame(10), 0.5)
    assert pieces == [Span(0, frame(22)), Span(frame(22), frame(60))]


def test_without_a_pause_the_cut_is_at_the_least_likely_frame() -> None:
    probabilities = scores(60, (0, 60))
    probabilities[33] = 0.4  # not a pause (over 0.35), but the lowest score
    pieces = split_long(Span(0, frame(60)), probabilities, frame(50), frame(10), 0.5)
    assert pieces == [Span(0, frame(33)), Span(frame(33), frame(60))]


def test_a_span_that_fits_is_not_cut() -> None:
    probabilities = scores(60, (0, 60))
    assert split_long(Span(0, frame(50)), probabilities, frame(50), frame(10), 0.5) == [
        Span(0, frame(50))
    ]


def test_spans_pack_into_windows_with_lookahead_on_all_but_the_last() -> None:
    second = SAMPLE_RATE
    spans = [Span(0, 10 * second), Span(12 * second, 22 * second), Span(25 * second, 40 * second)]
    probabilities = scores(1300, (0, 1300))
    windows = plan_windows(spans, probabilities, 30.0, 10.0, 0.5, lookahead_seconds=1.5)
    assert windows == [
        Window((spans[0], spans[1]), lookahead=Span(22 * second, int(23.5 * second))),
        Window((spans[2],)),
    ]
    assert [w.seconds for w in windows] == [20.0, 15.0]


def test_a_mask_marks_every_10_ms_of_a_window_as_speech_or_not() -> None:
    probabilities = scores(10, (2, 4))
    mask = speech_mask(Window((Span(0, frame(6)),)), probabilities, 0.5)
    # 6 frames of 512 samples = 192 ms: 20 marks (the last partial); frames 2-3 are speech.
    expected = [(i * 160) // FRAME_SAMPLES in (2, 3) for i in range(20)]
    assert mask.tolist() == expected


@pytest.mark.parametrize(
    ("sample", "seconds"),
    [(frame(12), 10 * FRAME_SAMPLES / SAMPLE_RATE), (frame(5), 0.0), (frame(99) + 5, 0.064)],
)
def test_a_pause_is_measured_around_a_sample(sample: int, seconds: float) -> None:
    probabilities = scores(100, (0, 10), (20, 98))  # quiet: frames 10-19 and 98-99
    assert pause_seconds(probabilities, sample, 0.5) == seconds


def test_a_window_maps_its_times_back_to_the_original_timeline() -> None:
    # 1 s of audio from 1 s, then 1 s from 5 s (3 s of silence left out between them).
    window = Window((Span(16_000, 32_000), Span(80_000, 96_000)), lookahead=Span(96_000, 98_000))

    assert window.seconds == 2.0
    assert window.span_at(0.5) == 0 and window.span_at(1.5) == 1
    assert window.span_at(1.0) == 1 and window.span_at(1.0, end=True) == 0
    assert window.to_original(0.5, 0) == 1.5
    assert window.to_original(1.25, 1) == 5.25
    assert window.to_original(1.25, 0) == 2.0  # kept inside the span it was placed in
    rest = window.part(0.75)
    assert rest is not None and rest.spans == (Span(28_000, 32_000), Span(80_000, 96_000))
    assert rest.lookahead == window.lookahead
    middle = window.part(0.5, 1.5)
    assert middle is not None and middle.spans == (Span(24_000, 32_000), Span(80_000, 88_000))
    assert middle.lookahead is None
    assert len(window.audio(np.arange(100_000, dtype=np.float32))) == 34_000
