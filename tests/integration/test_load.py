"""Load against a real ``tinyscribe serve``: saturation and rate limits stay clean and exact.

A server of its own runs with two transcription slots and a 2 s queue, so that 20
concurrent clients sending 200 short clips saturate it (503 + Retry-After); some keys have
a low per-minute limit, so 429s (+ Retry-After) happen too. Every response must be one of
those three, none may hang, and afterwards every wallet's money must be exact: the
invariants hold, one settled charge per 200, one refunded charge per busy 503, and the
balance is the grant minus the settled charges.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from handler.config import Settings
from handler.devstack import free_port, wait_for_port
from handler.services import Services
from tests.integration.conftest import Caller, MakeCaller
from tests.support.audio import speak
from tests.support.money import assert_money_invariants

REQUESTS = 200
CLIENTS = 20
CLIENT_TIMEOUT_SECONDS = 60.0
GRANT = 1_000_000
ALLOWED = {200, 429, 503}


@pytest.fixture(scope="module")
def saturable_server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tinyscribe serve`` with 2 transcription slots and a 2 s wait for one."""
    port = free_port()
    log = tmp_path_factory.mktemp("load") / "server.log"
    env = {
        **os.environ,
        "TINYSCRIBE_MAX_CONCURRENT_TRANSCRIPTIONS": "2",
        "TINYSCRIBE_TRANSCRIPTION_QUEUE_SECONDS": "2",
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "tinyscribe"), "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=60, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def clip(audio_dir: Path) -> bytes:
    """About 1.4 s of synthetic speech."""
    return speak("Thank you very much.", audio_dir / "load-clip.wav").read_bytes()


@dataclass(frozen=True)
class Result:
    caller: Caller
    status: int
    headers: httpx.Headers
    body: dict[str, Any]
    seconds: float


def send(client: httpx.Client, caller: Caller, clip: bytes) -> Result:
    started = time.monotonic()
    response = client.post(
        "/v1/audio/transcriptions",
        headers=caller.headers,
        files={"file": ("clip.wav", clip, "audio/wav")},
        data={"model": "whisper-1"},
    )
    body = response.json() if response.headers.get("content-type") == "application/json" else {}
    return Result(caller, response.status_code, response.headers, body, time.monotonic() - started)


@pytest.mark.timeout(300)
def test_two_hundred_requests_from_twenty_clients(
    saturable_server: str, make_caller: MakeCaller, settings: Settings, engine, clip: bytes
) -> None:
    services = Services.from_settings(settings, engine)
    shared_wallet = make_caller(credit_micro_usd=GRANT)
    callers = [
        shared_wallet,
        make_caller(wallet_id=shared_wallet.key.wallet_id),  # a second key on the same wallet
        make_caller(credit_micro_usd=GRANT),
        make_caller(credit_micro_usd=GRANT, rpm=8),  # these two get rate limited
        make_caller(credit_micro_usd=GRANT, rpm=5),
    ]
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    with httpx.Client(
        base_url=saturable_server, timeout=CLIENT_TIMEOUT_SECONDS, limits=limits
    ) as client:
        warm_up = make_caller(credit_micro_usd=GRANT)  # loads the model in the server
        assert send(client, warm_up, clip).status == 200
        assert_money_invariants(services.wallets, warm_up.key.wallet_id)

        started = time.monotonic()
        plan = [callers[i % len(callers)] for i in range(REQUESTS)]
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            results = list(pool.map(lambda caller: send(client, caller, clip), plan))
        elapsed = time.monotonic() - started

    statuses = Counter(result.status for result in results)
    codes = Counter(
        (result.status, result.body.get("error", {}).get("code"))
        for result in results
        if result.status != 200
    )
    print(
        f"\nload: {REQUESTS} requests, {CLIENTS} clients, {elapsed:.1f} s: "
        f"{dict(sorted(statuses.items()))}; errors {dict(codes)}; "
        f"slowest {max(r.seconds for r in results):.1f} s"
    )

    assert set(statuses) <= ALLOWED, statuses
    assert statuses[200] > 0 and statuses[429] > 0, statuses
    for result in results:
        if result.status in (429, 503):
            retry_after = result.headers.get("retry-after", "")
            assert retry_after.isdigit() and int(retry_after) > 0, result.headers
            error = result.body["error"]
            assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}
            expected = "rate_limit_error" if result.status == 429 else "service_unavailable"
            assert error["type"] == expected

    # Money: one settled charge per 200 and nothing else, per wallet: a busy 503 is answered
    # before the wallet is touched.
    costs = {r.headers["x-tinyscribe-cost-micro-usd"] for r in results if r.status == 200}
    assert len(costs) == 1, costs  # the same clip costs the same every time
    cost = int(costs.pop())
    ok: Counter[str] = Counter()
    for result in results:
        ok[result.caller.key.wallet_id] += result.status == 200
    grants = defaultdict(int, {shared_wallet.key.wallet_id: GRANT})
    for caller in callers[2:]:
        grants[caller.key.wallet_id] = GRANT
    for wallet_id in grants:
        assert_money_invariants(services.wallets, wallet_id)
        charges = [e for e in services.wallets.all_entries(wallet_id) if e.kind == "charge"]
        settled = [e for e in charges if e.status == "settled"]
        assert len(settled) == len(charges) == ok[wallet_id], (wallet_id, len(charges))
        assert all(e.amount == -cost for e in charges)
        assert services.wallets.get(wallet_id).balance == GRANT - cost * ok[wallet_id]
