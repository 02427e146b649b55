"""Failures real deployments see: DynamoDB down at each step, throttling, S3 unreachable.
Nothing is lost: no charge without a transcript, no transcript left unbilled."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import httpx
from fastapi.testclient import TestClient

from handler.api import create_app
from handler.config import REPO_ROOT
from handler.devstack import free_port
from handler.reconcile import reconcile
from handler.s3_events import handle_s3_event
from handler.services import Services
from handler.stores.objects import CLIENT_CONFIG as S3_CONFIG
from handler.stores.objects import ObjectStore
from tests.conftest import Caller
from tests.support.faults import connection_refused, dynamodb_client, throttled
from tests.support.lambda_context import LambdaContext
from tests.support.money import assert_money_invariants


def transcribe(client: TestClient, caller: Caller, audio: Any) -> httpx.Response:
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


def test_database_down_between_reserve_and_settle_is_refunded_by_reconciliation(
    settings, engine, services, caller, speech_wav
):
    dynamodb = dynamodb_client()
    connection_refused(
        dynamodb, "UpdateItem", when=lambda body: body.get("TableName") == settings.ledger_table
    )
    broken = Services.from_settings(settings, engine, dynamodb=dynamodb)
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        response = transcribe(client, caller, speech_wav)

    # The client got no transcript, only a retryable error...
    assert response.status_code == 503
    (charge,) = [
        e for e in services.wallets.all_entries(caller.key.wallet_id) if e.kind == "charge"
    ]
    assert charge.status == "reserved"  # ...and the money is held, not lost.

    assert reconcile(services, grace_seconds=3600)["refunded"] == []  # too recent to touch
    refunded = reconcile(services, grace_seconds=0)["refunded"]
    assert {"wallet_id": caller.key.wallet_id, "entry_id": charge.entry_id} in [
        {k: r[k] for k in ("wallet_id", "entry_id")} for r in refunded
    ]
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(services.wallets, caller.key.wallet_id)
    assert reconcile(services, grace_seconds=0)["refunded"] == []  # idempotent


def test_settled_requests_are_never_refunded_by_reconciliation(
    services, client, caller, speech_wav
):
    assert transcribe(client, caller, speech_wav).status_code == 200
    reconcile(services, grace_seconds=0)
    assert services.wallets.get(caller.key.wallet_id).balance < 1_000_000
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


def test_s3_unreachable_for_a_job_retries_then_fails_the_job(
    settings, services, client, caller, speech_wav
):
    job = client.post(
        "/v1/audio/transcriptions/jobs", headers=caller.headers, json={"model": "whisper-1"}
    ).json()
    httpx.put(job["upload"]["url"], content=speech_wav.read_bytes()).raise_for_status()
    attempts = []
    dead_s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}", config=S3_CONFIG)
    dead_s3.meta.events.register("before-send.s3", lambda **_: attempts.append(1))
    broken = dataclasses.replace(services, objects=ObjectStore(settings.bucket, s3=dead_s3))
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "s3": {
                    "bucket": {"name": settings.bucket},
                    "object": {
                        "key": settings.uploads_prefix + job["id"],
                        "size": 1000,
                        "eTag": "abc",
                    },
                },
            }
        ]
    }

    handle_s3_event(broken, event, LambdaContext())

    assert len(attempts) >= 2  # retried before giving up
    view = client.get(f"/v1/audio/transcriptions/jobs/{job['id']}", headers=caller.headers).json()
    assert view["status"] == "failed"
    assert view["error"]["type"] == "server_error"
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_the_schedule_event_refunds_stale_reservations(settings, services, caller):
    """A reservation left open an hour ago (its process died) is refunded by the schedule."""
    from handler import app as entry

    reservation = services.wallets.reserve(
        caller.key.wallet_id,
        cost=500,
        metered=True,
        key_id=caller.key.key_id,
        request_id="req_died",
        audio_seconds=8,
    )
    services.dynamodb.update_item(  # an hour passes
        TableName=settings.ledger_table,
        Key={"wallet_id": caller.key.wallet_id, "entry_id": reservation.entry_id},
        UpdateExpression="SET created_at = :then",
        ExpressionAttributeValues={":then": "2026-01-01T00:00:00.000+00:00"},
    )
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000 - 500
    event = json.loads((REPO_ROOT / "events" / "schedule-reconcile.json").read_text())
    entry.reset()
    try:
        result = entry.lambda_handler(event, LambdaContext())
    finally:
        entry.reset()
    assert reservation.entry_id in [r["entry_id"] for r in result["refunded"]]
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(services.wallets, caller.key.wallet_id)
