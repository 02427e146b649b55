"""handler.segmentation with the real Silero VAD: where speech is found, how it is cut."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from handler.audio import SAMPLE_RATE, decode_audio
from handler.segmentation import (
    FRAME_SAMPLES,
    FRAMES_PER_RUN,
    Span,
    plan_windows,
    speech_probabilities,
    speech_spans,
)
from handler.transcript import VadOptions
from tests.support.conversation import (
    NON_SPEECH,
    Signal,
    at_level,
    non_speech,
    pink,
    synthesize,
    white,
)

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "She can scoop these things into three red bags, and we will go meet her Wednesday.",
    "When the sunlight strikes raindrops in the air, they act as a prism.",
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("segmentation")


def spans_of(samples: np.ndarray, options: VadOptions | None = None) -> list[Span]:
    return speech_spans(speech_probabilities(samples), len(samples), options or VadOptions())


def seconds(samples: float) -> float:
    return samples / SAMPLE_RATE


@pytest.mark.parametrize("name", sorted(NON_SPEECH))
def test_audio_without_speech_has_no_speech_spans(name: str, workdir: Path) -> None:
    samples = decode_audio(str(non_speech(name, workdir)), max_seconds=120).samples

    assert spans_of(samples) == []


@pytest.mark.parametrize(
    ("level", "noise"),
    [(-12, None), (-30, None), (-48, None), (-25, white(-45)), (-25, pink(-38))],
    ids=["loud", "quiet", "very-quiet", "over-white-noise", "over-pink-noise"],
)
def test_speech_is_found_at_any_level(level: float, noise: Signal | None, workdir: Path) -> None:
    speech = at_level(synthesize(SENTENCES[1], "en-us", workdir), level)
    samples = np.concatenate([np.zeros(SAMPLE_RATE * 2), speech, np.zeros(SAMPLE_RATE * 2)])
    if noise is not None:
        samples = samples + noise(len(samples), np.random.default_rng(3))
    spans = spans_of(samples.astype(np.float32))

    assert spans, "no speech found"
    assert spans[0].start <= 2 * SAMPLE_RATE
    assert spans[-1].end >= 2 * SAMPLE_RATE + len(speech)
    assert sum(span.length for span in spans) < len(speech) + 2 * SAMPLE_RATE


@pytest.mark.parametrize("word", ["Yes.", "Okay.", "No."])
def test_a_one_word_turn_is_speech(word: str, workdir: Path) -> None:
    speech = synthesize(word, "en-gb+f3", workdir)
    samples = np.concatenate([np.zeros(SAMPLE_RATE * 3), speech, np.zeros(SAMPLE_RATE * 3)])

    spans = spans_of(samples.astype(np.float32))

    assert len(spans) == 1
    assert spans[0].start <= 3 * SAMPLE_RATE <= 3 * SAMPLE_RATE + len(speech) <= spans[0].end


def test_probabilities_are_faster_whispers_computed_in_pieces(workdir: Path) -> None:
    """More than one ONNX run, with the LSTM state carried over: the same numbers as
    faster-whisper's one-shot call (but for the last frame, whose last 64 samples its call
    zeroes in place while building the contexts)."""
    from faster_whisper.vad import get_vad_model

    speech = np.concatenate([synthesize(s, "en-us", workdir) for s in SENTENCES])
    repeats = -(-FRAMES_PER_RUN * FRAME_SAMPLES * 2 // len(speech))
    samples = np.tile(speech, repeats)[: FRAMES_PER_RUN * FRAME_SAMPLES * 2 + 1000]

    ours = speech_probabilities(samples)
    padded = np.pad(samples, (0, FRAME_SAMPLES - len(samples) % FRAME_SAMPLES))
    theirs = get_vad_model()(padded).reshape(-1)

    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours[:-1], theirs[:-1], atol=1e-4)


def continuous_speech(workdir: Path, gap: float, rounds: int) -> np.ndarray:
    pieces = []
    for index in range(rounds):
        for sentence in SENTENCES:
            pieces.append(synthesize(sentence, ("en-us", "en-gb")[index % 2], workdir))
            pieces.append(np.zeros(round(gap * SAMPLE_RATE), dtype=np.float32))
    return np.concatenate(pieces)


@pytest.mark.parametrize("gap", [0.12, 0.5], ids=["one-breath", "sentence-pauses"])
def test_windows_fit_whisper_and_cut_only_in_pauses(gap: float, workdir: Path) -> None:
    """Speech for 80 s with only short pauses (one span when they are under the silence
    that ends speech): every window holds at most ``max_seconds``, 30 s with its lookahead,
    and every cut falls where Silero hears no speech."""
    samples = continuous_speech(workdir, gap, rounds=3)
    probabilities = speech_probabilities(samples)
    options = VadOptions()
    spans = speech_spans(probabilities, len(samples), options)

    windows = plan_windows(spans, probabilities, 24.0, 10.0, options.threshold, 1.5)

    assert len(windows) >= 4
    for window in windows:
        assert window.samples <= 24 * SAMPLE_RATE
        assert len(window.audio(samples)) <= 30 * SAMPLE_RATE
    for before, after in itertools.pairwise(windows):
        cut = after.first_sample
        assert before.spans[-1].end <= cut, "windows overlap"
        if before.spans[-1].end == cut:  # cut inside speech that goes on: in a pause
            assert probabilities[cut // FRAME_SAMPLES] < options.threshold
    covered = sum(window.samples for window in windows)
    assert covered >= sum(span.length for span in spans)


def test_silence_between_spans_is_shortened_to_their_padding(workdir: Path) -> None:
    speech = synthesize(SENTENCES[0], "en-us", workdir)
    samples = np.concatenate([speech, np.zeros(SAMPLE_RATE * 8), speech]).astype(np.float32)
    probabilities = speech_probabilities(samples)
    options = VadOptions(prefix_padding_ms=300)
    spans = speech_spans(probabilities, len(samples), options)

    [window] = plan_windows(spans, probabilities, 24.0, 10.0, options.threshold)

    assert len(spans) == 2
    assert seconds(spans[1].start - spans[0].end) > 7
    assert window.samples < len(samples) - 7 * SAMPLE_RATE
