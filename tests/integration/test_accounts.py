"""Keys, wallets and the ledger, against DynamoDB Local and the real model (rate limits:
``test_rate_limits.py``)."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from handler.api import create_app
from handler.billing import cost_micro_usd
from handler.engine import Engine
from handler.services import Services
from handler.transcript import TranscribeOptions, Transcript
from tests.integration.conftest import Caller, MakeCaller
from tests.support.http import Response
from tests.support.money import assert_money_invariants
from tests.support.server import serving

SPEECH_SECONDS = 4  # the generated clip lasts 3.4 s: billed as 4 s


def transcribe(client: TestClient | httpx.Client, headers: dict[str, str], audio: Path) -> Response:
    return client.post(
        "/v1/audio/transcriptions",
        headers=headers,
        files={"file": ("speech.wav", audio.read_bytes())},
        data={"model": "whisper-1"},
    )


def clip_cost(services: Services) -> int:
    return cost_micro_usd(SPEECH_SECONDS, services.settings.price_micro_usd_per_minute)


# -- authentication ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "invalid_authorization_header"),
        ({"Authorization": "Bearer"}, "invalid_authorization_header"),
        ({"Authorization": "Bearer sk-not-a-real-key"}, "invalid_api_key"),
        ({"Authorization": "Bearer sk-ts-0123456789abcdef-" + "A" * 43}, "invalid_api_key"),
    ],
)
def test_bad_credentials_are_401(client, services, caller, speech_wav, headers, code):
    response = transcribe(client, headers, speech_wav)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["code"] == code
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_a_wrong_secret_for_a_real_key_id_is_401(client, services, caller, speech_wav):
    tampered = caller.secret[:-4] + ("AAAA" if not caller.secret.endswith("AAAA") else "BBBB")
    response = transcribe(client, {"Authorization": f"Bearer {tampered}"}, speech_wav)
    assert response.status_code == 401
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000


def test_revoked_key_is_401_at_once(client, services, caller, speech_wav):
    assert transcribe(client, caller.headers, speech_wav).status_code == 200
    services.keys.revoke(caller.key.key_id)
    response = transcribe(client, caller.headers, speech_wav)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"
    assert client.get("/v1/wallet", headers=caller.headers).status_code == 401


def test_only_the_hash_of_a_secret_is_stored(services, caller):
    item = services.keys.client.get_item(
        TableName=services.keys.table, Key={"key_id": caller.key.key_id}
    )["Item"]
    assert caller.secret not in str(item)
    assert len(item["secret_hash"]) == 64


# -- billing ----------------------------------------------------------------------------
def test_success_charges_per_second_and_the_ledger_reconciles(client, services, caller, speech_wav):
    response = transcribe(client, caller.headers, speech_wav)
    assert response.status_code == 200
    cost = clip_cost(services)
    assert response.headers["x-tinyscribe-cost-micro-usd"] == str(cost)
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000 - cost
    assert_money_invariants(services.wallets, caller.key.wallet_id)
    usage = client.get("/v1/usage", headers=caller.headers).json()
    charge = usage["data"][0]
    assert charge["kind"] == "charge" and charge["amount"] == -cost
    assert charge["audio_seconds"] == SPEECH_SECONDS and charge["status"] == "settled"
    assert charge["request_id"] == response.headers["x-request-id"]


def test_insufficient_credits_is_402_then_200_after_top_up(
    client, services, make_caller: MakeCaller, speech_wav
):
    cost = clip_cost(services)
    poor = make_caller(credit_micro_usd=cost - 1)
    response = transcribe(client, poor.headers, speech_wav)
    assert response.status_code == 402
    assert response.json()["error"]["type"] == "insufficient_credits"
    assert services.wallets.get(poor.key.wallet_id).balance == cost - 1
    services.wallets.top_up(poor.key.wallet_id, paid=100_000, fee=5_000)
    assert transcribe(client, poor.headers, speech_wav).status_code == 200
    assert services.wallets.get(poor.key.wallet_id).balance == cost - 1 + 95_000 - cost
    assert_money_invariants(services.wallets, poor.key.wallet_id)


def test_unmetered_keys_are_never_blocked_but_usage_is_recorded(
    client, services, make_caller: MakeCaller, speech_wav
):
    free = make_caller(credit_micro_usd=0, plan="unmetered")
    assert transcribe(client, free.headers, speech_wav).status_code == 200
    assert services.wallets.get(free.key.wallet_id).balance == 0
    (usage,), _ = services.wallets.ledger(free.key.wallet_id)
    assert usage.kind == "usage" and usage.amount == 0 and usage.list_price == clip_cost(services)
    assert_money_invariants(services.wallets, free.key.wallet_id)


class ExplodingEngine(Engine):
    """Fault injection: the model fails mid-request (the real one cannot on demand)."""

    def transcribe(self, samples: np.ndarray, options: TranscribeOptions) -> Transcript:
        raise RuntimeError("CUDA out of memory (simulated)")


def test_engine_failure_after_reservation_refunds_in_full(settings, caller, speech_wav):
    services = Services.from_settings(settings, ExplodingEngine(settings))
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        response = transcribe(client, caller.headers, speech_wav)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert "CUDA" not in response.text and "Traceback" not in response.text
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    kinds = [e.kind for e in services.wallets.all_entries(caller.key.wallet_id)]
    assert kinds == ["grant", "charge", "refund"]
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_concurrent_requests_never_overdraw(
    settings, engine, services, make_caller: MakeCaller, speech_wav
):
    """20 simultaneous requests on a wallet that pays for exactly 5. The server has a slot
    for each and a queue no loaded machine outlasts, so a 503 (backpressure, tested in
    ``test_load.py``) cannot stand in for a 402: the wallet alone decides."""
    cost = clip_cost(services)
    wallet_caller: Caller = make_caller(credit_micro_usd=5 * cost)
    roomy = settings.model_copy(
        update={"max_concurrent_transcriptions": 20, "transcription_queue_seconds": 600.0}
    )

    def one(server: str) -> int:
        with httpx.Client(base_url=server, timeout=600) as http:
            return transcribe(http, wallet_caller.headers, speech_wav).status_code

    with (
        serving(create_app(Services.from_settings(roomy, engine))) as server,
        concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool,
    ):
        statuses = list(pool.map(one, [server] * 20))
    assert sorted(statuses) == [200] * 5 + [402] * 15
    assert services.wallets.get(wallet_caller.key.wallet_id).balance == 0
    assert_money_invariants(services.wallets, wallet_caller.key.wallet_id)


def test_wallet_endpoint_shows_balance_and_plan(client, caller):
    wallet = client.get("/v1/wallet", headers=caller.headers).json()
    assert wallet["balance_micro_usd"] == 1_000_000
    assert wallet["balance"] == "1.000000"
    assert wallet["currency"] == "usd" and wallet["plan"] == "payg"


def test_usage_is_paginated_newest_first(client, services, caller, speech_wav):
    for _ in range(3):
        assert transcribe(client, caller.headers, speech_wav).status_code == 200
    first = client.get("/v1/usage?limit=2", headers=caller.headers).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = client.get(f"/v1/usage?limit=10&after={first['last_id']}", headers=caller.headers)
    ids = [e["entry_id"] for e in first["data"] + rest.json()["data"]]
    assert len(ids) == 4 and ids == sorted(ids, reverse=True)  # 3 charges and the grant


def test_keys_of_one_wallet_see_only_their_wallet(client, make_caller: MakeCaller, speech_wav):
    alice, bob = make_caller(), make_caller()
    assert transcribe(client, alice.headers, speech_wav).status_code == 200
    bob_usage = client.get("/v1/usage", headers=bob.headers).json()["data"]
    assert [e["kind"] for e in bob_usage] == ["grant"]
    assert all(e["wallet_id"] == bob.key.wallet_id for e in bob_usage)


# -- misconfiguration ------------------------------------------------------------------
@pytest.mark.parametrize("plan", ["payg", "unmetered"])
def test_a_key_whose_wallet_is_missing_is_401_and_logged_for_the_operator(
    client, services, speech_wav, caplog, plan
):
    key, secret = services.keys.create(name="orphan", wallet_id="wal_gone", plan=plan, rpm=100)
    headers = {"Authorization": f"Bearer {secret}"}
    responses = [
        transcribe(client, headers, speech_wav),
        client.get("/v1/wallet", headers=headers),
        client.post("/v1/audio/transcriptions/jobs", headers=headers, json={"model": "whisper-1"}),
    ]
    for response in responses:
        assert response.status_code == 401, response.text
        error = response.json()["error"]
        assert error["type"] == "authentication_error" and error["code"] == "wallet_not_found"
        assert "operator" in error["message"]
    logged = [r for r in caplog.records if "missing wallet" in r.getMessage()]
    assert len(logged) == len(responses)
    assert all(r.levelname == "ERROR" for r in logged)
    assert all((r.key_id, r.wallet_id) == (key.key_id, "wal_gone") for r in logged)
    assert services.wallets.ledger("wal_gone")[0] == []  # nothing recorded for it


# -- DynamoDB down ----------------------------------------------------------------------
def test_database_unreachable_is_503_with_retry_after(settings, engine, caller, speech_wav):
    import boto3

    from handler.devstack import free_port
    from handler.stores.dynamo import CLIENT_CONFIG

    closed = boto3.client(
        "dynamodb", endpoint_url=f"http://127.0.0.1:{free_port()}", config=CLIENT_CONFIG
    )
    down = Services.from_settings(settings, engine, dynamodb=closed)
    with TestClient(create_app(down), raise_server_exceptions=False) as client:
        response = transcribe(client, caller.headers, speech_wav)
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "service_unavailable"
    assert int(response.headers["retry-after"]) >= 1


def test_no_response_ever_carries_the_secret(client, caller, speech_wav):
    responses = [
        transcribe(client, caller.headers, speech_wav),
        client.get("/v1/wallet", headers=caller.headers),
        client.get("/v1/usage", headers=caller.headers),
        client.get("/v1/models", headers=caller.headers),
        client.post(
            "/v1/audio/transcriptions/jobs", headers=caller.headers, json={"model": "whisper-1"}
        ),
        client.get("/v1/nope", headers=caller.headers),
        transcribe(client, {"Authorization": f"Bearer {caller.secret}x"}, speech_wav),
    ]
    random_part = caller.random_part
    for response in responses:
        seen = response.text + str(dict(response.headers))
        assert caller.secret not in seen and random_part not in seen, response.request.url
