"""The HTTP path's money under faults: a failure injected at each step of a transcription
(before and after the reservation, in the engine, the renderer, the settlement), then the
client's retries (the same request again, with or without an Idempotency-Key) and the
scheduled reconciliation. Afterwards the client has its transcript, the wallet paid for it
exactly once, every failed unit was refunded, and the ledger sums to the balance.

Real parts throughout (DynamoDB Local on tables of the test's own, the real model); faults
are injected at botocore's wire level, in the engine, or in the renderer.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import handler.formats
import handler.pipeline
from handler.api import create_app
from handler.config import Settings
from handler.engine import Engine
from handler.reconcile import reconcile
from handler.services import Services
from tests.integration.conftest import Caller, new_caller
from tests.support.clock import FakeClock
from tests.support.engines import FailingEngine
from tests.support.faults import (
    UnreachableAfter,
    connection_refused,
    dynamodb_client,
    is_reservation,
    is_settlement,
    response_lost,
)
from tests.support.http import Response
from tests.support.money import assert_money_invariants, charges

HOUR = 3600.0
DYNAMODB_ATTEMPTS = 3  # botocore's attempts per call (handler.stores.dynamo.CLIENT_CONFIG)


@dataclass
class Stack:
    """One test's service: its own tables, a faultable DynamoDB client, its clock."""

    services: Services
    clock: FakeClock
    dynamodb: Any
    monkeypatch: pytest.MonkeyPatch


Fault = Callable[[Stack], Any]
"""Arms a fault for the first attempt; returns a handle (or None)."""


def refuse_reservation(stack: Stack) -> Any:
    return connection_refused(
        stack.dynamodb, "TransactWriteItems", is_reservation, times=DYNAMODB_ATTEMPTS
    )


def lose_reservation_answer(stack: Stack) -> Any:
    return response_lost(stack.dynamodb, "TransactWriteItems", is_reservation)


def lose_database_after_reservation(stack: Stack) -> Any:
    return UnreachableAfter(stack.dynamodb, is_reservation)


def fail_engine(stack: Stack) -> Any:
    stack.services = _replace_engine(stack.services, FailingEngine(stack.services.engine))


def fail_render(stack: Stack) -> Any:
    real = handler.formats.render  # what handler.pipeline imported
    calls = {"n": 0}

    def render_failing_once(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("renderer bug (simulated)")
        return real(*args)

    stack.monkeypatch.setattr(handler.pipeline, "render", render_failing_once)


def refuse_settlement(stack: Stack) -> Any:
    return connection_refused(stack.dynamodb, "*", is_settlement, times=DYNAMODB_ATTEMPTS)


def lose_settlement_answer(stack: Stack) -> Any:
    return response_lost(stack.dynamodb, "*", is_settlement)


# step -> (fault, status of the first attempt)
STEPS: dict[str, tuple[Fault, int]] = {
    "before-reserve": (refuse_reservation, 503),
    "reserve-answer-lost": (lose_reservation_answer, 200),
    "after-reserve": (lose_database_after_reservation, 503),
    "engine": (fail_engine, 500),
    "render": (fail_render, 500),
    "settle": (refuse_settlement, 503),
    "settle-answer-lost": (lose_settlement_answer, 200),
}


def _replace_engine(services: Services, engine: Engine) -> Services:
    return dataclasses.replace(services, engine=engine)


@pytest.fixture
def stack(own_tables: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Stack:
    clock = FakeClock(2_100_000_000.0)
    dynamodb = dynamodb_client()
    services = Services.from_settings(own_tables, engine, dynamodb=dynamodb, clock=clock)
    return Stack(services, clock, dynamodb, monkeypatch)


def post(client: TestClient, caller: Caller, audio: bytes, key: str | None) -> Response:
    headers = {**caller.headers, **({"Idempotency-Key": key} if key else {})}
    return client.post(
        "/v1/audio/transcriptions",
        headers=headers,
        files={"file": ("speech.wav", audio)},
        data={"model": "whisper-1"},
    )


def client_retries(
    stack: Stack, caller: Caller, audio: bytes, key: str | None, restore: Callable[[], None]
) -> Iterator[Response]:
    """The first attempt, then what the SDK does: retry 5xx and 409 (after Retry-After)."""
    with TestClient(create_app(stack.services), raise_server_exceptions=False) as client:
        for _attempt in range(4):
            response = post(client, caller, audio, key)
            yield response
            if response.status_code == 200:
                return
            restore()  # the fault was transient
            if response.status_code == 409:
                # A dead attempt holds the key until its lock runs out.
                stack.clock.advance(stack.services.settings.idempotency_lock_seconds + 1)
            else:
                stack.clock.advance(int(response.headers.get("retry-after", "1")))
    pytest.fail("the client never got its transcript")


@pytest.mark.parametrize("with_key", [True, False], ids=["idempotency-key", "no-key"])
@pytest.mark.parametrize("step", list(STEPS))
def test_a_failure_at_each_step_then_retries_charge_exactly_once(
    stack: Stack, short_speech_wav: Path, step: str, with_key: bool
) -> None:
    fault, first_status = STEPS[step]
    caller = new_caller(stack.services)
    handle = fault(stack)

    def restore() -> None:
        if isinstance(handle, UnreachableAfter):
            handle.restore()

    key = str(uuid.uuid4()) if with_key else None
    responses = list(client_retries(stack, caller, short_speech_wav.read_bytes(), key, restore))
    assert responses[0].status_code == first_status, responses[0].text
    assert responses[-1].status_code == 200
    for failed in responses[:-1]:  # retryable: 5xx, or 409 while a dead attempt holds the key
        assert failed.status_code in (409, 500, 503), failed.text
        assert "Traceback" not in failed.text
    # The platform's housekeeping closes what a dead attempt left open.
    stack.clock.advance(HOUR)
    reconcile(stack.services)

    wallets = stack.services.wallets
    failed_units = [f"request:{r.headers['x-request-id']}" for r in responses[:-1]]
    assert_money_invariants(wallets, caller.key.wallet_id, failed_units=failed_units)
    entries = charges(wallets, caller.key.wallet_id)
    (settled,) = [e for e in entries if e.status == "settled"]
    cost = int(responses[-1].headers["x-tinyscribe-cost-micro-usd"])
    assert -settled.amount == cost
    assert wallets.get(caller.key.wallet_id).balance == 1_000_000 - cost
    if with_key:
        assert settled.unit is not None
        assert {e.unit.rsplit(":", 1)[0] for e in entries if e.unit} == {
            settled.unit.rsplit(":", 1)[0]
        }, "every attempt was charged under the one key"


def test_a_response_lost_after_settlement_is_replayed_not_charged_again(
    stack: Stack, speech_wav: Path
) -> None:
    """The transcript was charged and sent, but never reached the client (a timeout): the
    SDK retries with the same key and gets it again, for nothing."""
    caller = new_caller(stack.services)
    key = str(uuid.uuid4())
    with TestClient(create_app(stack.services), raise_server_exceptions=False) as client:
        lost = post(client, caller, speech_wav.read_bytes(), key)
        retried = post(client, caller, speech_wav.read_bytes(), key)
    assert lost.status_code == retried.status_code == 200
    assert retried.content == lost.content and retried.headers["idempotent-replayed"] == "true"
    assert len(charges(stack.services.wallets, caller.key.wallet_id)) == 1
    assert_money_invariants(stack.services.wallets, caller.key.wallet_id)
