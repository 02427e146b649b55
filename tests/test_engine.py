"""The engine's two entry points (``handler/engine.py``): ``stream`` yields the segments as the
model decodes them, ``transcribe`` is that stream materialised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from handler.audio import decode_audio
from handler.config import Settings
from handler.engine import Engine, ModelUnavailable
from handler.transcript import TranscribeOptions
from tests.support.audio import SPEECH_SENTENCES
from tests.support.text import word_error_rate


def test_stream_yields_the_segments_transcribe_returns(
    engine: Engine, two_sentences_wav: Path
) -> None:
    audio = decode_audio(str(two_sentences_wav), max_seconds=60)
    options = TranscribeOptions(segment_timestamps=True)

    streamed = list(engine.stream(audio.samples, options))
    transcript = engine.transcribe(audio.samples, options)

    assert streamed == transcript.segments
    assert [s.id for s in streamed] == list(range(len(streamed))) and len(streamed) >= 2
    assert [s.start for s in streamed] == sorted(s.start for s in streamed)
    assert word_error_rate(" ".join(SPEECH_SENTENCES), transcript.text) <= 0.3


def test_stream_does_nothing_until_the_first_segment_is_asked_for(
    settings: Settings, tmp_path: Path
) -> None:
    """So a caller can start it and learn of a missing model from the first segment."""
    engine = Engine(settings.model_copy(update={"model_dir": str(tmp_path / "nowhere")}))
    segments = engine.stream(np.zeros(16_000, dtype=np.float32), TranscribeOptions())
    assert not engine.loaded
    with pytest.raises(ModelUnavailable):
        next(segments)
