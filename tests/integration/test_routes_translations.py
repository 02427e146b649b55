"""POST /v1/audio/translations: OpenAI's translation request and its five response shapes.

tiny.en is English-only: English speech comes back as English text (as whisper-1 does for
English input). Same key, rate limit, billing and error envelope as transcriptions.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from handler.api import create_app
from handler.billing import cost_micro_usd
from handler.services import Services
from tests.integration.conftest import SPEECH_TEXT, Caller, MakeCaller
from tests.support.engines import RecordingEngine
from tests.support.http import Response
from tests.support.money import assert_money_invariants
from tests.support.text import word_error_rate
from tests.support.uploads import TRANSLATIONS, post_audio

# openai-python marks translations.create deprecated (OpenAI announced whisper-1's shutdown for
# 2027-02-26); the endpoint is what this module tests.
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")

SEGMENT_FIELDS = {
    "id", "seek", "start", "end", "text", "tokens", "temperature",
    "avg_logprob", "compression_ratio", "no_speech_prob",
}  # fmt: skip


def sdk(server: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=secret, max_retries=0)


def translate(client: TestClient, caller: Caller, audio: Path, **fields: object) -> Response:
    return post_audio(client, caller.headers, audio, fields, path=TRANSLATIONS)


# ------------------------------------------------------------------ the official SDK


def test_sdk_json_is_text_only(server, caller, speech_wav):
    with speech_wav.open("rb") as audio:
        result = sdk(server, caller.secret).audio.translations.create(model="whisper-1", file=audio)
    assert isinstance(result, openai.types.audio.Translation)
    assert word_error_rate(SPEECH_TEXT, result.text) <= 0.25
    assert result.to_dict() == {"text": result.text}


def test_sdk_verbose_json_says_translate_and_english(server, caller, speech_wav):
    with speech_wav.open("rb") as audio:
        result = sdk(server, caller.secret).audio.translations.create(
            model="whisper-1", file=audio, response_format="verbose_json"
        )
    assert isinstance(result, openai.types.audio.TranslationVerbose)
    body = result.to_dict()
    assert set(body) == {"task", "language", "duration", "text", "segments"}
    assert body["task"] == "translate"
    assert result.language == "english"
    assert 2.0 < result.duration < 6.0
    segments = body["segments"]
    assert isinstance(segments, list)  # to_dict() is typed dict[str, object]
    assert result.segments and set(segments[0]) == SEGMENT_FIELDS
    assert [segment.id for segment in result.segments] == list(range(len(result.segments)))
    assert word_error_rate(SPEECH_TEXT, result.text) <= 0.25


def test_async_sdk_translates(server, caller, speech_mp3):
    async def call() -> str:
        async with openai.AsyncOpenAI(
            base_url=f"{server}/v1", api_key=caller.secret, max_retries=0
        ) as client:
            with speech_mp3.open("rb") as audio:
                result = await client.audio.translations.create(model="tiny.en", file=audio)
            return result.text

    assert word_error_rate(SPEECH_TEXT, asyncio.run(call())) <= 0.25


def test_sdk_errors_are_the_same_exceptions(server, make_caller: MakeCaller, speech_wav):
    with speech_wav.open("rb") as audio, pytest.raises(openai.AuthenticationError):
        sdk(server, "sk-ts-0123456789abcdef-" + "A" * 43).audio.translations.create(
            model="whisper-1", file=audio
        )
    with speech_wav.open("rb") as audio, pytest.raises(openai.NotFoundError):
        sdk(server, make_caller().secret).audio.translations.create(model="gpt-4o", file=audio)
    limited = sdk(server, make_caller(rpm=1).secret)
    # One request per minute: of three in a row, at least two share a clock minute.
    with pytest.raises(openai.RateLimitError) as too_many:
        for _ in range(3):
            with speech_wav.open("rb") as audio:
                limited.audio.translations.create(model="whisper-1", file=audio)
    assert int(too_many.value.response.headers["retry-after"]) >= 1


# ----------------------------------------------------------------------- over HTTP


def test_translation_is_billed_like_a_transcription(client, caller, services, speech_wav):
    response = translate(client, caller, speech_wav, response_format="verbose_json")
    assert response.status_code == 200, response.text
    duration = response.json()["duration"]
    billed = int(response.headers["x-tinyscribe-billed-seconds"])
    cost = int(response.headers["x-tinyscribe-cost-micro-usd"])
    assert billed == math.ceil(duration)
    assert cost == cost_micro_usd(billed, services.settings.price_micro_usd_per_minute)
    assert response.headers["x-ratelimit-limit-requests"] == str(caller.key.rpm)
    assert response.headers["x-request-id"]
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000 - cost
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_an_idempotency_key_replays_a_translation_without_a_second_charge(
    client, caller, services, speech_wav
):
    headers = {**caller.headers, "Idempotency-Key": "translate-once"}
    answers = []
    for _ in range(2):
        with speech_wav.open("rb") as handle:
            answers.append(
                client.post(
                    "/v1/audio/translations",
                    headers=headers,
                    files={"file": (speech_wav.name, handle)},
                    data={"model": "whisper-1", "response_format": "verbose_json"},
                )
            )
    first, again = answers
    assert first.status_code == again.status_code == 200, first.text
    assert again.content == first.content and again.json()["task"] == "translate"
    assert again.headers["idempotent-replayed"] == "true"
    cost = int(first.headers["x-tinyscribe-cost-micro-usd"])
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000 - cost
    assert_money_invariants(services.wallets, caller.key.wallet_id)
    with speech_wav.open("rb") as handle:  # the same key on the other route is another request
        other = client.post(
            "/v1/audio/transcriptions",
            headers=headers,
            files={"file": (speech_wav.name, handle)},
            data={"model": "whisper-1", "response_format": "verbose_json"},
        )
    assert other.status_code == 422, other.text


def test_english_speech_comes_back_as_its_transcript(client, caller, speech_wav):
    """Same model, same decoding: the translation of English speech is its transcript."""
    translated = translate(client, caller, speech_wav, response_format="text")
    with speech_wav.open("rb") as handle:
        transcribed = client.post(
            "/v1/audio/transcriptions",
            headers=caller.headers,
            files={"file": (speech_wav.name, handle)},
            data={"model": "whisper-1", "response_format": "text"},
        )
    assert translated.status_code == transcribed.status_code == 200
    assert translated.headers["content-type"].startswith("text/plain")
    assert translated.text == transcribed.text


def test_prompt_and_temperature_reach_the_engine(settings, engine, caller, speech_wav):
    recording = RecordingEngine(engine)
    app = create_app(Services.from_settings(settings, recording))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = translate(
            client, caller, speech_wav, prompt="Quick brown fox.", temperature="0.2"
        )
    assert response.status_code == 200, response.text
    assert word_error_rate(SPEECH_TEXT, response.json()["text"]) <= 0.3
    [options] = recording.options
    assert (options.initial_prompt, options.temperature) == ("Quick brown fox.", 0.2)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("language", "en"),  # a transcription field: the output of a translation is English
        ("timestamp_granularities[]", "word"),
        ("chunking_strategy", "auto"),
        ("stream", "true"),
        ("include[]", "logprobs"),
        ("beam_size", "1"),
    ],
)
def test_fields_outside_the_translation_spec_are_refused(
    client, caller, services, speech_wav, field, value
):
    response = translate(client, caller, speech_wav, **{field: value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "unknown_parameter"
    assert error["param"] == field
    assert field in error["message"]
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(services.wallets, caller.key.wallet_id)


@pytest.mark.parametrize("response_format", ["diarized_json", "xml"])
def test_formats_outside_the_five_are_400(client, caller, speech_wav, response_format):
    response = translate(client, caller, speech_wav, response_format=response_format)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "response_format"


def test_undecodable_audio_is_400_and_free(client, caller, services, tmp_path):
    junk = tmp_path / "notes.mp3"
    junk.write_bytes(b"this is a text file, not audio\n" * 40)
    response = translate(client, caller, junk)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_a_poor_wallet_gets_402_and_keeps_its_money(client, make_caller, services, speech_wav):
    poor = make_caller(credit_micro_usd=1)
    response = translate(client, poor, speech_wav)
    assert response.status_code == 402
    assert response.json()["error"]["type"] == "insufficient_credits"
    assert services.wallets.get(poor.key.wallet_id).balance == 1
    assert_money_invariants(services.wallets, poor.key.wallet_id)


def test_openapi_says_other_languages_are_not_supported(client):
    operation = client.get("/openapi.json").json()["paths"]["/v1/audio/translations"]["post"]
    assert "Other languages are not supported" in operation["description"]
