"""The per-key token bucket (GCRA in DynamoDB Local), driven by an injected clock: no burst
beats the bucket wherever it falls on the clock, waiting the advertised Retry-After is
enough, and the headers say what OpenAI's say."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from handler.api import create_app
from handler.config import Settings
from handler.deps import format_duration
from handler.engine import Engine
from handler.services import Services
from handler.stores.rate_limits import RateLimitStore
from tests.integration.conftest import Caller, MakeCaller
from tests.support.clock import MINUTE_BOUNDARY, FakeClock
from tests.support.faults import dynamodb_client
from tests.support.money import assert_money_invariants

JOBS = "/v1/audio/transcriptions/jobs"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MINUTE_BOUNDARY - 1.0)  # hh:mm:59, one second before a new minute


@pytest.fixture
def timed(
    settings: Settings, engine: Engine, clock: FakeClock
) -> Iterator[tuple[TestClient, Services]]:
    """The API on the real tables, with the test's clock."""
    services = Services.from_settings(settings, engine, clock=clock)
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client, services


def create_job(client: TestClient, caller: Caller) -> Any:
    return client.post(JOBS, headers=caller.headers, json={"model": "whisper-1"})


def test_a_burst_across_a_minute_boundary_gets_only_the_bucket(
    timed, clock: FakeClock, make_caller: MakeCaller
) -> None:
    client, _ = timed
    caller = make_caller(rpm=10)
    before = [create_job(client, caller) for _ in range(11)]  # at :59
    assert [r.status_code for r in before] == [201] * 10 + [429]
    clock.advance(1.5)  # :00.5 of the next minute: a per-minute counter would reset here
    after = [create_job(client, caller) for _ in range(10)]
    assert [r.status_code for r in after] == [429] * 10
    refused = after[-1]
    assert refused.json()["error"]["type"] == "rate_limit_error"
    # The bucket refills one request per 6 s; the first since :59 fits at :59 + 6 s.
    assert refused.headers["retry-after"] == "5"  # 4.5 s left, rounded up
    assert refused.headers["retry-after-ms"] == "4500"


def test_a_key_of_zero_rpm_is_always_refused_with_a_wait_under_a_minute(
    timed, clock: FakeClock, make_caller: MakeCaller
) -> None:
    client, _ = timed
    caller = make_caller(rpm=0)
    for _ in range(2):
        refused = create_job(client, caller)
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "59"
        assert refused.headers["x-ratelimit-limit-requests"] == "0"
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        clock.advance(3600)


def test_waiting_the_advertised_retry_after_is_enough(
    timed, clock: FakeClock, make_caller: MakeCaller
) -> None:
    client, _ = timed
    caller = make_caller(rpm=4)  # one request per 15 s
    assert [create_job(client, caller).status_code for _ in range(4)] == [201] * 4
    refused = create_job(client, caller)
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert wait == 15 and refused.headers["retry-after-ms"] == "15000"
    clock.advance(wait - 0.001)
    assert create_job(client, caller).status_code == 429  # a millisecond early
    clock.advance(0.001)
    assert create_job(client, caller).status_code == 201
    assert create_job(client, caller).status_code == 429  # one refilled, one taken
    clock.advance(60)
    assert [create_job(client, caller).status_code for _ in range(5)] == [201] * 4 + [429]


def test_headers_count_down_the_bucket_as_openai_does(
    timed, clock: FakeClock, make_caller: MakeCaller
) -> None:
    client, _ = timed
    caller = make_caller(rpm=10)
    seen = []
    for _ in range(10):
        response = create_job(client, caller)
        assert response.status_code == 201
        seen.append(
            (
                response.headers["x-ratelimit-limit-requests"],
                response.headers["x-ratelimit-remaining-requests"],
                response.headers["x-ratelimit-reset-requests"],
            )
        )
    # Each request empties the bucket by one and pushes "full again" 6 s further.
    assert seen == [("10", str(9 - n), format_duration(6 * (n + 1))) for n in range(10)]
    assert seen[0][2] == "6s" and seen[-1][2] == "1m0s"
    clock.advance(3)  # half a request refilled: still none whole
    refused = create_job(client, caller)
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"] == "57s"
    assert refused.headers["retry-after"] == "3" and refused.headers["retry-after-ms"] == "3000"
    clock.advance(9)  # 12 s since the burst: two requests back
    ok = create_job(client, caller)
    assert ok.headers["x-ratelimit-remaining-requests"] == "1"
    assert ok.headers["x-ratelimit-reset-requests"] == "54s"


def test_transcriptions_send_the_headers_too(
    timed, make_caller: MakeCaller, speech_wav, services
) -> None:
    client, _ = timed
    caller = make_caller(rpm=3)
    ok = client.post(
        "/v1/audio/transcriptions",
        headers=caller.headers,
        files={"file": ("speech.wav", speech_wav.read_bytes())},
        data={"model": "whisper-1"},
    )
    assert ok.status_code == 200
    assert ok.headers["x-ratelimit-limit-requests"] == "3"
    assert ok.headers["x-ratelimit-remaining-requests"] == "2"
    assert ok.headers["x-ratelimit-reset-requests"] == "20s"
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def bucket(response: Any) -> tuple[str, str, str]:
    """The response's ``x-ratelimit-*-requests`` headers: limit, remaining, reset."""
    headers = response.headers
    return (
        headers["x-ratelimit-limit-requests"],
        headers["x-ratelimit-remaining-requests"],
        headers["x-ratelimit-reset-requests"],
    )


def test_every_authenticated_route_sends_the_headers(
    timed, clock: FakeClock, make_caller: MakeCaller
) -> None:
    """Routes that do work take one request from the bucket, their errors included; routes
    that read (a job's status, the wallet, the usage, the models) report it as it stands,
    without taking from it. Unauthenticated answers carry none."""
    client, _ = timed
    caller = make_caller(rpm=10)  # one request per 6 s
    created = create_job(client, caller)
    assert created.status_code == 201, created.text
    assert bucket(created) == ("10", "9", "6s")
    unknown_model = client.post(JOBS, headers=caller.headers, json={"model": "gpt-4o"})
    assert unknown_model.status_code == 404, unknown_model.text
    assert bucket(unknown_model) == ("10", "8", "12s")
    clock.advance(1)
    reads = [
        client.get(f"{JOBS}/{created.json()['id']}", headers=caller.headers),
        client.get("/v1/wallet", headers=caller.headers),
        client.get("/v1/usage", headers=caller.headers),
        client.get("/v1/models", headers=caller.headers),
        client.get("/v1/models/whisper-1", headers=caller.headers),
        client.get("/v1/models/gpt-4o", headers=caller.headers),  # a 404 after the key
    ]
    assert [r.status_code for r in reads] == [200] * 5 + [404]
    assert {bucket(r) for r in reads} == {("10", "8", "11s")}  # nothing taken by reading
    assert bucket(create_job(client, caller)) == ("10", "7", "17s")
    anonymous = [
        client.get("/health"),
        client.get("/v1/models"),
        client.get("/v1/wallet", headers={"Authorization": "Bearer sk-ts-wrong"}),
    ]
    assert [r.status_code for r in anonymous] == [200, 401, 401]
    assert not any("x-ratelimit-limit-requests" in r.headers for r in anonymous)


def test_retry_after_stays_under_a_minute_for_one_request_per_minute(
    timed, clock: FakeClock, make_caller: MakeCaller
) -> None:
    """The Vercel AI SDK ignores Retry-After from 60 s up: even a 1 rpm key says 59."""
    client, _ = timed
    caller = make_caller(rpm=1)
    assert create_job(client, caller).status_code == 201
    refused = create_job(client, caller)
    assert refused.headers["retry-after"] == "59"
    assert refused.headers["retry-after-ms"] == "59999"
    clock.advance(59.999)
    assert create_job(client, caller).status_code == 429
    assert create_job(client, caller).headers["retry-after-ms"] == "1"
    clock.advance(0.001)
    assert create_job(client, caller).status_code == 201


def test_concurrent_processes_never_share_more_than_the_bucket(
    settings, make_caller: MakeCaller, clock: FakeClock
) -> None:
    """30 hits at the same instant from 6 'processes' (stores with their own hints)."""
    caller = make_caller(rpm=7)
    stores = [RateLimitStore(settings.rate_limits_table, clock=clock) for _ in range(6)]

    def hit(n: int) -> bool:
        return stores[n % len(stores)].hit(caller.key.key_id, 7).allowed

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        allowed = list(pool.map(hit, range(30)))
    assert sum(allowed) == 7
    clock.advance(60)
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        allowed = list(pool.map(hit, range(30)))
    assert sum(allowed) == 7


def test_one_write_per_request_while_the_bucket_has_room(
    settings, make_caller: MakeCaller, clock: FakeClock
) -> None:
    caller = make_caller(rpm=5)
    store = RateLimitStore(settings.rate_limits_table, dynamodb_client(), clock)
    writes: list[str] = []
    store.client.meta.events.register(
        "before-send.dynamodb.UpdateItem", lambda **_: writes.append("UpdateItem")
    )
    for _ in range(5):
        assert store.hit(caller.key.key_id, 5).allowed
    assert len(writes) == 5  # idle bucket, then busy: this process guessed right each time
    writes.clear()
    assert not store.hit(caller.key.key_id, 5).allowed
    assert len(writes) == 1  # refused on the stored value the failed write returned
