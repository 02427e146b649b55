"""No silently ignored parameter: every field of OpenAI's transcription spec is honoured or
refused with a 400 naming it, fields in no spec are refused, and the real clients' request
shapes (openai-python sync and async, LiteLLM, curl) still work.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from handler.services import Services
from tests.integration.conftest import SPEECH_TEXT, Caller
from tests.support.audio import convert
from tests.support.http import Response
from tests.support.money import assert_money_invariants
from tests.support.text import word_error_rate
from tests.support.uploads import post_audio

CREDIT = 1_000_000
LEADING_SILENCE_S = 6.0


def sdk(server: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=secret, max_retries=0)


def post(
    client: TestClient, caller: Caller, audio: Path, data: dict[str, str] | list[tuple[str, str]]
) -> Response:
    """A transcription request with ``data``'s fields (a list of pairs may repeat a name)."""
    return post_audio(client, caller.headers, audio, data)


def assert_refused(response: Response, param: str, code: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)
    return error


def assert_not_charged(services: Services, caller: Caller) -> None:
    assert services.wallets.get(caller.key.wallet_id).balance == CREDIT
    assert_money_invariants(services.wallets, caller.key.wallet_id)


@pytest.fixture(scope="module")
def speech_after_silence(audio_dir: Path, speech_wav: Path) -> Path:
    """6 s of silence, then the sentence: where the speech starts is known."""
    delay_ms = int(LEADING_SILENCE_S * 1000)
    return convert(speech_wav, audio_dir / "late-speech.wav", "-af", f"adelay={delay_ms}:all=1")


# ------------------------------------------------ fields of the spec this model cannot honour


@pytest.mark.parametrize(
    ("key", "value", "param", "why"),
    [
        ("include[]", "logprobs", "include", "log-probabilities"),
        ("include", "logprobs", "include", "log-probabilities"),  # LiteLLM's bare list name
        ("keywords[]", "fox", "keywords", "prompt"),
        ("known_speaker_names[]", "agent", "known_speaker_names", "diarization"),
        (
            "known_speaker_references[]",
            "data:audio/wav;base64,UklGRg==",
            "known_speaker_references",
            "diarization",
        ),
    ],
)
def test_unsupported_spec_fields_are_refused_with_the_reason(
    client, caller, services, speech_wav, key, value, param, why
):
    error = assert_refused(
        post(client, caller, speech_wav, {key: value}), param, "unsupported_parameter"
    )
    assert why in error["message"]
    assert_not_charged(services, caller)


def test_diarized_json_is_refused_with_the_reason(client, caller, services, speech_wav):
    response = post(client, caller, speech_wav, {"response_format": "diarized_json"})
    error = assert_refused(response, "response_format", "unsupported_value")
    assert "diarization" in error["message"]
    assert_not_charged(services, caller)


@pytest.mark.parametrize(
    "fields",
    [
        [("languages[]", "fr")],
        [("languages", "de")],
        [("languages[]", "en"), ("languages[]", "es")],
    ],
)
def test_languages_other_than_english_are_refused(client, caller, services, speech_wav, fields):
    assert_refused(post(client, caller, speech_wav, fields), "languages", "unsupported_language")
    assert_not_charged(services, caller)


@pytest.mark.parametrize("key", ["languages[]", "languages"])
def test_english_in_languages_is_honoured(client, caller, speech_wav, key):
    response = post(client, caller, speech_wav, {key: "en"})
    assert response.status_code == 200, response.text
    assert word_error_rate(SPEECH_TEXT, response.json()["text"]) <= 0.25


# ------------------------------------------------------------------ fields in no spec


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("beam_size", "1"),  # faster-whisper-server's extension
        ("vad_filter", "true"),
        ("user", "someone"),
        ("Model", "whisper-1"),  # field names are case-sensitive, as in OpenAI's spec
        ("extra[]", "x"),
    ],
)
def test_unknown_fields_are_refused_by_name(client, caller, services, speech_wav, key, value):
    error = assert_refused(post(client, caller, speech_wav, {key: value}), key, "unknown_parameter")
    assert f"Unknown parameter: '{key}'" in error["message"]
    assert_not_charged(services, caller)


@pytest.mark.parametrize(
    "fields",
    [
        [("response_format", "srt"), ("response_format", "json")],
        [("language", "en"), ("language", "fr")],
        [("chunking_strategy[threshold]", "0.2"), ("chunking_strategy[threshold]", "0.9")],
    ],
)
def test_a_field_that_is_not_a_list_is_taken_once(client, caller, services, speech_wav, fields):
    """Two values for one field: refused, rather than one of them dropped without a word."""
    key = fields[0][0]
    error = assert_refused(post(client, caller, speech_wav, fields), key, "duplicate_parameter")
    assert "send it once" in error["message"]
    assert_not_charged(services, caller)


def test_list_fields_repeat(client, caller, speech_wav):
    fields = [("response_format", "verbose_json"), ("timestamp_granularities[]", "word")]
    fields += [("timestamp_granularities[]", "segment"), ("languages", "en"), ("languages", "en")]
    response = post(client, caller, speech_wav, fields)
    assert response.status_code == 200, response.text
    assert response.json()["words"]


@pytest.mark.parametrize("extra", [{"chunking_strategy": "auto"}, {"beam_size": 1}])
def test_the_jobs_api_refuses_fields_it_does_not_take(client, caller, extra):
    body = {"model": "whisper-1", "file_name": "talk.wav", **extra}
    response = client.post("/v1/audio/transcriptions/jobs", headers=caller.headers, json=body)
    [key] = extra
    assert_refused(response, key, "unknown_parameter")


def test_a_bad_key_with_an_unknown_field_is_still_a_401(client, make_caller, speech_wav):
    """Fields are checked after authentication: a bad key learns nothing about them."""
    stranger = Caller(make_caller().key, "sk-ts-0123456789abcdef-" + "A" * 43)
    response = post(client, stranger, speech_wav, {"beam_size": "1"})
    assert response.status_code == 401


# --------------------------------------------------------------------- chunking_strategy


def test_invalid_chunking_strategy_is_a_400_over_http(client, caller, services, speech_wav):
    spread = {"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "2"}
    response = post(client, caller, speech_wav, spread)
    assert_refused(response, "chunking_strategy", "invalid_value")
    assert_not_charged(services, caller)


def test_strict_vad_hears_no_speech_and_the_audio_is_still_billed(
    client, caller, services, speech_wav
):
    """threshold 1: no frame counts as speech, so nothing is decoded; billing is per second of
    the file, whatever the VAD keeps (as the README says)."""
    strict = json.dumps({"type": "server_vad", "threshold": 1})
    fields = {"chunking_strategy": strict, "response_format": "verbose_json"}
    response = post(client, caller, speech_wav, fields)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "" and body["segments"] == []
    assert int(response.headers["x-tinyscribe-billed-seconds"]) == math.ceil(body["duration"])
    assert services.wallets.get(caller.key.wallet_id).balance < CREDIT
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_python_sdk_server_vad_object_skips_the_leading_silence(
    server, caller, speech_after_silence
):
    """The SDK spreads the object over chunking_strategy[...] fields; the VAD drops the 6 s
    of silence, so the first segment starts where the speech does."""
    with speech_after_silence.open("rb") as audio:
        result = sdk(server, caller.secret).audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            chunking_strategy={"type": "server_vad", "silence_duration_ms": 500},
        )
    assert result.segments
    assert result.segments[0].start >= LEADING_SILENCE_S - 1.0
    assert word_error_rate(SPEECH_TEXT, result.text) <= 0.5  # espeak after silence: rough


def test_curl_json_chunking_strategy_is_honoured(server, caller, speech_after_silence):
    """curl -F chunking_strategy='{"type": "server_vad"}', as OpenAI's docs send it."""
    completed = subprocess.run(
        [
            "curl", "-sS", f"{server}/v1/audio/transcriptions",
            "-H", f"Authorization: Bearer {caller.secret}",
            "-F", f"file=@{speech_after_silence}",
            "-F", "model=whisper-1",
            "-F", "response_format=verbose_json",
            "-F", 'chunking_strategy={"type": "server_vad", "threshold": 0.5}',
        ],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    body = json.loads(completed.stdout)
    assert body["segments"][0]["start"] >= LEADING_SILENCE_S - 1.0
    assert word_error_rate(SPEECH_TEXT, body["text"]) <= 0.5


# --------------------------------------------------------- the real clients' request shapes


def test_python_sdk_with_every_honoured_field(server, caller, speech_wav):
    with speech_wav.open("rb") as audio:
        result = sdk(server, caller.secret).audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            language="en",
            languages=["en"],
            prompt="A sentence about a fox.",
            response_format="verbose_json",
            temperature=0.0,
            timestamp_granularities=["word", "segment"],
            chunking_strategy="auto",
        )
    assert result.words and result.segments
    assert word_error_rate(SPEECH_TEXT, result.text) <= 0.25


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"include": ["logprobs"]}, "include"),
        (
            {"known_speaker_names": ["agent"], "known_speaker_references": ["data:,"]},
            "known_speaker_names",
        ),
        ({"keywords": ["fox"]}, "keywords"),
        ({"response_format": "diarized_json"}, "response_format"),
        ({"extra_body": {"beam_size": 1}}, "beam_size"),
    ],
)
def test_python_sdk_gets_a_bad_request_error_naming_the_field(
    server, caller, speech_wav, extra, param
):
    with speech_wav.open("rb") as audio, pytest.raises(openai.BadRequestError) as refused:
        sdk(server, caller.secret).audio.transcriptions.create(
            model="whisper-1", file=audio, **extra
        )
    assert refused.value.param == param
    assert refused.value.type == "invalid_request_error"


def test_async_python_sdk_shapes(server, caller, speech_mp3):
    async def calls() -> tuple[str, str | None]:
        async with openai.AsyncOpenAI(
            base_url=f"{server}/v1", api_key=caller.secret, max_retries=0
        ) as client:
            with speech_mp3.open("rb") as audio:
                ok = await client.audio.transcriptions.create(
                    model="whisper-1",
                    file=audio,
                    chunking_strategy={"type": "server_vad", "threshold": 0.4},
                )
            with speech_mp3.open("rb") as audio:
                try:
                    await client.audio.transcriptions.create(
                        model="whisper-1", file=audio, include=["logprobs"]
                    )
                except openai.BadRequestError as refused:
                    return ok.text, refused.param
            return ok.text, None

    text, refused_param = asyncio.run(calls())
    assert word_error_rate(SPEECH_TEXT, text) <= 0.25
    assert refused_param == "include"


def test_litellm_request_shape(server, caller, speech_wav):
    """LiteLLM posts its optional params as plain form data: lists under their bare names."""
    data = {
        "model": "whisper-1",
        "language": "en",
        "prompt": "A fox.",
        "response_format": "verbose_json",
        "temperature": "0",
        "timestamp_granularities": ["word", "segment"],
    }
    with speech_wav.open("rb") as audio:
        response = httpx.post(
            f"{server}/v1/audio/transcriptions",
            headers={"Authorization": f"Bearer {caller.secret}"},
            data=data,
            files={"file": ("speech.wav", audio, "audio/wav")},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    assert response.json()["words"]


def test_curl_plain_request(server, caller, speech_mp3):
    completed = subprocess.run(
        [
            "curl", "-sS", "-w", "\n%{http_code}", f"{server}/v1/audio/transcriptions",
            "-H", f"Authorization: Bearer {caller.secret}",
            "-F", f"file=@{speech_mp3}", "-F", "model=whisper-1", "-F", "response_format=text",
        ],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    body, _, status = completed.stdout.rpartition("\n")
    assert status == "200"
    assert word_error_rate(SPEECH_TEXT, body) <= 0.25
