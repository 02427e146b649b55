"""POST /v1/audio/transcriptions over HTTP with the real model: formats and shapes."""

from __future__ import annotations

import json
import math
import re
import wave
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from handler.api import create_app
from handler.services import Services
from tests.integration.conftest import SPEECH_TEXT, Caller
from tests.support.engines import RecordingEngine
from tests.support.http import Response
from tests.support.text import word_error_rate
from tests.support.uploads import post_audio

SRT_CUE = re.compile(
    r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+?)\n", re.S
)
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+?)\n")


def post(client: TestClient, caller: Caller, audio: Path, **fields: object) -> Response:
    return post_audio(client, caller.headers, audio, fields)


def _ms(h: str, m: str, s: str, ms: str) -> int:
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def wav_ms(path: Path) -> int:
    """The length of a WAV file in whole milliseconds, rounded up."""
    with wave.open(str(path), "rb") as audio:
        return math.ceil(audio.getnframes() * 1000 / audio.getframerate())


def assert_monotonic_cues(times: list[tuple[int, int]], duration_ms: int) -> None:
    """Cues in order: each starts no earlier than the previous one ends, none is reversed,
    none ends past the audio."""
    assert times, "no cues"
    previous_end = 0
    for start, end in times:
        assert previous_end <= start <= end <= duration_ms, (previous_end, start, end)
        previous_end = end


def test_json_contains_the_spoken_words(client, caller, speech_wav):
    response = post(client, caller, speech_wav)
    assert response.status_code == 200, response.text
    body = response.json()
    assert word_error_rate(SPEECH_TEXT, body["text"]) <= 0.25
    assert body["language"] == "en"
    assert 2.0 < body["duration"] < 6.0
    assert body["usage"] == {"type": "duration", "seconds": math.ceil(body["duration"])}
    assert response.headers["x-request-id"]
    # The server's time is part of what this client waited: a whole number of ms, no more.
    processing_ms = response.headers["openai-processing-ms"]
    assert processing_ms.isdigit(), processing_ms
    assert int(processing_ms) <= response.elapsed.total_seconds() * 1000 + 1


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
    assert_monotonic_cues([(_ms(*c[1:5]), _ms(*c[5:9])) for c in cues], wav_ms(speech_wav))
    assert word_error_rate(SPEECH_TEXT, " ".join(c[9] for c in cues)) <= 0.25


def test_vtt_is_a_valid_subtitle_file(client, caller, speech_wav):
    response = post(client, caller, speech_wav, response_format="vtt")
    assert response.status_code == 200
    assert response.text.startswith("WEBVTT\n\n")
    cues = VTT_CUE.findall(response.text)
    assert_monotonic_cues([(_ms(*c[0:4]), _ms(*c[4:8])) for c in cues], wav_ms(speech_wav))
    assert word_error_rate(SPEECH_TEXT, " ".join(c[8] for c in cues)) <= 0.25


@pytest.mark.parametrize("alias", ["openai/whisper-tiny-en", "whisper-tiny-en", "tiny.en"])
def test_model_aliases_are_accepted(client, caller, speech_wav, alias):
    assert post(client, caller, speech_wav, model=alias).status_code == 200


def test_prompt_and_temperature_reach_the_engine(settings, engine, caller, speech_wav):
    recording = RecordingEngine(engine)
    app = create_app(Services.from_settings(settings, recording))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = post(client, caller, speech_wav, prompt="Quick brown fox.", temperature="0.2")
    assert response.status_code == 200, response.text
    assert word_error_rate(SPEECH_TEXT, response.json()["text"]) <= 0.3
    [options] = recording.options
    assert (options.initial_prompt, options.temperature) == ("Quick brown fox.", 0.2)


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


@pytest.fixture(scope="module")
def non_speech_files(audio_dir: Path) -> dict[str, Path]:
    """30 s of digital silence as issue 11 made it (ffmpeg's anullsrc), and other kinds of
    audio without speech in other containers."""
    import subprocess

    from tests.support.audio import convert
    from tests.support.conversation import non_speech

    silence = audio_dir / "anullsrc.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "anullsrc=r=16000:cl=mono", "-t", "30", str(silence)],
        check=True,
    )  # fmt: skip
    return {
        "digital-silence.wav": silence,
        "room-noise.mp3": convert(non_speech("pink-noise-50dBFS", audio_dir), audio_dir / "n.mp3"),
        "music.flac": convert(non_speech("music-fast", audio_dir), audio_dir / "music.flac"),
        "hum.ogg": convert(non_speech("hum-50Hz", audio_dir), audio_dir / "hum.ogg"),
    }


@pytest.mark.parametrize("name", ["digital-silence.wav", "room-noise.mp3", "music.flac", "hum.ogg"])
@pytest.mark.parametrize("response_format", ["json", "verbose_json", "srt"])
def test_audio_without_speech_is_empty_and_billed_for_its_length(
    client, make_caller, services, non_speech_files, name, response_format
):
    """Issue 11: silence came back as "You", quiet noise as runs of dots."""
    from handler.audio import decode_audio
    from handler.billing import billable_seconds, cost_micro_usd
    from tests.support.money import assert_money_invariants

    caller = make_caller(credit_micro_usd=1_000_000)
    path = non_speech_files[name]
    seconds = billable_seconds(decode_audio(str(path), max_seconds=120).duration)

    response = post(client, caller, path, response_format=response_format)

    assert response.status_code == 200, response.text
    if response_format == "json":
        body = response.json()
        assert body["text"] == "" and body["usage"] == {"type": "duration", "seconds": seconds}
    elif response_format == "verbose_json":
        assert response.json()["segments"] == [] and response.json()["text"] == ""
    else:
        assert response.text.strip() == ""
    cost = cost_micro_usd(seconds, services.settings.price_micro_usd_per_minute)
    assert response.headers["x-tinyscribe-cost-micro-usd"] == str(cost)
    wallet = services.wallets.get(caller.key.wallet_id)
    assert wallet.balance == 1_000_000 - cost
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_model_is_loaded_on_a_thread_that_is_gone_afterwards(settings, monkeypatch):
    """The thread that builds a CTranslate2 model keeps an OpenMP team while it lives, which
    made every transcription about a third slower; the engine loads on a short-lived one."""
    import threading

    import faster_whisper

    from handler.engine import Engine

    real_model = faster_whisper.WhisperModel
    loaders: list[threading.Thread] = []

    def recording_model(*args: object, **kwargs: object) -> object:
        loaders.append(threading.current_thread())
        return real_model(*args, **kwargs)

    monkeypatch.setattr(faster_whisper, "WhisperModel", recording_model)
    engine = Engine(settings)
    engine.model()

    assert engine.loaded and len(loaders) == 1
    assert loaders[0] is not threading.current_thread()
    assert not loaders[0].is_alive()


def test_missing_model_answers_503_and_charges_nothing(
    settings, engine, make_caller, speech_wav, tmp_path
):
    from handler.api import create_app
    from handler.engine import Engine
    from handler.services import Services

    broken = Engine(settings.model_copy(update={"model_dir": tmp_path / "no-model-here"}))
    caller = make_caller(credit_micro_usd=1_000_000)
    with TestClient(create_app(Services.from_settings(settings, broken))) as client:
        response = post(client, caller, speech_wav)
        wallet = client.get("/v1/wallet", headers=caller.headers).json()

    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    error = response.json()["error"]
    assert error["code"] == "model_unavailable" and "Traceback" not in error["message"]
    assert wallet["balance_micro_usd"] == 1_000_000
