"""handler.decoding with the real tokenizer and features: how tokens become segments, what
counts as a repetition loop, how a short window is padded."""

from __future__ import annotations

import numpy as np
import pytest

from handler.audio import SAMPLE_RATE
from handler.decoding import WindowDecoder, _Attempt
from handler.engine import Engine


@pytest.fixture(scope="module")
def decoder(engine: Engine) -> WindowDecoder:
    return engine.decoder()


def timestamp(decoder: WindowDecoder, seconds: float) -> int:
    begin: int = decoder.tokenizer.timestamp_begin  # faster-whisper's tokenizer is untyped
    return begin + round(seconds / 0.02)


def attempt(tokens: list[int], seconds: float = 30.0) -> _Attempt:
    return _Attempt(tokens, avg_logprob=-0.2, no_speech_prob=0.01, compression_ratio=1.5,
                    temperature=0.0, seconds=seconds)  # fmt: skip


def test_timestamps_split_segments_and_text_after_the_last_one_is_kept(
    decoder: WindowDecoder,
) -> None:
    """faster-whisper's batched pipeline dropped the words after a window's last timestamp."""
    encode = decoder.tokenizer.encode
    tokens = [
        timestamp(decoder, 0.0),
        *encode(" Good morning everyone."),
        timestamp(decoder, 2.4),
        timestamp(decoder, 3.0),
        *encode(" The budget is ready."),
        timestamp(decoder, 5.5),
        timestamp(decoder, 6.1),
        *encode(" And one more thing"),
    ]

    decoded = decoder._segments(attempt(tokens), duration=9.0)

    assert [(s.start, s.end, s.text) for s in decoded.segments] == [
        (0.0, 2.4, " Good morning everyone."),
        (3.0, 5.5, " The budget is ready."),
        (6.1, 9.0, " And one more thing"),
    ]


def test_a_sentence_said_twice_is_not_a_loop_but_a_runaway_repetition_is(
    decoder: WindowDecoder,
) -> None:
    from handler.decoding import compression_ratio

    twice = " I'm Abigail Claflin, you can call me Abbie." * 2
    runaway = " Thank you." * 80
    said_twice = attempt(decoder.tokenizer.encode(twice), seconds=12.0)
    said_twice.compression_ratio = compression_ratio(twice)
    looping = attempt(decoder.tokenizer.encode(runaway), seconds=12.0)
    looping.compression_ratio = compression_ratio(runaway)

    assert said_twice.compression_ratio > 1.5 and not said_twice.looping
    assert looping.looping and looping.needs_fallback()


def test_a_short_window_is_padded_with_silence(decoder: WindowDecoder) -> None:
    """Zeros are not silence in Whisper's normalised log-mel; padding the audio is."""
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal(5 * SAMPLE_RATE)).astype(np.float32)

    features = decoder.features(audio)

    assert features.shape == (80, 3000)
    padding = features[:, 600:]
    assert np.allclose(padding, features.min())  # the floor: what silence maps to
    assert features.min() < -0.5 < features[:, :400].mean()
