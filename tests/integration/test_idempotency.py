"""Idempotency-Key on the POST routes: one charge and one answer per key, whatever the
retries; against DynamoDB Local, the real model, a real server and the official SDK."""

from __future__ import annotations

import concurrent.futures
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import openai
import pytest
import uvicorn
from fastapi.testclient import TestClient

from handler.api import create_app
from handler.config import Settings
from handler.devstack import free_port, wait_for_port
from handler.engine import Engine
from handler.services import Services
from tests.integration.conftest import Caller, MakeCaller
from tests.support.clock import FakeClock
from tests.support.engines import FailingEngine, GatedEngine
from tests.support.http import Response
from tests.support.money import assert_money_invariants, charges

TRANSCRIPTIONS = "/v1/audio/transcriptions"
JOBS = "/v1/audio/transcriptions/jobs"
DAY = 24 * 3600


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_900_000_000.0)


@pytest.fixture
def timed(
    settings: Settings, engine: Engine, clock: FakeClock
) -> Iterator[tuple[TestClient, Services]]:
    services = Services.from_settings(settings, engine, clock=clock)
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client, services


def post_audio(
    http: TestClient | httpx.Client, caller: Caller, audio: bytes, key: str | None, **fields: str
) -> Response:
    headers = {**caller.headers, **({"Idempotency-Key": key} if key else {})}
    return http.post(
        TRANSCRIPTIONS,
        headers=headers,
        files={"file": ("speech.wav", audio)},
        data={"model": "whisper-1", **fields},
    )


def new_key() -> str:
    return str(uuid.uuid4())


def test_a_retry_with_the_key_replays_the_first_response_without_a_second_charge(
    timed, caller: Caller, speech_wav: Path
) -> None:
    client, services = timed
    key = new_key()
    first = post_audio(client, caller, speech_wav.read_bytes(), key, response_format="srt")
    again = post_audio(client, caller, speech_wav.read_bytes(), key, response_format="srt")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    cost = int(first.headers["x-tinyscribe-cost-micro-usd"])
    assert again.headers["x-tinyscribe-cost-micro-usd"] == str(cost)
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert again.headers["x-ratelimit-limit-requests"]  # the replay's own rate-limit headers
    (charge,) = charges(services.wallets, caller.key.wallet_id)
    assert charge.status == "settled" and charge.request_id == first.headers["x-request-id"]
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000 - cost
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_the_same_key_for_a_different_request_is_422_and_free(
    timed, caller: Caller, speech_wav: Path, audio_dir: Path
) -> None:
    client, services = timed
    key = new_key()
    assert post_audio(client, caller, speech_wav.read_bytes(), key).status_code == 200
    other_audio = speech_wav.read_bytes()[:-3200]  # a tenth of a second shorter
    for response in (
        post_audio(client, caller, other_audio, key),
        post_audio(client, caller, speech_wav.read_bytes(), key, response_format="text"),
        client.post(
            JOBS, headers={**caller.headers, "Idempotency-Key": key}, json={"model": "whisper-1"}
        ),
    ):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "idempotency_key_reused"
    assert len(charges(services.wallets, caller.key.wallet_id)) == 1
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_the_fingerprint_ignores_field_order_and_file_name(
    timed, caller: Caller, speech_wav: Path
) -> None:
    client, services = timed
    key = new_key()
    headers = {**caller.headers, "Idempotency-Key": key}
    audio = speech_wav.read_bytes()
    first = client.post(
        TRANSCRIPTIONS,
        headers=headers,
        files={"file": ("a.wav", audio)},
        data={"model": "whisper-1", "response_format": "verbose_json", "language": "en"},
    )
    again = client.post(
        TRANSCRIPTIONS,
        headers=headers,
        files={"file": ("b.wav", audio)},
        data={"language": "en", "response_format": "verbose_json", "model": "whisper-1"},
    )
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert len(charges(services.wallets, caller.key.wallet_id)) == 1


def test_the_key_expires_after_24_hours(
    timed, clock: FakeClock, caller: Caller, speech_wav: Path
) -> None:
    client, services = timed
    key = new_key()
    first = post_audio(client, caller, speech_wav.read_bytes(), key)
    clock.advance(DAY - 1)
    replayed = post_audio(client, caller, speech_wav.read_bytes(), key)
    assert replayed.headers.get("idempotent-replayed") == "true"
    clock.advance(1)
    fresh = post_audio(client, caller, speech_wav.read_bytes(), key)
    assert fresh.status_code == 200 and "idempotent-replayed" not in fresh.headers
    assert fresh.headers["x-request-id"] != first.headers["x-request-id"]
    settled = [c for c in charges(services.wallets, caller.key.wallet_id) if c.status == "settled"]
    assert len(settled) == 2  # two units: the key's first life and its second
    assert_money_invariants(services.wallets, caller.key.wallet_id)


@pytest.fixture
def gated(
    settings: Settings, engine: Engine, clock: FakeClock
) -> Iterator[tuple[TestClient, Services, GatedEngine]]:
    gate = GatedEngine(engine)
    services = Services.from_settings(settings, gate, clock=clock)
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client, services, gate


def test_a_duplicate_while_the_first_runs_is_409_then_gets_the_response(
    gated, caller: Caller, speech_wav: Path
) -> None:
    client, services, gate = gated
    key = new_key()
    audio = speech_wav.read_bytes()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(post_audio, client, caller, audio, key)
        assert gate.entered.wait(120)
        duplicate = post_audio(client, caller, audio, key)
        gate.open.set()
        assert first.result().status_code == 200
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_key_in_use"
    assert duplicate.headers["retry-after"] == "2"
    assert duplicate.headers["retry-after-ms"] == "2000"
    retried = post_audio(client, caller, audio, key)
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.content == first.result().content
    assert len(charges(services.wallets, caller.key.wallet_id)) == 1
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_a_request_that_outlives_its_lock_shares_the_reservation_with_the_retry(
    gated, clock: FakeClock, caller: Caller, speech_wav: Path
) -> None:
    """The first attempt stalls past the key's lock (as a dying process would); the
    client's retry takes the key over and resumes the same reservation. Both finish; the
    unit is charged once."""
    client, services, gate = gated
    key = new_key()
    audio = speech_wav.read_bytes()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(post_audio, client, caller, audio, key)
        assert gate.entered.wait(120)
        clock.advance(services.settings.idempotency_lock_seconds + 1)
        retried = post_audio(client, caller, audio, key)
        gate.open.set()
        stalled = first.result()
    assert retried.status_code == 200 and stalled.status_code == 200
    (charge,) = charges(services.wallets, caller.key.wallet_id)
    assert charge.status == "settled"
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_six_concurrent_duplicates_are_charged_once(
    server: str, services: Services, make_caller: MakeCaller, speech_wav: Path
) -> None:
    caller = make_caller()
    key = new_key()
    audio = speech_wav.read_bytes()

    def send(_: int) -> Response:
        with httpx.Client(base_url=server, timeout=120) as http:
            return post_audio(http, caller, audio, key)

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(send, range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 409} and 200 in statuses, statuses
    bodies = {r.content for r in responses if r.status_code == 200}
    assert len(bodies) == 1  # the one transcript, sent again to every duplicate that got one
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.headers["retry-after"] == "2"
    with httpx.Client(base_url=server, timeout=120) as http:
        late = post_audio(http, caller, audio, key)
    assert late.status_code == 200 and late.content in bodies
    assert late.headers["idempotent-replayed"] == "true"
    (charge,) = charges(services.wallets, caller.key.wallet_id)
    assert charge.status == "settled"
    assert_money_invariants(services.wallets, caller.key.wallet_id)


class Sequencer:
    """ASGI wrapper that makes the SDK race deterministic: it opens the engine's gate once
    every duplicate has been refused (409) once, and holds their retries until the first
    request's response has gone out. It only orders requests; the app answers them."""

    def __init__(self, app: Any, gate: GatedEngine, duplicates: int) -> None:
        self.app = app
        self.gate = gate
        self.duplicates = duplicates
        self.refused = 0
        self.first_done = threading.Event()
        self.lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.lock:
            retry = self.refused >= self.duplicates
        if retry:
            await anyio.to_thread.run_sync(self.first_done.wait, 120)
        transcribed = False

        async def watch(message: Any) -> None:
            nonlocal transcribed
            if message["type"] == "http.response.start":
                if message["status"] == 409:
                    with self.lock:
                        self.refused += 1
                        if self.refused == self.duplicates:
                            self.gate.open.set()
                headers = dict(message.get("headers", []))
                transcribed = message["status"] == 200 and b"idempotent-replayed" not in headers
            await send(message)
            body_ends = message["type"] == "http.response.body" and not message.get("more_body")
            if transcribed and body_ends:
                self.first_done.set()

        await self.app(scope, receive, watch)


@pytest.fixture
def sequenced_server(
    settings: Settings, engine: Engine
) -> Iterator[tuple[str, Services, Sequencer]]:
    """A real uvicorn server in this process, on a gated engine behind the sequencer."""
    gate = GatedEngine(engine)
    services = Services.from_settings(settings, gate)
    sequencer = Sequencer(create_app(services), gate, duplicates=5)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(sequencer, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, timeout=30)
    yield f"http://127.0.0.1:{port}", services, sequencer
    server.should_exit = True
    thread.join(timeout=30)


def test_the_sdk_with_extra_headers_retries_into_one_charge(
    sequenced_server, make_caller: MakeCaller, speech_wav: Path
) -> None:
    """What the README shows: six SDK calls at once with one key. The first transcribes;
    the SDK retries the others' 409s (after Retry-After) into the stored response."""
    url, services, sequencer = sequenced_server
    caller = make_caller()
    key = new_key()
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=caller.secret, max_retries=2)

    def call(_: int) -> str:
        with speech_wav.open("rb") as audio:
            return client.audio.transcriptions.create(
                model="whisper-1", file=audio, extra_headers={"Idempotency-Key": key}
            ).text

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        texts = list(pool.map(call, range(6)))
    assert len(set(texts)) == 1 and texts[0]
    assert sequencer.refused == 5  # every duplicate was told to wait, then got the response
    (charge,) = charges(services.wallets, caller.key.wallet_id)
    assert charge.status == "settled"
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_a_server_error_is_not_stored_the_retry_runs_and_is_charged_once(
    settings, engine, caller: Caller, speech_wav: Path
) -> None:
    services = Services.from_settings(settings, FailingEngine(engine))
    key = new_key()
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        failed = post_audio(client, caller, speech_wav.read_bytes(), key)
        retried = post_audio(client, caller, speech_wav.read_bytes(), key)
    assert failed.status_code == 500
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
    first, second = charges(services.wallets, caller.key.wallet_id)
    assert (first.status, second.status) == ("refunded", "settled")
    # The same key; its first incarnation was released with the refund, so the retry is a
    # new unit of work with a reservation of its own.
    assert first.unit is not None and second.unit is not None
    assert first.unit.rsplit(":", 1)[0] == second.unit.rsplit(":", 1)[0]
    assert first.unit != second.unit
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_a_bad_input_error_is_replayed_and_costs_nothing(timed, caller: Caller) -> None:
    client, services = timed
    key = new_key()
    first = post_audio(client, caller, b"definitely not audio" * 50, key)
    again = post_audio(client, caller, b"definitely not audio" * 50, key)
    assert first.status_code == again.status_code == 400
    assert first.json()["error"]["param"] == "file"
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert charges(services.wallets, caller.key.wallet_id) == []
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000


def test_insufficient_credits_is_not_stored_a_top_up_then_the_retry_succeeds(
    timed, make_caller: MakeCaller, speech_wav: Path
) -> None:
    client, services = timed
    poor = make_caller(credit_micro_usd=10)
    key = new_key()
    assert post_audio(client, poor, speech_wav.read_bytes(), key).status_code == 402
    services.wallets.top_up(poor.key.wallet_id, paid=100_000, fee=5_000)
    paid = post_audio(client, poor, speech_wav.read_bytes(), key)
    assert paid.status_code == 200 and "idempotent-replayed" not in paid.headers
    assert len(charges(services.wallets, poor.key.wallet_id)) == 1
    assert_money_invariants(services.wallets, poor.key.wallet_id)


def test_keys_are_scoped_to_the_api_key(timed, make_caller: MakeCaller, speech_wav: Path) -> None:
    client, services = timed
    alice, bob = make_caller(), make_caller()
    key = new_key()
    for caller in (alice, bob):
        response = post_audio(client, caller, speech_wav.read_bytes(), key)
        assert response.status_code == 200 and "idempotent-replayed" not in response.headers
        assert len(charges(services.wallets, caller.key.wallet_id)) == 1


@pytest.mark.parametrize(
    ("value", "status"),
    [("k" * 255, 200), ("k" * 256, 400), ("", 400), ("caf\u00e9", 400), ("tab\there", 400)],
    ids=["255-chars", "256-chars", "empty", "non-ascii", "control-char"],
)
def test_key_format(timed, caller: Caller, speech_wav: Path, value: str, status: int) -> None:
    client, services = timed
    response = client.post(
        TRANSCRIPTIONS,
        headers={**caller.headers, "Idempotency-Key": value.encode()},
        files={"file": ("speech.wav", speech_wav.read_bytes())},
        data={"model": "whisper-1"},
    )
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"]["code"] == "invalid_idempotency_key"
        assert charges(services.wallets, caller.key.wallet_id) == []


def test_job_creation_with_a_key_returns_the_same_job(timed, caller: Caller) -> None:
    client, _ = timed
    headers = {**caller.headers, "Idempotency-Key": new_key()}
    first = client.post(
        JOBS, headers=headers, json={"model": "whisper-1", "response_format": "srt"}
    )
    again = client.post(
        JOBS, headers=headers, json={"response_format": "srt", "model": "whisper-1"}
    )
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert first.headers["x-ratelimit-remaining-requests"]
    other = client.post(JOBS, headers=caller.headers, json={"model": "whisper-1"})
    assert other.json()["id"] != first.json()["id"]  # without the key, a new job


def test_requests_without_a_key_are_each_their_own_unit(
    timed, caller: Caller, speech_wav: Path
) -> None:
    client, services = timed
    for _ in range(2):
        assert post_audio(client, caller, speech_wav.read_bytes(), None).status_code == 200
    units = [c.unit or "" for c in charges(services.wallets, caller.key.wallet_id)]
    assert len(units) == 2 and all(u.startswith("request:") for u in units)
    assert_money_invariants(services.wallets, caller.key.wallet_id)
