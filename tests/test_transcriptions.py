"""POST /v1/audio/transcriptions over HTTP with the real model: formats and shapes."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SPEECH_TEXT, Caller
from tests.support.text import word_error_rate

SRT_CUE = re.compile(
    r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+?)\n", re.S
)
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+?)\n")


def post(client: TestClient, caller: Caller, audio: Path, **fields: object):  # type: ignore[no-untyped-def]
    data = {"model": "whisper-1", **fields}
    with audio.open("rb") as handle:
        return client.post(
            "/v1/audio/transcriptions",
            headers=caller.headers,
            files={"file": (audio.name, handle)},
            data=data,
        )


def _ms(h: str, m: str, s: str, ms: str) -> int:
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def assert_monotonic_cues(times: list[tuple[int, int]], duration_ms: int) -> None:
    assert times, "no cues"
    previous_end = 0
    for start, end in times:
        assert previous_end <= start <= end <= duration_ms + 500


def test_json_contains_the_spoken_words(client, caller, speech_wav):
    response = post(client, caller, speech_wav)
    assert response.status_code == 200, response.text
    body = response.json()
    assert word_error_rate(SPEECH_TEXT, body["text"]) <= 0.25
    assert body["language"] == "en"
    assert 2.0 < body["duration"] < 6.0
    assert body["usage"] == {"type": "duration", "seconds": math.ceil(body["duration"])}
    assert response.headers["x-request-id"]
    assert int(response.headers["openai-processing-ms"]) >= 0


def test_mp3_decodes_like_wav(client, caller, speech_mp3):
    response = post(client, caller, speech_mp3)
    assert response.status_code == 200, response.text
    assert word_error_rate(SPEECH_TEXT, response.json()["text"]) <= 0.25


def test_verbose_json_has_openai_segment_fields_and_words(client, caller, speech_wav):
    response = post(
        client,
        caller,
        speech_wav,
        response_format="verbose_json",
        **{"timestamp_granularities[]": ["word", "segment"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "transcribe"
    assert body["language"] == "english"
    segment_fields = {
        "id", "seek", "start", "end", "text", "tokens", "temperature",
        "avg_logprob", "compression_ratio", "no_speech_prob",
    }  # fmt: skip
    assert body["segments"] and set(body["segments"][0]) == segment_fields
    assert [s["id"] for s in body["segments"]] == list(range(len(body["segments"])))
    words = body["words"]
    assert len(words) >= 6
    assert all(w["start"] <= w["end"] for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    spoken = " ".join(w["word"] for w in words)
    assert word_error_rate(SPEECH_TEXT, spoken) <= 0.25


def test_verbose_json_without_word_granularity_has_no_words(client, caller, speech_wav):
    response = post(client, caller, speech_wav, response_format="verbose_json")
    assert response.status_code == 200
    assert "words" not in response.json()


def test_bare_timestamp_granularities_field_is_accepted(client, caller, speech_wav):
    response = post(
        client,
        caller,
        speech_wav,
        response_format="verbose_json",
        timestamp_granularities="word",
    )
    assert response.status_code == 200, response.text
    assert response.json()["words"]


def test_text_is_plain(client, caller, speech_wav):
    response = post(client, caller, speech_wav, response_format="text")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert word_error_rate(SPEECH_TEXT, response.text) <= 0.25


def test_srt_is_a_valid_subtitle_file(client, caller, speech_wav):
    response = post(client, caller, speech_wav, response_format="srt")
    assert response.status_code == 200
    cues = SRT_CUE.findall(response.text)
    assert [int(c[0]) for c in cues] == list(range(1, len(cues) + 1))
    assert_monotonic_cues([(_ms(*c[1:5]), _ms(*c[5:9])) for c in cues], 6000)
    assert word_error_rate(SPEECH_TEXT, " ".join(c[9] for c in cues)) <= 0.25


def test_vtt_is_a_valid_subtitle_file(client, caller, speech_wav):
    response = post(client, caller, speech_wav, response_format="vtt")
    assert response.status_code == 200
    assert response.text.startswith("WEBVTT\n\n")
    cues = VTT_CUE.findall(response.text)
    assert_monotonic_cues([(_ms(*c[0:4]), _ms(*c[4:8])) for c in cues], 6000)
    assert word_error_rate(SPEECH_TEXT, " ".join(c[8] for c in cues)) <= 0.25


@pytest.mark.parametrize("alias", ["openai/whisper-tiny-en", "whisper-tiny-en", "tiny.en"])
def test_model_aliases_are_accepted(client, caller, speech_wav, alias):
    assert post(client, caller, speech_wav, model=alias).status_code == 200


def test_prompt_and_temperature_are_accepted(client, caller, speech_wav):
    response = post(client, caller, speech_wav, prompt="Quick brown fox.", temperature="0.2")
    assert response.status_code == 200
    assert word_error_rate(SPEECH_TEXT, response.json()["text"]) <= 0.3


def test_models_endpoints(client, caller):
    listed = client.get("/v1/models", headers=caller.headers).json()
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["openai/whisper-tiny-en"]
    one = client.get("/v1/models/openai/whisper-tiny-en", headers=caller.headers)
    assert one.status_code == 200 and one.json()["object"] == "model"
    assert client.get("/v1/models/whisper-1", headers=caller.headers).status_code == 200
    missing = client.get("/v1/models/gpt-4o", headers=caller.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"


def test_health_needs_no_key(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_openapi_docs_are_served(client):
    schema = client.get("/openapi.json").json()
    assert "/v1/audio/transcriptions" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_error_bodies_never_leak_internals(client, caller, speech_wav):
    body = json.dumps(post(client, caller, speech_wav, model="nope").json())
    assert "Traceback" not in body and "handler/" not in body


def test_long_audio_goes_through_the_batched_pipeline(settings, audio_dir):
    from handler.audio import decode_audio
    from handler.engine import Engine
    from handler.transcript import TranscribeOptions
    from tests.support.audio import SPEECH_SENTENCES, speak

    text = " ".join(SPEECH_SENTENCES * 2)
    audio = decode_audio(str(speak(text, audio_dir / "long.wav")), max_seconds=60)
    engine = Engine(settings.model_copy(update={"batched_min_seconds": 5.0}))

    transcript = engine.transcribe(audio.samples, TranscribeOptions())

    assert engine._batched is not None  # the batched pipeline did the work
    assert word_error_rate(text, transcript.text) <= 0.25
    starts = [segment.start for segment in transcript.segments]
    assert starts == sorted(starts) and transcript.segments[-1].end <= audio.duration + 0.5
