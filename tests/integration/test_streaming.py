"""``stream=true`` (``handler/streaming.py``): OpenAI's transcription events, read by the
official SDKs (Python sync and async, openai-node) from ``tinyscribe serve`` or from uvicorn in
this process, sent while the real model decodes, and billed like any request: the money
invariants hold after every test, through failures, hang-ups, retries and Lambda.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.audio import (
    TranscriptionTextDeltaEvent,
    TranscriptionTextDoneEvent,
    TranscriptionTextSegmentEvent,
)
from openai.types.audio.transcription import UsageDuration

import handler.app
from handler.api import create_app
from handler.config import Settings
from handler.engine import Engine
from handler.services import Services
from handler.streaming import MEDIA_TYPE
from tests.integration.conftest import SPEECH_TEXT, Caller, MakeCaller, new_caller
from tests.support.audio import HARVARD_SENTENCES
from tests.support.engines import (
    FailingEngine,
    MidStreamFailingEngine,
    PausingEngine,
    RecordingEngine,
)
from tests.support.faults import connection_refused, dynamodb_client, is_settlement
from tests.support.http import Response
from tests.support.lambda_context import LambdaContext
from tests.support.money import assert_money_invariants, charges
from tests.support.openai_node import run_openai_node
from tests.support.server import serving
from tests.support.text import word_error_rate
from tests.support.uploads import post_audio

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
DELTA, SEGMENT, DONE = "transcript.text.delta", "transcript.text.segment", "transcript.text.done"
ERROR_FIELDS = {"message", "type", "param", "code"}


def sdk(base_url: str, secret: str) -> openai.OpenAI:
    # max_retries=0: statuses the SDK would retry (429, 5xx) surface in the test.
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=secret, max_retries=0)


def frames(body: bytes) -> list[dict[str, Any]]:
    """The events of an SSE body, checking OpenAI's framing: each event is exactly one
    ``data:`` line of JSON followed by a blank line; no ``event:`` names, no ``[DONE]``."""
    text = body.decode()
    assert text.endswith("\n\n"), "every event ends with a blank line"
    events = []
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: ") and "\n" not in block, block
        events.append(json.loads(block[len("data: ") :]))
    return events


def post(
    client: TestClient | httpx.Client,
    caller: Caller,
    audio: Path,
    key: str | None = None,
    **fields: str,
) -> Response:
    headers = {**caller.headers, **({"Idempotency-Key": key} if key else {})}
    return post_audio(client, headers, audio, fields)


@dataclass
class Timed:
    """An SDK event and when (``time.monotonic()``) the client had it."""

    event: Any
    at: float


def stream_events(client: openai.OpenAI, audio: Path, **params: Any) -> list[Timed]:
    """``client.audio.transcriptions.create(stream=True, ...)`` read as an application would."""
    with audio.open("rb") as handle:
        stream = client.audio.transcriptions.create(
            model="whisper-1", file=handle, stream=True, **params
        )
        return [Timed(event, time.monotonic()) for event in stream]


# ----------------------------------------------------------------- the SDKs read the events


def test_python_sdk_streams_deltas_then_done_with_the_non_streamed_text(
    server: str, caller: Caller, services: Services, speech_wav: Path
) -> None:
    client = sdk(server, caller.secret)
    with speech_wav.open("rb") as handle:
        plain = client.audio.transcriptions.create(model="whisper-1", file=handle)
    assert word_error_rate(SPEECH_TEXT, plain.text) <= 0.25
    assert isinstance(plain.usage, UsageDuration)

    for response_format in ("json", "text"):
        events = [
            t.event for t in stream_events(client, speech_wav, response_format=response_format)
        ]
        *deltas, done = events
        assert deltas and all(isinstance(e, TranscriptionTextDeltaEvent) for e in deltas)
        assert [e.type for e in deltas] == [DELTA] * len(deltas)  # no event that was not asked
        assert isinstance(done, TranscriptionTextDoneEvent) and done.type == DONE
        assert done.text == plain.text == "".join(e.delta for e in deltas)
        assert done.usage is not None
        # The SDK types a done event's usage as token usage only; OpenAI's duration usage
        # (what Whisper models report) reaches it as an extra field.
        seconds = done.usage.seconds  # type: ignore[attr-defined]
        assert (done.usage.type, seconds) == ("duration", plain.usage.seconds)

    wallet = caller.key.wallet_id
    entries = charges(services.wallets, wallet)
    assert [e.status for e in entries] == ["settled"] * 3
    assert len({e.amount for e in entries}) == 1, "a stream costs what the same file costs"
    assert entries[0].audio_seconds == plain.usage.seconds
    assert_money_invariants(services.wallets, wallet)


def test_async_sdk_streams_the_same_events(
    server: str, caller: Caller, services: Services, speech_wav: Path
) -> None:
    async def read() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key=caller.secret, max_retries=0)
        stream = await client.audio.transcriptions.create(
            model="whisper-1", file=speech_wav, stream=True
        )
        return [event async for event in stream]

    *deltas, done = asyncio.run(read())
    assert [e.type for e in deltas] == [DELTA] * len(deltas) and deltas
    assert done.type == DONE and done.text == "".join(e.delta for e in deltas)
    assert word_error_rate(SPEECH_TEXT, done.text) <= 0.25
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_openai_node_streams_the_same_events(
    server: str, caller: Caller, services: Services, speech_wav: Path, tmp_path: Path
) -> None:
    calls = [
        {"endpoint": "transcriptions", "params": {"model": "whisper-1"}},
        {"endpoint": "transcriptions", "params": {"model": "whisper-1", "stream": True}},
        {
            "endpoint": "transcriptions",
            "params": {
                "model": "whisper-1",
                "stream": True,
                "response_format": "text",
                "timestamp_granularities": ["segment"],
            },
        },
    ]
    plain, streamed, with_segments = run_openai_node(
        f"{server}/v1", caller.secret, speech_wav, calls, tmp_path
    )["results"]
    assert plain["ok"] and streamed["ok"] and with_segments["ok"], (streamed, with_segments)
    *deltas, done = streamed["events"]
    assert [e["type"] for e in deltas] == [DELTA] * len(deltas) and deltas
    assert done == {
        "type": DONE,
        "text": plain["result"]["text"],
        "usage": {"type": "duration", "seconds": plain["result"]["usage"]["seconds"]},
    }
    assert "".join(e["delta"] for e in deltas) == done["text"]
    types = [e["type"] for e in with_segments["events"]]
    assert types == [DELTA, SEGMENT] * (len(types) // 2) + [DONE]
    assert with_segments["events"][-1] == done
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_segment_events_only_when_segment_times_are_asked_for(
    server: str, caller: Caller, services: Services, two_sentences_wav: Path
) -> None:
    client = sdk(server, caller.secret)
    with two_sentences_wav.open("rb") as handle:
        verbose = client.audio.transcriptions.create(
            model="whisper-1", file=handle, response_format="verbose_json"
        )
    assert verbose.segments is not None and len(verbose.segments) >= 2

    events = [
        t.event
        for t in stream_events(client, two_sentences_wav, timestamp_granularities=["segment"])
    ]
    # A segment's text, then the segment with its times; the done event last.
    assert [e.type for e in events] == [DELTA, SEGMENT] * len(verbose.segments) + [DONE]
    segments = [e for e in events if isinstance(e, TranscriptionTextSegmentEvent)]
    assert [(s.id, s.start, s.end, s.text) for s in segments] == [
        (f"seg_{s.id}", s.start, s.end, s.text) for s in verbose.segments
    ], "the same segments as verbose_json's"
    # No speaker: tiny.en does not diarize, and a made-up label would say it did.
    assert all("speaker" not in s.model_fields_set for s in segments)
    assert events[-1].text == verbose.text
    assert_money_invariants(services.wallets, caller.key.wallet_id)


# ------------------------------------------------------------------------- progressive


def test_first_delta_arrives_while_the_engine_is_still_decoding(
    settings: Settings, engine: Engine, make_caller: MakeCaller, long_speech_wav: Path
) -> None:
    """On ~70 s of speech (several decoding windows: the engine decodes the first alone, then
    the rest in a batch) the client has the first delta while the engine has decoded less than
    half of the audio, and before the engine starts yielding the next batch's segments. Times
    are compared with the engine's own, in this process: when it yielded each segment."""
    recording = RecordingEngine(engine)
    services = Services.from_settings(settings, recording)
    caller = make_caller()
    with serving(create_app(services)) as url:
        received = stream_events(sdk(url, caller.secret), long_speech_wav)

    [progress] = recording.yielded
    yielded = [at for at, _ in progress]
    *deltas, done = received
    assert done.event.type == DONE
    assert word_error_rate(" ".join(HARVARD_SENTENCES), done.event.text) <= 0.3
    assert len(deltas) == len(progress) >= 10
    duration = done.event.usage.seconds
    # The engine yields a batch's segments together, a decoding apart from the next batch's.
    windows = [i for i in range(1, len(yielded)) if yielded[i] - yielded[i - 1] > 0.5]
    assert windows, f"expected the first window alone, then a batch; yields at {yielded}"

    first = deltas[0].at
    decoded = max((end for at, end in progress if at <= first), default=0.0)
    assert decoded < duration / 2, f"{decoded:.1f} s of {duration} s decoded before it"
    assert first < yielded[windows[0]], "the first delta waited for the second batch"
    for index, delta in enumerate(deltas):
        later = [yielded[w] for w in windows if w > index]
        assert not later or delta.at < later[0], f"delta {index} waited for a later window"


# ------------------------------------------------------------------------- refused asks


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"stream": "true", "response_format": "srt"}, "stream"),
        ({"stream": "true", "response_format": "vtt"}, "stream"),
        ({"stream": "true", "response_format": "verbose_json"}, "stream"),
        ({"stream": "true", "timestamp_granularities[]": "word"}, "timestamp_granularities"),
        ({"stream": "maybe"}, "stream"),
        ({"stream": "yes"}, "stream"),
        ({"stream": "1"}, "stream"),
        ({"stream": "on"}, "stream"),
        ({"stream": "0"}, "stream"),
    ],
    ids=["srt", "vtt", "verbose_json", "word-times", "maybe", "yes", "1", "on", "0"],
)
def test_what_cannot_stream_is_a_clear_400_and_not_charged(
    client: TestClient, caller: Caller, services: Services, speech_wav: Path, fields, param
) -> None:
    response = post(client, caller, speech_wav, **fields)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert "Value error" not in error["message"]  # the reason, not pydantic's wording
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_the_sdk_gets_the_400_for_streamed_subtitles(
    server: str, caller: Caller, speech_wav: Path
) -> None:
    with speech_wav.open("rb") as handle, pytest.raises(openai.BadRequestError) as refused:
        sdk(server, caller.secret).audio.transcriptions.create(
            model="whisper-1", file=handle, stream=True, response_format="srt"
        )
    assert refused.value.param == "stream"
    assert "json" in refused.value.message and "text" in refused.value.message


def test_stream_false_is_the_plain_answer(
    client: TestClient, caller: Caller, speech_wav: Path
) -> None:
    response = post(client, caller, speech_wav, stream="false")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert word_error_rate(SPEECH_TEXT, response.json()["text"]) <= 0.25


# ------------------------------------------------------------- statuses before the stream


def test_busy_server_empty_wallet_and_missing_model_are_statuses_not_streams(
    settings: Settings,
    engine: Engine,
    make_caller: MakeCaller,
    speech_wav: Path,
    tmp_path: Path,
) -> None:
    services = Services.from_settings(
        settings.model_copy(update={"transcription_queue_seconds": 0.0}), engine
    )
    caller = make_caller()
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        for _ in range(settings.max_concurrent_transcriptions):
            services.slots.acquire()
        try:
            busy = post(client, caller, speech_wav, stream="true")
        finally:
            for _ in range(settings.max_concurrent_transcriptions):
                services.slots.release()
        poor = make_caller(credit_micro_usd=1)
        broke = post(client, poor, speech_wav, stream="true")
    assert (busy.status_code, busy.json()["error"]["code"]) == (503, "server_busy")
    assert busy.headers["retry-after"]
    assert (broke.status_code, broke.json()["error"]["type"]) == (402, "insufficient_credits")

    no_model = Services.from_settings(
        settings, Engine(settings.model_copy(update={"model_dir": str(tmp_path / "none")}))
    )
    with TestClient(create_app(no_model), raise_server_exceptions=False) as client:
        missing = post(client, caller, speech_wav, stream="true")
    assert missing.status_code == 503, missing.text
    assert missing.json()["error"]["code"] == "model_unavailable"
    assert charges(services.wallets, poor.key.wallet_id) == []  # refused before reserving
    (refunded,) = charges(services.wallets, caller.key.wallet_id)  # busy: never reserved
    assert refunded.status == "refunded"  # the model was missing: found out after reserving
    for payer in (caller, poor):
        assert_money_invariants(services.wallets, payer.key.wallet_id)


def test_engine_failing_before_the_first_event_is_a_500_and_refunded(
    settings: Settings, engine: Engine, caller: Caller, speech_wav: Path
) -> None:
    services = Services.from_settings(settings, FailingEngine(engine))
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        failed = post(client, caller, speech_wav, stream="true")
    assert failed.status_code == 500, failed.text
    assert failed.json()["error"]["type"] == "server_error"
    assert "Traceback" not in failed.text
    (charge,) = charges(services.wallets, caller.key.wallet_id)
    assert charge.status == "refunded"
    assert_money_invariants(
        services.wallets,
        caller.key.wallet_id,
        failed_units=[f"request:{failed.headers['x-request-id']}"],
    )


# ------------------------------------------------------------------------ mid-stream


def test_engine_failure_mid_stream_ends_with_an_error_event_and_refunds(
    settings: Settings, engine: Engine, caller: Caller, two_sentences_wav: Path
) -> None:
    services = Services.from_settings(settings, MidStreamFailingEngine(engine, after=1))
    with serving(create_app(services)) as url:
        received: list[Any] = []
        with pytest.raises(openai.APIError) as failed:
            for timed in stream_events(sdk(url, caller.secret), two_sentences_wav):
                received.append(timed.event)  # pragma: no cover - the SDK raises first
        # What the SDK saw: the first segment's text, then the error in the envelope's shape.
        raw = post(
            httpx.Client(base_url=url, timeout=120), caller, two_sentences_wav, stream="true"
        )

    assert failed.value.body == {
        "message": failed.value.message,
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
    assert "nothing is charged" in failed.value.message
    assert raw.status_code == 200 and raw.headers["content-type"].startswith(MEDIA_TYPE)
    *deltas, error = frames(raw.content)
    assert [e["type"] for e in deltas] == [DELTA] and deltas[0]["delta"].strip()
    assert error["type"] == "error" and set(error) == {"type", "error"}
    assert set(error["error"]) == ERROR_FIELDS and error["error"]["type"] == "server_error"
    entries = charges(services.wallets, caller.key.wallet_id)
    assert [e.status for e in entries] == ["refunded", "refunded"]
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(
        services.wallets,
        caller.key.wallet_id,
        failed_units=[f"request:{raw.headers['x-request-id']}"],
    )


@dataclass
class FaultyStack:
    services: Services
    dynamodb: Any


@pytest.fixture
def faulty(own_tables: Settings, engine: Engine) -> FaultyStack:
    """Tables of the test's own, behind a DynamoDB client that faults can be armed on."""
    dynamodb = dynamodb_client()
    return FaultyStack(Services.from_settings(own_tables, engine, dynamodb=dynamodb), dynamodb)


def test_a_settlement_that_fails_sends_the_error_event_instead_of_done_and_refunds(
    faulty: FaultyStack, speech_wav: Path
) -> None:
    caller = new_caller(faulty.services)
    connection_refused(faulty.dynamodb, "*", is_settlement, times=3)  # botocore's 3 attempts
    with TestClient(create_app(faulty.services), raise_server_exceptions=False) as client:
        response = post(client, caller, speech_wav, stream="true")
    assert response.status_code == 200
    *deltas, last = frames(response.content)
    assert [e["type"] for e in deltas] == [DELTA] * len(deltas) and deltas
    assert last["type"] == "error" and last["error"]["type"] == "service_unavailable"
    (charge,) = charges(faulty.services.wallets, caller.key.wallet_id)
    assert charge.status == "refunded"
    assert_money_invariants(
        faulty.services.wallets,
        caller.key.wallet_id,
        failed_units=[f"request:{response.headers['x-request-id']}"],
    )


# --------------------------------------------------------------------------- hang-ups


class Returns:
    """ASGI wrapper noting when the app has returned from a request (for a streamed
    response: when its body has ended, or was cancelled because the client went away)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.returned = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["path"] == TRANSCRIPTIONS:
            self.returned.set()


def test_a_client_that_hangs_up_is_charged_and_its_retry_gets_the_whole_stream(
    settings: Settings, engine: Engine, caller: Caller, two_sentences_wav: Path
) -> None:
    """The client reads the first event and closes the connection while the engine is still
    decoding. The transcription runs to the end anyway (as on Lambda) and is charged once; its
    slot is free again; the retry with the same Idempotency-Key gets every event, replayed and
    not charged again."""
    pausing = PausingEngine(engine, after=1)
    services = Services.from_settings(
        settings.model_copy(
            update={"max_concurrent_transcriptions": 1, "transcription_queue_seconds": 120.0}
        ),
        pausing,
    )
    app = Returns(create_app(services))
    key = str(uuid.uuid4())
    headers = {**caller.headers, "Idempotency-Key": key}
    with serving(app) as url, httpx.Client(base_url=url, timeout=120) as http:
        with two_sentences_wav.open("rb") as handle:
            request = http.build_request(
                "POST",
                TRANSCRIPTIONS,
                headers=headers,
                files={"file": (two_sentences_wav.name, handle)},
                data={"model": "whisper-1", "stream": "true"},
            )
            response = http.send(request, stream=True)
            assert response.status_code == 200
            first = next(response.iter_lines())
            assert pausing.paused.wait(60) and not pausing.resume.is_set()
            response.close()  # hangs up with the rest of the transcript still to come
        assert json.loads(first.removeprefix("data: "))["type"] == DELTA
        # The server noticed: the response is over while the engine is still paused.
        assert app.returned.wait(60), "the server never noticed the client had gone"
        assert charges(services.wallets, caller.key.wallet_id)[0].status == "reserved"
        pausing.resume.set()
        # The only slot comes back when the abandoned stream has finished: this request
        # waits for it, and gets through.
        after = post(http, caller, two_sentences_wav)
        assert after.status_code == 200, after.text
        retried = post(http, caller, two_sentences_wav, key, stream="true")

    assert retried.status_code == 200 and retried.headers["idempotent-replayed"] == "true"
    *deltas, done = frames(retried.content)
    assert len(deltas) >= 2 and done["type"] == DONE
    assert done["text"] == after.json()["text"], "the whole transcript, as if never cut"
    hung_up, plain = charges(services.wallets, caller.key.wallet_id)
    assert (hung_up.status, plain.status) == ("settled", "settled")
    assert hung_up.unit is not None and hung_up.unit.startswith("idempotency:")
    assert retried.headers["x-tinyscribe-cost-micro-usd"] == str(-hung_up.amount)
    assert_money_invariants(services.wallets, caller.key.wallet_id)


# ------------------------------------------------------------------- Idempotency-Key


def test_idempotency_key_stores_the_stream_and_replays_it_as_one_body(
    client: TestClient, caller: Caller, services: Services, speech_wav: Path, server: str
) -> None:
    key = str(uuid.uuid4())
    first = post(client, caller, speech_wav, key, stream="true")
    again = post(client, caller, speech_wav, key, stream="true")
    assert first.status_code == again.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    for name in ("x-tinyscribe-billed-seconds", "x-tinyscribe-cost-micro-usd"):
        assert again.headers[name] == first.headers[name]
    # The SDK reads the replay as the same events.
    with speech_wav.open("rb") as handle:
        replayed = sdk(server, caller.secret).audio.transcriptions.create(
            model="whisper-1", file=handle, stream=True, extra_headers={"Idempotency-Key": key}
        )
        assert [e.model_dump(exclude_unset=True) for e in replayed] == frames(first.content)
    # The same key for the same file without stream is another request.
    other = post(client, caller, speech_wav, key)
    assert other.status_code == 422
    (charge,) = charges(services.wallets, caller.key.wallet_id)
    assert charge.status == "settled"
    assert_money_invariants(services.wallets, caller.key.wallet_id)


def test_a_stream_that_failed_under_a_key_runs_again_on_retry_and_is_charged_once(
    settings: Settings, engine: Engine, caller: Caller, two_sentences_wav: Path
) -> None:
    services = Services.from_settings(settings, MidStreamFailingEngine(engine, after=1, failures=1))
    key = str(uuid.uuid4())
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        failed = post(client, caller, two_sentences_wav, key, stream="true")
        retried = post(client, caller, two_sentences_wav, key, stream="true")
    assert frames(failed.content)[-1]["type"] == "error"
    assert "idempotent-replayed" not in retried.headers
    assert frames(retried.content)[-1]["type"] == DONE
    refunded, settled = charges(services.wallets, caller.key.wallet_id)
    assert (refunded.status, settled.status) == ("refunded", "settled")
    assert refunded.unit != settled.unit  # the key was released: a new unit of work
    assert refunded.unit is not None
    assert_money_invariants(services.wallets, caller.key.wallet_id, failed_units=[refunded.unit])


# ---------------------------------------------------------------------------- Lambda


@pytest.fixture
def lambda_handler(settings: Settings) -> Iterator[Any]:
    """``handler.app.lambda_handler`` built for the test environment, forgotten afterwards."""
    handler.app.reset()
    yield handler.app.lambda_handler
    handler.app.reset()


def test_through_lambda_the_whole_stream_arrives_in_one_body(
    lambda_handler: Any, caller: Caller, services: Services
) -> None:
    """Mangum buffers: API Gateway gets every event at once, when the transcription is done."""
    event = json.loads((EVENTS_DIR / "http-api-transcribe-stream.json").read_text())
    event["headers"]["authorization"] = f"Bearer {caller.secret}"
    response = lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 200, response["body"]
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["content-type"].startswith(MEDIA_TYPE)
    assert response["isBase64Encoded"] is False  # text, also for a REST API
    *deltas, done = frames(response["body"].encode())
    assert [e["type"] for e in deltas] == [DELTA] * len(deltas) and deltas
    assert done["type"] == DONE and done["text"] == "".join(e["delta"] for e in deltas)
    seconds = int(headers["x-tinyscribe-billed-seconds"])
    assert done["usage"] == {"type": "duration", "seconds": seconds}
    (charge,) = charges(services.wallets, caller.key.wallet_id)
    assert (charge.status, -charge.amount) == (
        "settled",
        int(headers["x-tinyscribe-cost-micro-usd"]),
    )
    assert charge.audio_seconds == seconds
    assert_money_invariants(services.wallets, caller.key.wallet_id)
