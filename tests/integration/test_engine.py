"""handler.engine with the real model: long conversations keep every sentence in every
format, times land where the words were spoken, and audio without speech stays empty."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from handler.audio import SAMPLE_RATE, decode_audio
from handler.config import Settings
from handler.engine import Engine, ModelUnavailable
from handler.transcript import Segment, TranscribeOptions
from tests.integration.conftest import Caller
from tests.support.audio import SPEECH_SENTENCES, write_wav
from tests.support.conversation import (
    NON_SPEECH,
    Conversation,
    conversation,
    hum,
    music,
    non_speech,
    pink,
    synthesize,
    white,
)
from tests.support.http import Response
from tests.support.money import assert_money_invariants
from tests.support.text import missing_sentences, word_error_rate
from tests.support.uploads import post_audio

TOLERANCE = 0.7
"""Seconds a word's or a segment's time may be off where its speech was placed (tiny.en's
word alignment is good to about a third of a second on these voices)."""
TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d{3})"
CUE = re.compile(rf"{TIME} --> {TIME}\n(.+?)\n(?:\n|$)", re.S)
"""One SRT or VTT cue: start, end, text (the last cue ends the file)."""


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    return conversation(tmp_path_factory.mktemp("conversation"))


def post(client: TestClient, caller: Caller, audio: Path, **fields: str) -> Response:
    return post_audio(client, caller.headers, audio, fields)


def cues(body: str) -> list[tuple[float, float, str]]:
    found = []
    for match in CUE.finditer(body):
        h1, m1, s1, ms1, h2, m2, s2, ms2, text = match.groups()
        start = int(h1) * 3600 + int(m1) * 60 + int(s1) + int(ms1) / 1000
        end = int(h2) * 3600 + int(m2) * 60 + int(s2) + int(ms2) / 1000
        found.append((start, end, text))
    return found


def timed_pieces(response_format: str, body: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each segment or cue; empty for the untimed formats."""
    if response_format in ("srt", "vtt"):
        found = cues(body)
        assert len(found) == body.count(" --> "), "a cue the pattern does not read"
        return found
    if response_format == "verbose_json":
        return [(s["start"], s["end"], s["text"]) for s in json.loads(body)["segments"]]
    return []


def assert_in_order(times: list[tuple[float, float]], duration: float) -> None:
    previous_end = 0.0
    for start, end in times:
        assert previous_end <= start <= end <= duration + 0.01, (previous_end, start, end)
        previous_end = end


def silences(talk: Conversation) -> list[tuple[float, float]]:
    """Gaps between the placed sentences longer than 2 s (the 10 s one among them)."""
    gaps = [(a.end, b.start) for a, b in zip(talk.sentences, talk.sentences[1:], strict=False)]
    return [(start, end) for start, end in gaps if end - start > 2]


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt", "verbose_json"])
def test_every_sentence_of_a_conversation_is_in_every_format(
    response_format: str, client: TestClient, caller: Caller, services, talk: Conversation
) -> None:
    """Four voices, one-word turns, pauses of 0.3-3 s, a turn across 20 s and 30 s, 10 s of
    silence in the middle, a one-word turn at the very end."""
    response = post(client, caller, talk.path, response_format=response_format)
    assert response.status_code == 200, response.text
    body = response.text
    pieces = timed_pieces(response_format, body)
    if response_format in ("json", "verbose_json"):
        text = json.loads(body)["text"]
    elif response_format == "text":
        text = body
    else:
        text = " ".join(piece for _, _, piece in pieces)

    assert missing_sentences([s.text for s in talk.sentences], text) == []
    if response_format in ("srt", "vtt", "verbose_json"):
        assert_in_order([(start, end) for start, end, _ in pieces], talk.seconds)
        for start, end, piece in pieces:
            for quiet_from, quiet_to in silences(talk):
                inside = min(end, quiet_to - TOLERANCE) - max(start, quiet_from + TOLERANCE)
                assert inside <= 0, f"{piece!r} ({start}-{end}) spans the pause"
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_words_are_timed_where_they_were_spoken(
    client: TestClient, caller: Caller, talk: Conversation
) -> None:
    response = post(
        client,
        caller,
        talk.path,
        response_format="verbose_json",
        **{"timestamp_granularities[]": "word"},
    )
    assert response.status_code == 200, response.text
    words = response.json()["words"]

    assert_in_order([(w["start"], w["end"]) for w in words], talk.seconds)
    for word in words:
        assert any(
            s.start - TOLERANCE <= word["start"] and word["end"] <= s.end + TOLERANCE
            for s in talk.sentences
        ), f"{word} is not where any sentence was spoken"
    # Each sentence's first word starts close to where the sentence was placed.
    starts = [w["start"] for w in words]
    for sentence in talk.sentences:
        assert min(abs(start - sentence.start) for start in starts) <= TOLERANCE, sentence


@pytest.fixture(scope="module")
def talk_samples(talk: Conversation) -> np.ndarray:
    return decode_audio(str(talk.path), max_seconds=600).samples


def test_stream_yields_segments_in_order_before_the_end(
    settings: Settings, engine: Engine, talk_samples: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One window per batch: the first segment comes out after the first batch, long before
    the last; ids count from 0; transcribe() is the same segments."""
    streaming = Engine(settings.model_copy(update={"batch_size": 1}))
    streaming._model = engine.model()  # the loaded model, shared
    decoder = streaming.decoder()
    batches: list[int] = []
    real_decode = decoder.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        batches.append(len(args[0]))
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(decoder, "decode", counting_decode)
    stream: Iterator[Segment] = streaming.stream(talk_samples, TranscribeOptions())
    first = next(stream)
    batches_for_first = len(batches)
    rest = list(stream)

    assert first.id == 0 and first.start < 5
    assert batches_for_first == 1 < len(batches)
    segments = [first, *rest]
    assert [s.id for s in segments] == list(range(len(segments)))
    assert_in_order([(s.start, s.end) for s in segments], len(talk_samples) / SAMPLE_RATE)
    whole = streaming.transcribe(talk_samples, TranscribeOptions())
    assert [(s.start, s.end, s.text) for s in whole.segments] == [
        (s.start, s.end, s.text) for s in segments
    ]


@pytest.mark.parametrize("name", sorted(NON_SPEECH))
def test_audio_without_speech_gives_no_segments(
    name: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = non_speech(name, tmp_path_factory.mktemp("non-speech"))
    samples = decode_audio(str(path), max_seconds=120).samples

    transcript = engine.transcribe(samples, TranscribeOptions(word_timestamps=True))

    assert transcript.segments == [] and transcript.text == ""
    assert transcript.duration == pytest.approx(NON_SPEECH[name][1], abs=0.01)


SPEECH_AND_NOISE = (
    ("speech", "Please call Stella and ask her to bring these things with her from the store."),
    ("noise", (pink(-35), 20.0)),
    ("speech", "We also need a small plastic snake and a big toy frog for the kids."),
    ("noise", (music(-20, 0.3), 15.0)),
    ("speech", "Okay."),
    ("noise", (hum(60, -25), 12.0)),
    ("speech", "She can scoop these things into three red bags."),
    ("noise", (lambda n, rng: np.zeros(n, np.float32), 25.0)),
    ("speech", "When the sunlight strikes raindrops in the air, they act as a prism."),
    ("noise", (white(-50), 8.0)),
)


def test_speech_between_long_stretches_of_noise_keeps_its_words_and_only_them(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("speech-and-noise")
    rng = np.random.default_rng(5)
    parts: list[np.ndarray] = []
    spoken: list[tuple[str, float, float]] = []
    quiet: list[tuple[float, float]] = []
    position = 0
    for kind, what in SPEECH_AND_NOISE:
        if kind == "speech":
            assert isinstance(what, str)
            audio = synthesize(what, "en-us", workdir)
            spoken.append((what, position / SAMPLE_RATE, (position + len(audio)) / SAMPLE_RATE))
        else:
            assert not isinstance(what, str)
            signal, seconds = what
            audio = signal(round(seconds * SAMPLE_RATE), rng)
            quiet.append((position / SAMPLE_RATE, (position + len(audio)) / SAMPLE_RATE))
        parts.append(audio)
        position += len(audio)
    samples = decode_audio(
        str(write_wav(workdir / "speech-and-noise.wav", np.concatenate(parts))), max_seconds=600
    ).samples

    transcript = engine.transcribe(samples, TranscribeOptions(word_timestamps=True))

    assert missing_sentences([text for text, _, _ in spoken], transcript.text) == []
    for segment in transcript.segments:
        for word in segment.words:
            for start, end in quiet:
                inside = min(word.end, end - TOLERANCE) - max(word.start, start + TOLERANCE)
                assert inside <= 0, f"{word} lies in the non-speech at {start}-{end}"


@pytest.mark.parametrize(
    ("text", "level"),
    [("Please call Stella and ask her to bring these things.", -45), ("Okay.", -20)],
    ids=["quiet-sentence", "one-word"],
)
def test_quiet_or_short_speech_is_transcribed(
    text: str, level: float, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.support.conversation import at_level

    speech = at_level(synthesize(text, "en-gb+f3", tmp_path_factory.mktemp("quiet")), level)
    samples = np.concatenate([np.zeros(SAMPLE_RATE * 4), speech, np.zeros(SAMPLE_RATE * 6)])

    transcript = engine.transcribe(samples.astype(np.float32), TranscribeOptions())

    assert missing_sentences([text], transcript.text, share=0.75) == []


def test_stream_yields_the_segments_transcribe_returns(
    engine: Engine, two_sentences_wav: Path
) -> None:
    audio = decode_audio(str(two_sentences_wav), max_seconds=60)
    options = TranscribeOptions()

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
