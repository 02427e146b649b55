"""Field audio end to end: joined encodes, Ogg chains, damaged uploads and padded codecs
(:mod:`tests.support.field_audio`) through ``POST /v1/audio/transcriptions``, the operator
batch (``input/...``) and customer jobs, with the real model, DynamoDB Local and moto's S3
over HTTP.

What a user must see: every spoken part in the transcript; the duration, ``usage.seconds``
and the charge of the length that plays (exact for padded codecs); or, for what ffmpeg
cannot play either, a 400 on ``file``. Never a 500, never a charge for a refusal, and the
wallet's ledger always sums to its balance.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from handler import app as entry
from handler.audio import decode_audio
from handler.billing import billable_seconds, cost_micro_usd
from handler.config import Settings
from handler.services import Services
from tests.integration.conftest import MakeCaller
from tests.support.field_audio import (
    ALL,
    FieldAudio,
    FieldCase,
    ids,
    missing_sentences,
)
from tests.support.lambda_context import LambdaContext
from tests.support.lambda_events import s3_event
from tests.support.money import assert_money_invariants

URL = "/v1/audio/transcriptions"
CREDIT = 1_000_000


@pytest.fixture(scope="session")
def field(audio_dir: Path) -> FieldAudio:
    return FieldAudio(audio_dir / "field")


def expected_seconds(case: FieldCase, path: Path) -> float:
    """The length that plays: declared for padded codecs, else what the decoder measures
    (checked against ffmpeg in tests/integration/test_audio.py)."""
    if case.seconds is not None:
        return case.seconds
    return decode_audio(io.BytesIO(path.read_bytes()), max_seconds=600).duration


def assert_refusal(error: dict[str, Any]) -> None:
    assert error["type"] == "invalid_request_error", error
    assert error["param"] == "file" and error["code"] == "invalid_audio", error
    assert "decod" in error["message"]


def assert_untouched(services: Services, wallet_id: str) -> None:
    assert services.wallets.get(wallet_id).balance == CREDIT
    assert [e.kind for e in services.wallets.all_entries(wallet_id)] == ["grant"]
    assert_money_invariants(services.wallets, wallet_id)


def assert_charged(services: Services, wallet_id: str, seconds: int) -> None:
    cost = cost_micro_usd(seconds, services.settings.price_micro_usd_per_minute)
    assert services.wallets.get(wallet_id).balance == CREDIT - cost
    charges = [e for e in services.wallets.all_entries(wallet_id) if e.kind == "charge"]
    assert [(c.amount, c.status, c.audio_seconds) for c in charges] == [(-cost, "settled", seconds)]
    assert_money_invariants(services.wallets, wallet_id)


# -- POST /v1/audio/transcriptions -------------------------------------------------------------


@pytest.mark.parametrize("case", ALL, ids=ids(ALL))
def test_http(
    case: FieldCase,
    field: FieldAudio,
    client: TestClient,
    make_caller: MakeCaller,
    services: Services,
) -> None:
    path = case.build(field)
    caller = make_caller(credit_micro_usd=CREDIT)
    response = client.post(
        URL,
        headers=caller.headers,
        files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
        data={"model": "whisper-1"},
    )
    wallet_id = caller.key.wallet_id
    if case.refused:
        assert response.status_code == 400, response.text
        assert_refusal(response.json()["error"])
        assert_untouched(services, wallet_id)
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert not missing_sentences(body["text"], case.sentences), body["text"]
    seconds = expected_seconds(case, path)
    billed = billable_seconds(seconds)
    assert body["duration"] == round(seconds, 3)
    assert body["usage"] == {"type": "duration", "seconds": billed}
    if case.billed_seconds is not None:
        assert billed == case.billed_seconds
    assert response.headers["x-tinyscribe-billed-seconds"] == str(billed)
    assert_charged(services, wallet_id, billed)


# -- S3: the operator batch and customer jobs ---------------------------------------------------


def deliver(s3: Any, template: str, bucket: str, key: str) -> dict[str, Any]:
    """The events/ sample for an object that exists, through the Lambda entry point."""
    return entry.lambda_handler(s3_event(template, bucket, key, s3), LambdaContext())


@pytest.mark.parametrize("case", ALL, ids=ids(ALL))
def test_batch(
    case: FieldCase, field: FieldAudio, lambda_env: None, settings: Settings, s3: Any
) -> None:
    path = case.build(field)
    key = f"input/field/{case.id}{path.suffix}"
    s3.put_object(Bucket=settings.bucket, Key=key, Body=path.read_bytes())

    deliver(s3, "s3-put-batch-input.json", settings.bucket, key)

    base = f"output/field/{case.id}"
    status = json.loads(
        s3.get_object(Bucket=settings.bucket, Key=base + ".status.json")["Body"].read()
    )
    if case.refused:
        assert status["status"] == "failed", status
        assert_refusal(status["error"])
        return
    assert status["status"] == "completed", status
    assert round(status["duration"], 3) == round(expected_seconds(case, path), 3)
    text = json.loads(s3.get_object(Bucket=settings.bucket, Key=base + ".json")["Body"].read())[
        "text"
    ]
    assert not missing_sentences(text, case.sentences), text


@pytest.mark.parametrize("case", ALL, ids=ids(ALL))
def test_job(
    case: FieldCase,
    field: FieldAudio,
    lambda_env: None,
    client: TestClient,
    services: Services,
    settings: Settings,
    s3: Any,
    make_caller: MakeCaller,
) -> None:
    path = case.build(field)
    caller = make_caller(credit_micro_usd=CREDIT)
    created = client.post(
        f"{URL}/jobs",
        headers=caller.headers,
        json={"model": "whisper-1", "file_name": path.name},
    )
    assert created.status_code == 201, created.text
    job = created.json()
    uploaded = httpx.put(job["upload"]["url"], content=path.read_bytes(), timeout=30)
    assert uploaded.status_code == 200, uploaded.text

    deliver(s3, "s3-put-job-upload.json", settings.bucket, settings.uploads_prefix + job["id"])

    view = client.get(f"{URL}/jobs/{job['id']}", headers=caller.headers).json()
    wallet_id = caller.key.wallet_id
    if case.refused:
        assert view["status"] == "failed", view
        assert_refusal(view["error"])
        assert_untouched(services, wallet_id)
        return
    assert view["status"] == "completed", view
    assert not missing_sentences(view["result"]["text"], case.sentences), view["result"]
    billed = billable_seconds(expected_seconds(case, path))
    assert view["usage"] == {"type": "duration", "seconds": billed}
    assert view["duration"] == round(expected_seconds(case, path), 3)
    assert view["cost_micro_usd"] == cost_micro_usd(billed, settings.price_micro_usd_per_minute)
    assert_charged(services, wallet_id, billed)
