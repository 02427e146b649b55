"""handler.streaming: OpenAI's transcription events, rendered as server-sent events."""

from __future__ import annotations

import json

from handler.errors import InsufficientCredits
from handler.streaming import delta_event, done_event, error_event, segment_event, sse
from handler.transcript import Segment


def test_a_delta_carries_the_added_text() -> None:
    assert delta_event(" Hello") == {"type": "transcript.text.delta", "delta": " Hello"}


def test_a_segment_event_names_the_segment_and_rounds_its_times() -> None:
    segment = Segment(3, 0, 1.23456, 4.5678, " Hi.", [1, 2], 0.0, -0.2, 1.0, 0.01)
    assert segment_event(segment) == {
        "type": "transcript.text.segment",
        "id": "seg_3",
        "start": 1.23,
        "end": 4.57,
        "text": " Hi.",
    }


def test_done_carries_the_text_and_the_billed_seconds() -> None:
    assert done_event("Hello there.", 4) == {
        "type": "transcript.text.done",
        "text": "Hello there.",
        "usage": {"type": "duration", "seconds": 4},
    }


def test_an_error_event_is_the_envelope_with_a_type() -> None:
    assert error_event(InsufficientCredits("Top up.")) == {
        "type": "error",
        "error": {
            "message": "Top up.",
            "type": "insufficient_credits",
            "param": None,
            "code": "insufficient_credits",
        },
    }


def test_an_event_is_one_data_line_of_json() -> None:
    event = delta_event("line one\nline two, café")
    encoded = sse(event)
    assert encoded == (
        b'data: {"type": "transcript.text.delta", "delta": "line one\\nline two, caf\xc3\xa9"}\n\n'
    )
    assert json.loads(encoded.removeprefix(b"data: ")) == event
