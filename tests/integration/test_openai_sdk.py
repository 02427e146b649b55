"""The official openai SDK, pointed at `tinyscribe serve` by changing base_url only."""

from __future__ import annotations

import openai
import pytest

from tests.integration.conftest import SPEECH_TEXT, MakeCaller
from tests.support.text import word_error_rate


def sdk(server: str, secret: str) -> openai.OpenAI:
    # max_retries=0 so statuses the SDK would retry (429, 503) surface in the test.
    return openai.OpenAI(base_url=f"{server}/v1", api_key=secret, max_retries=0)


def test_json_and_verbose_json(server, caller, speech_wav):
    client = sdk(server, caller.secret)
    with speech_wav.open("rb") as audio:
        plain = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert word_error_rate(SPEECH_TEXT, plain.text) <= 0.25
    with speech_wav.open("rb") as audio:
        verbose = client.audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert verbose.language == "english"
    assert verbose.segments and verbose.segments[0].avg_logprob < 0
    assert verbose.words and verbose.words[0].start <= verbose.words[0].end


@pytest.mark.parametrize("endpoint", ["transcriptions", "translations"])
@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
def test_text_formats_come_back_as_strings(server, caller, speech_wav, response_format, endpoint):
    """Both routes: the SDK hands the body over as a string, subtitles as written."""
    with speech_wav.open("rb") as audio:
        result = getattr(sdk(server, caller.secret).audio, endpoint).create(
            model="whisper-1", file=audio, response_format=response_format
        )
    assert isinstance(result, str)
    if response_format == "vtt":
        assert result.startswith("WEBVTT\n\n00:00:")
    if response_format == "srt":
        assert result.startswith("1\n00:00:")
    assert "fox" in result.lower()


def test_sdk_maps_errors_to_its_exceptions(server, make_caller: MakeCaller, speech_wav):
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        sdk(server, "sk-ts-0123456789abcdef-" + "A" * 43).models.list()
    assert "Incorrect API key" in unauthorized.value.message

    poor = make_caller(credit_micro_usd=1)
    with speech_wav.open("rb") as audio, pytest.raises(openai.APIStatusError) as no_money:
        sdk(server, poor.secret).audio.transcriptions.create(model="whisper-1", file=audio)
    assert no_money.value.status_code == 402
    assert isinstance(no_money.value.body, dict)  # the SDK types the body as object
    assert no_money.value.body["type"] == "insufficient_credits"

    limited = make_caller(rpm=1)
    client = sdk(server, limited.secret)
    with speech_wav.open("rb") as audio:
        client.audio.transcriptions.create(model="whisper-1", file=audio)
    with speech_wav.open("rb") as audio, pytest.raises(openai.RateLimitError) as too_many:
        client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert int(too_many.value.response.headers["retry-after"]) >= 1

    with speech_wav.open("rb") as audio, pytest.raises(openai.NotFoundError):
        sdk(server, make_caller().secret).audio.transcriptions.create(model="gpt-4o", file=audio)
