"""Failures real deployments see: DynamoDB down or throttled, retried by the client before a
503 (the full fault matrix of both paths, with retries and reconciliation, is in
``test_pipeline.py`` and ``test_s3_events.py``)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from handler.api import create_app
from handler.services import Services
from tests.integration.conftest import Caller
from tests.support.faults import connection_refused, dynamodb_client, throttled
from tests.support.http import Response
from tests.support.money import assert_money_invariants


def transcribe(client: TestClient, caller: Caller, audio: Any) -> Response:
    return client.post(
        "/v1/audio/transcriptions",
        headers=caller.headers,
        files={"file": ("speech.wav", audio.read_bytes())},
        data={"model": "whisper-1"},
    )


def test_database_down_before_the_reservation_is_503_without_charge(
    settings, engine, services, caller, speech_wav
):
    dynamodb = dynamodb_client()
    outage = connection_refused(dynamodb, "TransactWriteItems")
    broken = Services.from_settings(settings, engine, dynamodb=dynamodb)
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        response = transcribe(client, caller, speech_wav)
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert outage.attempts == 3  # the client retried before giving up
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_throttling_is_retried_with_backoff_then_503(
    settings, engine, services, caller, speech_wav
):
    dynamodb = dynamodb_client()
    throttle = throttled(dynamodb, "UpdateItem")  # the rate limiter's counter
    broken = Services.from_settings(settings, engine, dynamodb=dynamodb)
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        response = transcribe(client, caller, speech_wav)
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "service_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert throttle.attempts == 3
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
