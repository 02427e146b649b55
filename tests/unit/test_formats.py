"""handler.formats: the five response formats rendered from hand-built transcripts."""

from __future__ import annotations

import json

import pytest

from handler.formats import format_timestamp, render, render_translation
from handler.transcript import Granularity, Segment, Transcript, Word

SEGMENTS: tuple[Granularity, ...] = ("segment",)
"""timestamp_granularities[]=segment (a bare tuple literal would be inferred as tuple[str])."""


def segment(index: int, start: float, end: float, text: str, words: list[Word] = []) -> Segment:  # noqa: B006
    return Segment(
        id=index, seek=0, start=start, end=end, text=text, tokens=[50364 + index],
        temperature=0.0, avg_logprob=-0.25, compression_ratio=1.1, no_speech_prob=0.01,
        words=words,
    )  # fmt: skip


TWO = Transcript(
    duration=3661.5004,
    segments=[
        segment(0, 0.0, 1.234, " Hello there.", [Word(0.0, 0.5, " Hello", 0.9),
                                                  Word(0.5, 1.234, " there.", 0.8)]),
        segment(1, 3599.9996, 3661.5, " Bye, now.", [Word(3600.0, 3661.5, " Bye, now.", 0.7)]),
    ],
)  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "marker", "text"),
    [
        (0.0, ",", "00:00:00,000"),
        (1.2344, ",", "00:00:01,234"),
        (1.2346, ".", "00:00:01.235"),
        (59.9996, ",", "00:01:00,000"),  # carries into the minute, never ":60"
        (3599.9996, ".", "01:00:00.000"),
        (3661.5, ",", "01:01:01,500"),
        (360_000.0, ",", "100:00:00,000"),
        (-0.2, ",", "00:00:00,000"),
    ],
)
def test_timestamps_are_computed_from_whole_milliseconds(
    seconds: float, marker: str, text: str
) -> None:
    assert format_timestamp(seconds, marker) == text


def test_json_has_text_language_duration_and_usage() -> None:
    rendered = render(TWO, "json", 3662)
    assert rendered.media_type == "application/json"
    assert json.loads(rendered.body) == {
        "text": "Hello there. Bye, now.",
        "language": "en",
        "duration": 3661.5,
        "usage": {"type": "duration", "seconds": 3662},
    }


def test_text_is_the_stripped_transcript_and_a_newline() -> None:
    rendered = render(TWO, "text", 3662)
    assert (rendered.body, rendered.media_type) == (
        "Hello there. Bye, now.\n",
        "text/plain; charset=utf-8",
    )


def test_srt_numbers_cues_from_one_with_commas() -> None:
    rendered = render(TWO, "srt", 3662)
    assert rendered.media_type == "application/x-subrip; charset=utf-8"
    assert rendered.body == (
        "1\n00:00:00,000 --> 00:00:01,234\nHello there.\n"
        "\n"
        "2\n01:00:00,000 --> 01:01:01,500\nBye, now.\n"
    )


def test_vtt_has_its_header_and_dots() -> None:
    rendered = render(TWO, "vtt", 3662)
    assert rendered.media_type == "text/vtt; charset=utf-8"
    assert rendered.body == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.234\nHello there.\n"
        "\n"
        "01:00:00.000 --> 01:01:01.500\nBye, now.\n"
    )


def test_verbose_json_has_segments_always_and_words_when_asked() -> None:
    plain = json.loads(render(TWO, "verbose_json", 3662, SEGMENTS).body)
    assert list(plain) == ["task", "language", "duration", "text", "segments", "usage"]
    assert plain["task"] == "transcribe" and plain["language"] == "english"
    assert plain["duration"] == 3661.5
    assert plain["segments"][0] == {
        "id": 0, "seek": 0, "start": 0.0, "end": 1.23, "text": " Hello there.",
        "tokens": [50364], "temperature": 0.0, "avg_logprob": -0.25,
        "compression_ratio": 1.1, "no_speech_prob": 0.01,
    }  # fmt: skip
    assert plain["segments"][1]["start"] == 3600.0

    worded = json.loads(render(TWO, "verbose_json", 3662, ("word", "segment")).body)
    assert worded["words"] == [
        {"word": "Hello", "start": 0.0, "end": 0.5},
        {"word": "there.", "start": 0.5, "end": 1.23},
        {"word": "Bye, now.", "start": 3600.0, "end": 3661.5},
    ]
    assert worded["usage"] == {"type": "duration", "seconds": 3662}


def test_non_ascii_text_is_sent_as_is() -> None:
    body = render(Transcript(1.0, [segment(0, 0.0, 1.0, " Café, naïve 日本")]), "json", 1).body
    assert "Café, naïve 日本" in body


def test_a_transcript_of_nothing_renders_empty_in_every_format() -> None:
    nothing = Transcript(30.0, [])

    assert json.loads(render(nothing, "json", 30, SEGMENTS).body)["text"] == ""
    assert render(nothing, "text", 30, SEGMENTS).body == "\n"
    assert render(nothing, "srt", 30, SEGMENTS).body == ""
    assert render(nothing, "vtt", 30, SEGMENTS).body == "WEBVTT\n\n"
    verbose = json.loads(render(nothing, "verbose_json", 30, ("word", "segment")).body)
    assert verbose["segments"] == [] and verbose["words"] == [] and verbose["text"] == ""


def test_translations_use_openais_smaller_shapes() -> None:
    assert json.loads(render_translation(TWO, "json").body) == {"text": "Hello there. Bye, now."}
    verbose = json.loads(render_translation(TWO, "verbose_json").body)
    assert list(verbose) == ["task", "language", "duration", "text", "segments"]
    assert (verbose["task"], verbose["language"], verbose["duration"]) == (
        "translate",
        "english",
        3661.5,
    )
    assert render_translation(TWO, "srt") == render(TWO, "srt", 0)
    # The same duration as a transcription's, to the millisecond.
    short = Transcript(duration=2.7846, segments=[])
    assert json.loads(render_translation(short, "verbose_json").body)["duration"] == 2.785
    assert json.loads(render(short, "verbose_json", 3).body)["duration"] == 2.785
    assert render_translation(TWO, "text").body == "Hello there. Bye, now.\n"
