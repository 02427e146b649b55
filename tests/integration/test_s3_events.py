"""The asynchronous path: S3 events through the Lambda entry point, against a local S3
endpoint over HTTP (moto's server), DynamoDB Local and the real model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handler.config import Settings
from handler.engine import Engine

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client  # boto3-stubs: types only

import concurrent.futures
import dataclasses
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from fastapi.testclient import TestClient

from handler import app as entry
from handler.billing import cost_micro_usd
from handler.reconcile import reconcile
from handler.s3_events import handle_s3_event
from handler.services import Services
from handler.stores.jobs import Job, new_job_id
from handler.stores.objects import CLIENT_CONFIG as S3_CONFIG
from handler.stores.objects import ObjectStore
from tests.integration.conftest import SPEECH_TEXT, Caller, MakeCaller, new_caller
from tests.support.clock import FakeClock
from tests.support.engines import FailingEngine
from tests.support.faults import (
    connection_refused,
    dynamodb_client,
    is_reservation,
    is_settlement,
    response_lost,
    s3_unreachable,
)
from tests.support.lambda_context import LambdaContext
from tests.support.lambda_events import s3_event
from tests.support.money import assert_money_invariants, charges
from tests.support.text import word_error_rate

HOUR = 3600.0


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
    status = json.loads(read(".status.json"))
    assert status["status"] == "completed"
    assert status["duration"] == json.loads(read(".verbose.json"))["duration"]  # to the ms


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
def create_job(client: TestClient, caller: Caller, **fields: Any) -> dict[str, Any]:
    body = {"model": "whisper-1", "file_name": "talk.wav", **fields}
    response = client.post("/v1/audio/transcriptions/jobs", headers=caller.headers, json=body)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def upload(job: dict[str, Any], content: bytes) -> None:
    response = httpx.put(job["upload"]["url"], content=content, timeout=30)
    assert response.status_code == 200, response.text


def run_job_event(settings: Settings, s3: S3Client, job: dict[str, Any]) -> dict[str, Any]:
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


# -- bad inputs: a failed status with the 4xx reason, no retry, no charge ------------------
@pytest.fixture(scope="module")
def bad_objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Objects that cannot be transcribed, of several kinds (made with ffmpeg)."""
    work = tmp_path_factory.mktemp("bad-objects")
    tone = work / "tone.wav"
    ffmpeg = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    subprocess.run([*ffmpeg, "-f", "lavfi", "-i", "sine=f=440:d=3", str(tone)], check=True)
    for suffix in (".mp3", ".flac"):
        subprocess.run([*ffmpeg, "-i", str(tone), str(tone.with_suffix(suffix))], check=True)
    return {
        "not-audio.mp3": b"This is a text file, not audio.\n" * 100,
        "pdf.m4a": b"%PDF-1.7 a document, not audio" * 50,
        "empty.wav": b"",
        "truncated.mp3": tone.with_suffix(".mp3").read_bytes()[:400],
        "truncated.wav": tone.read_bytes()[:60],
        "truncated.flac": tone.with_suffix(".flac").read_bytes()[:100],
    }


BAD_KINDS = ["not-audio.mp3", "pdf.m4a", "empty.wav", "truncated.mp3", "truncated.wav",
             "truncated.flac"]  # fmt: skip


def assert_input_error(error: dict[str, Any]) -> None:
    assert error["type"] == "invalid_request_error", error
    assert error["param"] == "file"
    assert "Create a new job" not in error["message"] and "server" not in error["message"]


@pytest.mark.parametrize("name", BAD_KINDS)
def test_bad_batch_object_ends_failed_without_retry(
    lambda_env, settings, s3, bad_objects: dict[str, bytes], name: str
) -> None:
    key = f"input/bad-kinds/{name}"
    s3.put_object(Bucket=settings.bucket, Key=key, Body=bad_objects[name])
    event = s3_event("s3-put-batch-input.json", settings.bucket, key, s3)

    result = entry.lambda_handler(event, LambdaContext())  # returns: Lambda does not retry

    assert result["results"][0]["outcome"] == "failed"
    base = "output/bad-kinds/" + name.rsplit(".", 1)[0]
    assert keys_under(s3, settings.bucket, base + ".") == [base + ".status.json"]
    status = json.loads(
        s3.get_object(Bucket=settings.bucket, Key=base + ".status.json")["Body"].read()
    )
    assert status["status"] == "failed" and status["status_code"] == 400
    assert_input_error(status["error"])
    assert entry.lambda_handler(event, LambdaContext()) == result  # a redelivery: same answer


@pytest.mark.parametrize("name", BAD_KINDS)
def test_bad_job_upload_fails_the_job_without_retry_or_charge(
    lambda_env, client, services, settings, s3, caller, bad_objects: dict[str, bytes], name: str
) -> None:
    job = create_job(client, caller, file_name=name)
    upload(job, bad_objects[name])

    result = run_job_event(settings, s3, job)  # returns: Lambda does not retry

    assert result["results"][0]["outcome"] == "failed"
    view = client.get(f"/v1/audio/transcriptions/jobs/{job['id']}", headers=caller.headers).json()
    assert view["status"] == "failed"
    assert_input_error(view["error"])
    assert run_job_event(settings, s3, job) == result  # a redelivery changes nothing
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert charges(services.wallets, caller.key.wallet_id) == []
    assert keys_under(s3, settings.bucket, f"results/{job['id']}") == []
    assert_money_invariants(services.wallets, caller.key.wallet_id, jobs=services.jobs)


@pytest.fixture
def short_limit(monkeypatch: pytest.MonkeyPatch, lambda_env: None) -> None:
    """Objects over 2 s are too long for the asynchronous path."""
    monkeypatch.setenv("TINYSCRIBE_MAX_JOB_AUDIO_SECONDS", "2")
    entry.reset()


def test_too_long_audio_fails_batch_and_job_with_413_style_reasons(
    short_limit, client, services, settings, s3, caller, speech_wav
) -> None:
    key = "input/too-long/talk.wav"
    s3.put_object(Bucket=settings.bucket, Key=key, Body=speech_wav.read_bytes())
    entry.lambda_handler(
        s3_event("s3-put-batch-input.json", settings.bucket, key, s3), LambdaContext()
    )
    status = json.loads(
        s3.get_object(Bucket=settings.bucket, Key="output/too-long/talk.status.json")["Body"].read()
    )
    assert status["status"] == "failed" and status["status_code"] == 413
    assert status["error"]["code"] == "audio_too_long"

    job = create_job(client, caller)
    upload(job, speech_wav.read_bytes())
    run_job_event(settings, s3, job)
    view = client.get(f"/v1/audio/transcriptions/jobs/{job['id']}", headers=caller.headers).json()
    assert view["status"] == "failed" and view["error"]["code"] == "audio_too_long"
    assert_input_error(view["error"])
    assert charges(services.wallets, caller.key.wallet_id) == []


def test_a_decoder_crash_is_the_input_s_fault_not_a_retry(
    lambda_env, client, services, settings, s3, caller, speech_wav, monkeypatch
) -> None:
    """Whatever the decoder raises on bytes already downloaded (here the resampler error that
    spliced MP3s used to cause) fails the job with a 400, instead of a retried crash."""
    import handler.pipeline

    def crash(*_: Any, **__: Any) -> Any:
        raise ValueError("Frame does not match AudioResampler setup")

    monkeypatch.setattr(handler.pipeline, "decode_audio", crash)
    job = create_job(client, caller)
    upload(job, speech_wav.read_bytes())
    result = run_job_event(settings, s3, job)
    assert result["results"][0]["outcome"] == "failed"
    view = client.get(f"/v1/audio/transcriptions/jobs/{job['id']}", headers=caller.headers).json()
    assert view["error"]["code"] == "invalid_audio"
    assert_input_error(view["error"])
    assert charges(services.wallets, caller.key.wallet_id) == []


# -- the job path under faults: Lambda's retries, then reconciliation ----------------------
@dataclass
class JobStack:
    services: Services
    clock: FakeClock
    dynamodb: Any
    s3: Any
    monkeypatch: pytest.MonkeyPatch


@pytest.fixture
def job_stack(own_tables: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> JobStack:
    clock = FakeClock(2_200_000_000.0)
    dynamodb = dynamodb_client()
    s3 = boto3.client("s3", config=S3_CONFIG)
    services = Services.from_settings(own_tables, engine, dynamodb=dynamodb, clock=clock)
    services = dataclasses.replace(services, objects=ObjectStore(own_tables.bucket, s3=s3))
    return JobStack(services, clock, dynamodb, s3, monkeypatch)


def _jobs_write(stack: JobStack) -> Any:
    table = stack.services.settings.jobs_table
    return connection_refused(
        stack.dynamodb, "UpdateItem", lambda body: body.get("TableName") == table, times=3
    )


def _fail_render(stack: JobStack) -> None:
    import handler.formats
    import handler.pipeline

    real, calls = handler.formats.render, {"n": 0}  # what handler.pipeline imported

    def render_failing_once(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("renderer bug (simulated)")
        return real(*args)

    stack.monkeypatch.setattr(handler.pipeline, "render", render_failing_once)


def _engine(stack: JobStack, failures: int | None) -> None:
    stack.services = dataclasses.replace(
        stack.services, engine=FailingEngine(stack.services.engine, failures)
    )


# step -> (fault, outcome of the first delivery, the job's final status)
JOB_STEPS: dict[str, tuple[Callable[[JobStack], Any], str, str]] = {
    "start": (_jobs_write, "ServiceUnavailable", "completed"),
    "download": (
        lambda st: s3_unreachable(st.s3, "*", lambda url: "/uploads/" in url),
        "EndpointConnectionError",
        "completed",
    ),
    "reserve": (
        lambda st: connection_refused(st.dynamodb, "TransactWriteItems", is_reservation, times=3),
        "ServiceUnavailable",
        "completed",
    ),
    "reserve-answer-lost": (
        lambda st: response_lost(st.dynamodb, "TransactWriteItems", is_reservation),
        "completed",
        "completed",
    ),
    "engine": (lambda st: _engine(st, 1), "RuntimeError", "completed"),
    "render": (_fail_render, "ValueError", "completed"),
    "result-write": (
        lambda st: s3_unreachable(st.s3, "PutObject", lambda url: "/results/" in url),
        "EndpointConnectionError",
        "completed",
    ),
    "job-record-and-settle": (
        lambda st: connection_refused(st.dynamodb, "*", is_settlement, times=3),
        "ServiceUnavailable",
        "completed",
    ),
    "settle-answer-lost": (
        lambda st: response_lost(st.dynamodb, "*", is_settlement),
        "completed",
        "completed",
    ),
    "died-after-settling": (
        lambda st: response_lost(st.dynamodb, "*", is_settlement, then_unreachable=2),
        "ServiceUnavailable",
        "completed",
    ),
    "every-attempt": (lambda st: _engine(st, None), "RuntimeError", "failed"),
}


def deliver_with_retries(stack: JobStack, event: dict[str, Any], fault: Any) -> list[str]:
    """What Lambda does with an asynchronous event: the delivery, then up to two retries
    while the handler raises. Returns each attempt's outcome (or exception name)."""
    outcomes = []
    for _attempt in range(3):
        try:
            result = handle_s3_event(stack.services, event, LambdaContext())
        except Exception as exc:
            outcomes.append(type(exc).__name__)
            if hasattr(fault, "armed"):
                fault.armed = False  # the outage was transient
            continue
        outcomes.append(result["results"][0]["outcome"])
        break
    return outcomes


@pytest.mark.parametrize("step", list(JOB_STEPS))
def test_a_job_failing_at_each_step_is_charged_once_or_not_at_all(
    job_stack: JobStack, short_speech_wav, step: str
) -> None:
    fault_of, first_outcome, final_status = JOB_STEPS[step]
    services = job_stack.services
    caller = new_caller(services)
    job_id = new_job_id()
    services.jobs.create(
        Job(
            job_id=job_id,
            key_id=caller.key.key_id,
            wallet_id=caller.key.wallet_id,
            metered=True,
            request={"model": "whisper-1", "language": None, "prompt": None,
                     "response_format": "json", "temperature": 0.0, "granularities": []},
            file_name="talk.wav",
            upload_key=services.settings.uploads_prefix + job_id,
        )
    )  # fmt: skip
    clean_s3 = boto3.client("s3")
    upload_key = services.settings.uploads_prefix + job_id
    clean_s3.put_object(
        Bucket=services.settings.bucket, Key=upload_key, Body=short_speech_wav.read_bytes()
    )
    event = s3_event("s3-put-job-upload.json", services.settings.bucket, upload_key, clean_s3)
    fault = fault_of(job_stack)

    outcomes = deliver_with_retries(job_stack, event, fault)
    assert outcomes[0] == first_outcome, outcomes
    job_stack.clock.advance(HOUR)
    reconcile(job_stack.services)

    job = services.jobs.get(job_id)
    assert job is not None and job.status == final_status, (outcomes, job)
    results = keys_under(clean_s3, services.settings.bucket, f"results/{job_id}")
    entries = charges(services.wallets, caller.key.wallet_id)
    assert_money_invariants(services.wallets, caller.key.wallet_id, jobs=services.jobs)
    if final_status == "completed":
        assert results == [f"results/{job_id}.json"]
        (charge,) = entries
        assert charge.status == "settled" and -charge.amount == job.cost
    else:
        assert job.error is not None and job.error["type"] == "server_error"
        assert all(e.status == "refunded" for e in entries)
        assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
