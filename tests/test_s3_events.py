"""The asynchronous path: S3 events through the Lambda entry point, against a local S3
endpoint over HTTP (moto's server), DynamoDB Local and the real model."""

from __future__ import annotations

import concurrent.futures
import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from handler import app as entry
from handler.billing import cost_micro_usd
from tests.conftest import SPEECH_TEXT, MakeCaller
from tests.support.lambda_context import LambdaContext
from tests.support.money import assert_money_invariants
from tests.support.text import word_error_rate

EVENTS = Path(__file__).resolve().parent.parent / "events"


@pytest.fixture
def lambda_env(settings):  # type: ignore[no-untyped-def]
    """The entry point built from this run's environment."""
    entry.reset()
    yield
    entry.reset()


@pytest.fixture
def s3(settings):  # type: ignore[no-untyped-def]
    return boto3.client("s3")


def s3_event(template: str, bucket: str, key: str, s3_client: Any) -> dict[str, Any]:
    """The events/ sample, pointed at an object that really exists (key URL-encoded as S3
    sends it)."""
    event = json.loads((EVENTS / template).read_text())
    head = s3_client.head_object(Bucket=bucket, Key=key)
    record = copy.deepcopy(event["Records"][0])
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"].update(
        key=quote_plus(key, safe="/"), size=head["ContentLength"], eTag=head["ETag"].strip('"')
    )
    return {"Records": [record]}


def keys_under(s3_client: Any, bucket: str, prefix: str) -> list[str]:
    listing = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


# -- operator batch ---------------------------------------------------------------------
def test_batch_object_gets_every_output_format(lambda_env, settings, s3, speech_wav):
    key = "input/meetings/stand up notes.wav"  # a space: S3 sends it as '+'
    s3.put_object(Bucket=settings.bucket, Key=key, Body=speech_wav.read_bytes())
    event = s3_event("s3-put-batch-input.json", settings.bucket, key, s3)
    assert "+" in event["Records"][0]["s3"]["object"]["key"]

    result = entry.lambda_handler(event, LambdaContext())

    assert result["results"][0]["outcome"] == "completed"
    base = "output/meetings/stand up notes"
    assert keys_under(s3, settings.bucket, base) == sorted(
        base + suffix
        for suffix in (".json", ".verbose.json", ".txt", ".srt", ".vtt", ".status.json")
    )
    read = lambda suffix: s3.get_object(Bucket=settings.bucket, Key=base + suffix)["Body"].read()  # noqa: E731
    assert word_error_rate(SPEECH_TEXT, json.loads(read(".json"))["text"]) <= 0.25
    assert json.loads(read(".verbose.json"))["words"]
    assert re.match(r"1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n", read(".srt").decode())
    assert read(".vtt").decode().startswith("WEBVTT")
    assert json.loads(read(".status.json"))["status"] == "completed"


def test_duplicate_batch_event_is_processed_once(lambda_env, settings, s3, speech_wav):
    key = "input/dup/once.wav"
    s3.put_object(Bucket=settings.bucket, Key=key, Body=speech_wav.read_bytes())
    event = s3_event("s3-put-batch-input.json", settings.bucket, key, s3)
    first = entry.lambda_handler(event, LambdaContext())
    for output in keys_under(s3, settings.bucket, "output/dup/"):
        s3.delete_object(Bucket=settings.bucket, Key=output)

    again = entry.lambda_handler(event, LambdaContext())

    assert again == first
    assert keys_under(s3, settings.bucket, "output/dup/") == []  # nothing was redone


def test_non_audio_batch_object_fails_cleanly(lambda_env, settings, s3):
    key = "input/bad/readme.mp3"
    s3.put_object(Bucket=settings.bucket, Key=key, Body=b"not audio at all\n" * 100)
    result = entry.lambda_handler(
        s3_event("s3-put-batch-input.json", settings.bucket, key, s3), LambdaContext()
    )
    assert result["results"][0]["outcome"] == "failed"
    status = json.loads(
        s3.get_object(Bucket=settings.bucket, Key="output/bad/readme.status.json")["Body"].read()
    )
    assert status["status"] == "failed"
    assert status["error"]["param"] == "file" and "decoded" in status["error"]["message"]


# -- customer jobs ----------------------------------------------------------------------
def create_job(client, caller, **fields: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    body = {"model": "whisper-1", "file_name": "talk.wav", **fields}
    response = client.post("/v1/audio/transcriptions/jobs", headers=caller.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def upload(job: dict[str, Any], content: bytes) -> None:
    response = httpx.put(job["upload"]["url"], content=content, timeout=30)
    assert response.status_code == 200, response.text


def run_job_event(settings, s3, job: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    key = settings.uploads_prefix + job["id"]
    event = s3_event("s3-put-job-upload.json", settings.bucket, key, s3)
    return entry.lambda_handler(event, LambdaContext())


def test_job_round_trip_charges_once(
    lambda_env, client, services, settings, s3, caller, speech_wav
):
    job = create_job(
        client, caller, response_format="verbose_json", timestamp_granularities=["word"]
    )
    assert job["status"] == "awaiting_upload" and job["upload"]["method"] == "PUT"
    upload(job, speech_wav.read_bytes())
    view = client.get(f"/v1/audio/transcriptions/jobs/{job['id']}", headers=caller.headers)
    assert view.json()["status"] == "queued"

    run_job_event(settings, s3, job)

    done = client.get(f"/v1/audio/transcriptions/jobs/{job['id']}", headers=caller.headers).json()
    assert done["status"] == "completed", done
    assert word_error_rate(SPEECH_TEXT, done["result"]["text"]) <= 0.25
    assert done["result"]["words"]
    assert httpx.get(done["result_url"]).json()["text"] == done["result"]["text"]
    cost = cost_micro_usd(4, settings.price_micro_usd_per_minute)
    assert done["cost_micro_usd"] == cost
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000 - cost
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_duplicate_job_events_charge_once(
    lambda_env, client, services, settings, s3, caller, speech_wav
):
    job = create_job(client, caller)
    upload(job, speech_wav.read_bytes())

    def deliver(_: int) -> str:
        try:
            run_job_event(settings, s3, job)
        except IdempotencyAlreadyInProgressError:
            return "retry later"  # what Lambda does with a concurrent duplicate
        return "done"

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(deliver, range(3)))
    assert "done" in outcomes
    run_job_event(settings, s3, job)  # a late redelivery

    charges = [e for e in services.wallets.all_entries(caller.key.wallet_id) if e.kind == "charge"]
    assert len(charges) == 1
    assert keys_under(s3, settings.bucket, f"results/{job['id']}") == [f"results/{job['id']}.json"]
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_job_wallet_too_small_fails_without_charge(
    lambda_env, client, services, settings, s3, make_caller: MakeCaller, speech_wav
):
    poor = make_caller(credit_micro_usd=10)
    job = create_job(client, poor)
    upload(job, speech_wav.read_bytes())
    run_job_event(settings, s3, job)
    view = client.get(f"/v1/audio/transcriptions/jobs/{job['id']}", headers=poor.headers).json()
    assert view["status"] == "failed"
    assert view["error"]["type"] == "insufficient_credits"
    assert services.wallets.get(poor.key.wallet_id).balance == 10
    assert keys_under(s3, settings.bucket, f"results/{job['id']}") == []


def test_non_audio_job_fails_with_a_clear_message(
    lambda_env, client, services, settings, s3, caller
):
    job = create_job(client, caller)
    upload(job, b"%PDF-1.7 this is a document, not audio" * 50)
    run_job_event(settings, s3, job)
    view = client.get(f"/v1/audio/transcriptions/jobs/{job['id']}", headers=caller.headers).json()
    assert view["status"] == "failed"
    assert view["error"]["param"] == "file" and "decoded as audio" in view["error"]["message"]
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000


def test_another_key_cannot_see_the_job(client, caller, make_caller: MakeCaller):
    job = create_job(client, caller)
    stranger = make_caller()
    response = client.get(f"/v1/audio/transcriptions/jobs/{job['id']}", headers=stranger.headers)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    missing = client.get("/v1/audio/transcriptions/jobs/job_nope", headers=caller.headers)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("fields", "status", "param"),
    [
        ({"model": "gpt-4o"}, 404, "model"),
        ({"language": "fr"}, 400, "language"),
        (
            {"response_format": "srt", "timestamp_granularities": ["word"]},
            400,
            "timestamp_granularities",
        ),
        ({"file_size": 10**12}, 413, "file_size"),
        ({"temperature": 3}, 400, "temperature"),
    ],
)
def test_job_options_are_validated_before_upload(client, caller, fields, status, param):
    body = {"model": "whisper-1", **fields}
    response = client.post("/v1/audio/transcriptions/jobs", headers=caller.headers, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
