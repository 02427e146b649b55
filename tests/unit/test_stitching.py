"""handler.stitching: decoded segments numbered onto the original timeline (no model)."""

from __future__ import annotations

from handler.decoding import Decoded
from handler.stitching import Placed, Timeline
from handler.transcript import Word

RESULT = Decoded(segments=[], temperature=0.2, avg_logprob=-0.3, compression_ratio=1.4,
                 no_speech_prob=0.05)  # fmt: skip


def placed(start: float, end: float, words: list[Word] | None = None) -> Placed:
    return Placed(start, end, " text", [1, 2], words or [], seek=320, result=RESULT)


def test_segments_are_numbered_in_order_and_never_overlap() -> None:
    timeline = Timeline(10.0, keep_words=False)
    first = timeline.number(placed(0.5, 2.0))
    second = timeline.number(placed(1.8, 3.0))  # starts before the first ends: moved up
    third = timeline.number(placed(9.5, 11.0))  # past the audio's end: clamped
    assert [(s.id, s.start, s.end) for s in (first, second, third)] == [
        (0, 0.5, 2.0),
        (1, 2.0, 3.0),
        (2, 9.5, 10.0),
    ]
    assert (first.seek, first.temperature, first.avg_logprob, first.no_speech_prob) == (
        320,
        0.2,
        -0.3,
        0.05,
    )
    assert first.compression_ratio == 1.4


def test_words_stay_in_order_inside_their_segment_and_only_when_asked() -> None:
    words = [
        Word(1.0, 1.4, " one", 0.9),
        Word(1.3, 1.2, " two", 0.8),
        Word(1.5, 2.6, " three", 0.7),
    ]
    kept = Timeline(10.0, keep_words=True).number(placed(1.0, 2.0, words))
    assert [(w.start, w.end) for w in kept.words] == [(1.0, 1.4), (1.4, 1.4), (1.5, 2.6)]
    assert kept.end == 2.6  # a segment ends no earlier than its last word
    dropped = Timeline(10.0, keep_words=False).number(placed(1.0, 2.0, words))
    assert dropped.words == []


def test_times_are_kept_to_the_millisecond() -> None:
    segment = Timeline(10.0, keep_words=False).number(placed(1.23456, 2.34567))
    assert (segment.start, segment.end) == (1.235, 2.346)
