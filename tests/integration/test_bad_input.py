"""Anything a client can send gets a clear 4xx in the OpenAI envelope, and costs nothing."""

from __future__ import annotations

import os
from typing import Any

import pytest
from fastapi.testclient import TestClient

from handler.api import create_app
from handler.services import Services
from tests.integration.conftest import Caller
from tests.support.http import Response
from tests.support.money import assert_money_invariants


def assert_envelope(response: Response, status: int, param: str | None, error_type: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == error_type
    assert error["param"] == param
    assert error["message"]


def transcribe(client: TestClient, caller: Caller, files: dict[str, Any], **data: str) -> Response:
    return client.post(
        "/v1/audio/transcriptions",
        headers=caller.headers,
        files=files,
        data={"model": "whisper-1", **data},
    )


def assert_not_charged(services: Services, caller: Caller, credit: int = 1_000_000) -> None:
    assert services.wallets.get(caller.key.wallet_id).balance == credit
    assert_money_invariants(services.wallets, caller.key.wallet_id)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.wav", b""),
        ("random.wav", os.urandom(20_000)),
        ("notes.mp3", b"this is a text file, not audio\n" * 40),
        ("page.ogg", b"<html><body>hello</body></html>"),
    ],
)
def test_undecodable_files_are_400_on_file(client, caller, services, name, content):
    response = transcribe(client, caller, {"file": (name, content)})
    assert_envelope(response, 400, "file", "invalid_request_error")
    assert_not_charged(services, caller)


def test_missing_file_is_400_on_file(client, caller, services):
    response = client.post(
        "/v1/audio/transcriptions", headers=caller.headers, data={"model": "whisper-1"}
    )
    assert_envelope(response, 400, "file", "invalid_request_error")
    assert_not_charged(services, caller)


def test_missing_model_is_400_on_model(client, caller, speech_wav):
    response = client.post(
        "/v1/audio/transcriptions",
        headers=caller.headers,
        files={"file": ("a.wav", speech_wav.read_bytes())},
    )
    assert_envelope(response, 400, "model", "invalid_request_error")


def test_unknown_model_is_404_on_model(client, caller, services, speech_wav):
    response = transcribe(client, caller, {"file": speech_wav.read_bytes()}, model="gpt-4o")
    assert_envelope(response, 404, "model", "not_found")
    assert_not_charged(services, caller)


@pytest.mark.parametrize("language", ["fr", "de", "english", "EN-GB"])
def test_other_languages_are_400_on_language(client, caller, services, speech_wav, language):
    response = transcribe(client, caller, {"file": speech_wav.read_bytes()}, language=language)
    assert_envelope(response, 400, "language", "invalid_request_error")
    assert_not_charged(services, caller)


def test_english_is_accepted(client, caller, speech_wav):
    response = transcribe(client, caller, {"file": speech_wav.read_bytes()}, language="en")
    assert response.status_code == 200


@pytest.mark.parametrize("response_format", ["xml", "JSON", "diarized_json"])
def test_unknown_response_format_is_400(client, caller, speech_wav, response_format):
    response = transcribe(
        client, caller, {"file": speech_wav.read_bytes()}, response_format=response_format
    )
    assert_envelope(response, 400, "response_format", "invalid_request_error")


@pytest.mark.parametrize("temperature", ["-0.1", "1.5", "nan", "inf", "warm"])
def test_temperature_out_of_range_is_400(client, caller, speech_wav, temperature):
    response = transcribe(
        client, caller, {"file": speech_wav.read_bytes()}, temperature=temperature
    )
    assert_envelope(response, 400, "temperature", "invalid_request_error")


def test_word_granularity_needs_verbose_json(client, caller, speech_wav):
    response = transcribe(
        client,
        caller,
        {"file": speech_wav.read_bytes()},
        **{"timestamp_granularities[]": "word"},
    )
    assert_envelope(response, 400, "timestamp_granularities", "invalid_request_error")


def test_unknown_granularity_is_400(client, caller, speech_wav):
    response = transcribe(
        client,
        caller,
        {"file": speech_wav.read_bytes()},
        response_format="verbose_json",
        **{"timestamp_granularities[]": "character"},
    )
    assert_envelope(response, 400, "timestamp_granularities[]", "invalid_request_error")


def test_oversize_upload_is_413_before_decoding(client, caller, services, settings):
    too_big = b"\0" * (settings.max_upload_bytes + 1)
    response = transcribe(client, caller, {"file": ("big.wav", too_big)})
    assert_envelope(response, 413, "file", "invalid_request_error")
    assert "jobs" in response.json()["error"]["message"]
    assert_not_charged(services, caller)


def test_audio_over_the_duration_limit_is_413(settings, engine, caller, speech_wav):
    limited_settings = settings.model_copy(update={"max_sync_audio_seconds": 2.0})
    limited = create_app(Services.from_settings(limited_settings, engine))
    with TestClient(limited) as client:
        response = transcribe(client, caller, {"file": speech_wav.read_bytes()})
        assert_envelope(response, 413, "file", "invalid_request_error")
        assert "2 s limit" in response.json()["error"]["message"]
        assert_not_charged(limited.state.services, caller)


def test_unknown_path_is_404_envelope(client):
    assert_envelope(client.get("/v1/nope"), 404, None, "not_found")


def test_wrong_method_is_405_envelope(client, caller):
    response = client.get("/v1/audio/transcriptions", headers=caller.headers)
    assert_envelope(response, 405, None, "invalid_request_error")


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "application/json"}, {"content-type": "application/octet-stream"}],
)
def test_a_body_that_is_not_multipart_is_400(client, caller, services, speech_wav, headers):
    response = client.post(
        "/v1/audio/transcriptions",
        headers={**caller.headers, **headers},
        content=speech_wav.read_bytes(),
    )
    assert_envelope(response, 400, "file", "invalid_request_error")
    assert "multipart/form-data" in response.json()["error"]["message"]
    assert_not_charged(services, caller)
