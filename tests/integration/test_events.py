"""Every sample event in ``events/`` through the real Lambda entry point.

``sam local invoke ApiFunction -e events/<file>`` needs Docker, which these machines lack,
so the tests hand each JSON file to :func:`handler.app.lambda_handler` exactly as the
emulator (or API Gateway, or a Function URL) would, with a fresh key in its Authorization
header, and check the status, the response encoding and the content.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI, UploadFile
from mangum import Mangum

import handler.app
from handler.app import UnsupportedEvent
from handler.config import Settings
from handler.models import MODEL_IDS
from handler.services import Services
from handler.stores.keys import SECRET_PATTERN
from tests.integration.conftest import Caller
from tests.support.lambda_context import LambdaContext
from tests.support.money import assert_money_invariants
from tests.support.text import word_error_rate

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
HTTP_PREFIXES = ("http-api-", "rest-api-", "function-url-")
MAX_EVENT_BYTES = 60 * 1024
MAX_WER = 0.3
SRT_TIMING = re.compile(r"^(\d{2}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2}):(\d{2}):(\d{2}),(\d{3})$")
ERROR_FIELDS = {"message", "type", "param", "code"}


def load_generator() -> ModuleType:
    """``events/generate.py`` (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("events_generate", EVENTS_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


generate = load_generator()
SPOKEN_TEXT: str = generate.SPOKEN_TEXT


@dataclass(frozen=True)
class Expected:
    """What one event must produce."""

    status: int
    kind: str
    """``json``, ``verbose_json``, ``translation_verbose_json``, ``text``, ``srt``, ``stream``,
    ``models``, ``health`` or ``error``."""
    error_type: str | None = None
    error_code: str | None = None
    error_param: str | None = None
    content_type: str = "application/json"


EXPECTED: dict[str, Expected] = {
    "http-api-transcribe-json.json": Expected(200, "json"),
    "http-api-transcribe-srt.json": Expected(200, "srt", content_type="application/x-subrip"),
    "rest-api-transcribe-verbose-json.json": Expected(200, "verbose_json"),
    "function-url-transcribe-text.json": Expected(200, "text", content_type="text/plain"),
    "http-api-list-models.json": Expected(200, "models"),
    "http-api-health.json": Expected(200, "health"),
    "http-api-unknown-path.json": Expected(404, "error", "not_found", "not_found"),
    "http-api-missing-key.json": Expected(401, "error", "authentication_error", "missing_api_key"),
    "http-api-unknown-model.json": Expected(
        404, "error", "not_found", "model_not_found", error_param="model"
    ),
    "http-api-translate-verbose-json.json": Expected(200, "translation_verbose_json"),
    "http-api-transcribe-stream.json": Expected(200, "stream", content_type="text/event-stream"),
}


def event_files() -> list[str]:
    """Names of the HTTP sample events on disk."""
    return sorted(p.name for p in EVENTS_DIR.glob("*.json") if p.name.startswith(HTTP_PREFIXES))


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return event


def with_key(event: dict[str, Any], secret: str) -> dict[str, Any]:
    """A copy of ``event`` whose Authorization header (any case, single and multi-value)
    carries ``secret``; events without one stay as they are."""
    event = copy.deepcopy(event)
    for name in list(event.get("headers") or {}):
        if name.lower() == "authorization":
            event["headers"][name] = f"Bearer {secret}"
    for name in list(event.get("multiValueHeaders") or {}):
        if name.lower() == "authorization":
            event["multiValueHeaders"][name] = [f"Bearer {secret}"]
    return event


def has_authorization(event: dict[str, Any]) -> bool:
    return any(name.lower() == "authorization" for name in event.get("headers") or {})


def response_headers(response: dict[str, Any]) -> dict[str, str]:
    """Single-value headers, lowercased (v1 responses may also carry multi-value ones)."""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name.lower(), ", ".join(values))
    return headers


def response_body(response: dict[str, Any]) -> bytes:
    """The body as the gateway would deliver it to the client."""
    body = response.get("body", "")
    assert isinstance(body, str)
    if response.get("isBase64Encoded"):
        return base64.b64decode(body, validate=True)
    return body.encode()


def multipart_file(event: dict[str, Any]) -> bytes:
    """The bytes of the ``file`` part inside an event's multipart body."""
    headers = {k.lower(): v for k, v in event["headers"].items()}
    raw = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + raw
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError("no file part in the event body")


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """Cues of an SRT file; fails on anything malformed."""
    cues = []
    blocks = [b for b in text.replace("\r\n", "\n").strip().split("\n\n") if b.strip()]
    assert blocks, "empty SRT"
    for number, block in enumerate(blocks, start=1):
        lines = block.split("\n")
        assert lines[0] == str(number), f"cue {number} numbered {lines[0]!r}"
        match = SRT_TIMING.match(lines[1])
        assert match, f"bad timing line {lines[1]!r}"
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups())
        start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        assert 0 <= start <= end
        assert len(lines) > 2, f"cue {number} has no text"
        cues.append((start, end, " ".join(lines[2:])))
    return cues


Invoke = Callable[[dict[str, Any]], dict[str, Any]]


def reset_entry_point() -> None:
    """Forget the entry point's process-wide objects (settings, services, Mangum adapter)."""
    handler.app.reset()


@pytest.fixture(scope="module")
def invoke(settings: Settings) -> Iterator[Invoke]:
    """``lambda_handler`` with its adapter built for the test environment.

    The entry point caches its Mangum adapter (and what it is built from) per process from
    ``get_settings()``: reset it after the ``settings`` fixture has pointed the environment
    at the local stack, and again afterwards, so no other test gets objects built here.
    """
    reset_entry_point()

    def call(event: dict[str, Any]) -> dict[str, Any]:
        response = handler.app.lambda_handler(event, LambdaContext())
        assert isinstance(response, dict)
        return response

    yield call
    reset_entry_point()


# ------------------------------------------------------------------------ the event files


def test_every_event_file_has_an_expectation() -> None:
    on_disk = set(event_files())
    assert on_disk, f"no sample events in {EVENTS_DIR}"
    assert on_disk - EXPECTED.keys() == set(), "event files without an expected result"
    assert EXPECTED.keys() - on_disk == set(), "expected events missing: run `make events`"


def test_placeholder_key_is_well_formed() -> None:
    assert SECRET_PATTERN.fullmatch(generate.PLACEHOLDER_KEY)
    assert generate.KEY_PATTERN.pattern == SECRET_PATTERN.pattern


@pytest.mark.parametrize("name", event_files())
def test_event_file_is_small_and_well_formed(name: str) -> None:
    path = EVENTS_DIR / name
    assert path.stat().st_size < MAX_EVENT_BYTES
    event = load_event(name)
    headers = event["headers"]
    if name.startswith("rest-api-"):
        assert event["resource"] == "/{proxy+}"
        assert event["requestContext"]["stage"] == "prod"
        assert event["requestContext"]["httpMethod"] == event["httpMethod"]
        assert event["pathParameters"] == {"proxy": event["path"].lstrip("/")}
        assert event["requestContext"]["identity"]["sourceIp"]
        assert {k: [v] for k, v in headers.items()} == event["multiValueHeaders"]
    else:
        assert event["version"] == "2.0"
        assert event["routeKey"] == event["requestContext"]["routeKey"] == "$default"
        assert event["requestContext"]["stage"] == "$default"
        assert event["rawPath"] == event["requestContext"]["http"]["path"]
        assert all(k == k.lower() for k in headers), "payload 2.0 headers are lowercase"
        domain = event["requestContext"]["domainName"]
        if name.startswith("function-url-"):
            assert domain.endswith(".lambda-url.us-east-1.on.aws")
        else:
            assert domain.endswith(".execute-api.us-east-1.amazonaws.com")
    lower = {k.lower(): v for k, v in headers.items()}
    if "body" in event:
        assert event["isBase64Encoded"] is True
        raw = base64.b64decode(event["body"], validate=True)
        assert lower["content-type"].startswith("multipart/form-data; boundary=")
        assert int(lower["content-length"]) == len(raw)
    if "authorization" in lower:
        scheme, _, secret = lower["authorization"].partition(" ")
        assert scheme == "Bearer" and SECRET_PATTERN.fullmatch(secret)


def test_generator_is_deterministic_and_matches_the_files(tmp_path: Path) -> None:
    """Regenerating gives the committed files (only the audio bytes may differ if another
    espeak-ng or LAME version synthesises the clip)."""
    generate.write_events(tmp_path, generate.PLACEHOLDER_KEY)
    first = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    generate.write_events(tmp_path, generate.PLACEHOLDER_KEY)
    assert first == {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    assert set(first) == set(event_files())

    def without_audio(event: dict[str, Any]) -> dict[str, Any]:
        event = copy.deepcopy(event)
        event.pop("body", None)
        for headers in (event["headers"], event.get("multiValueHeaders") or {}):
            for name in list(headers):
                if name.lower() == "content-length":
                    del headers[name]
        return event

    for name, content in first.items():
        assert without_audio(json.loads(content)) == without_audio(load_event(name)), name


# -------------------------------------------------------------- through the entry point


@pytest.mark.parametrize("name", event_files())
def test_event_through_lambda_handler(name: str, invoke: Invoke, caller: Caller) -> None:
    assert name in EXPECTED, f"add {name} to EXPECTED"
    expected = EXPECTED[name]
    original = load_event(name)
    event = with_key(original, caller.secret)
    if has_authorization(original):
        assert caller.secret in json.dumps(event)
    snapshot = copy.deepcopy(event)

    response = invoke(event)

    assert event == snapshot, "the handler must not modify the event"
    assert response["statusCode"] == expected.status, response.get("body")
    headers = response_headers(response)
    assert headers["content-type"].startswith(expected.content_type)
    assert headers["x-request-id"] == event["requestContext"]["requestId"]
    assert headers["openai-processing-ms"].isdigit()
    # Every format is text (subtitles included), sent as is: a REST API without binary
    # media types would otherwise hand clients base64.
    assert response["isBase64Encoded"] is False
    body = response_body(response)

    check_content(expected, body, headers)


def check_content(expected: Expected, body: bytes, headers: dict[str, str]) -> None:
    """The body says what the event asked for."""
    if expected.kind == "error":
        envelope = json.loads(body)
        assert set(envelope) == {"error"}
        assert set(envelope["error"]) == ERROR_FIELDS
        assert envelope["error"]["type"] == expected.error_type
        assert envelope["error"]["code"] == expected.error_code
        assert envelope["error"]["param"] == expected.error_param
        assert envelope["error"]["message"]
    elif expected.kind == "health":
        assert json.loads(body)["status"] == "ok"
    elif expected.kind == "models":
        listing = json.loads(body)
        assert listing["object"] == "list"
        assert [m["id"] for m in listing["data"]] == list(MODEL_IDS)
    elif expected.kind == "json":
        result = json.loads(body)
        assert result["language"] == "en"
        assert 2 < result["duration"] < 10
        assert result["usage"] == {"type": "duration", "seconds": -(-result["duration"] // 1)}
        assert word_error_rate(SPOKEN_TEXT, result["text"]) <= MAX_WER, result["text"]
    elif expected.kind == "verbose_json":
        result = json.loads(body)
        assert result["task"] == "transcribe"
        assert result["language"] == "english"
        assert result["segments"]
        assert result["words"], "word granularity was asked for"
        for word in result["words"]:
            assert 0 <= word["start"] <= word["end"] <= result["duration"] + 0.5
        spoken = " ".join(w["word"] for w in result["words"])
        assert word_error_rate(SPOKEN_TEXT, spoken) <= MAX_WER, spoken
        assert word_error_rate(SPOKEN_TEXT, result["text"]) <= MAX_WER, result["text"]
    elif expected.kind == "translation_verbose_json":
        result = json.loads(body)
        assert set(result) == {"task", "language", "duration", "text", "segments"}
        assert (result["task"], result["language"]) == ("translate", "english")
        assert result["segments"] and 2 < result["duration"] < 10
        assert word_error_rate(SPOKEN_TEXT, result["text"]) <= MAX_WER, result["text"]
    elif expected.kind == "text":
        text = body.decode()
        assert not text.lstrip().startswith("{")
        assert word_error_rate(SPOKEN_TEXT, text) <= MAX_WER, text
    elif expected.kind == "stream":
        # Mangum buffers the stream: every event is in the one body, the done event last.
        events = [
            json.loads(block.removeprefix("data: "))
            for block in body.decode().split("\n\n")
            if block
        ]
        *deltas, done = events
        assert deltas and {e["type"] for e in deltas} == {"transcript.text.delta"}
        assert done["type"] == "transcript.text.done"
        assert done["text"] == "".join(e["delta"] for e in deltas)
        billed = int(headers["x-tinyscribe-billed-seconds"])  # charged before the first byte
        assert done["usage"] == {"type": "duration", "seconds": billed}
        assert 2 < billed < 10  # the sample's few seconds of speech
        assert word_error_rate(SPOKEN_TEXT, done["text"]) <= MAX_WER, done["text"]
    elif expected.kind == "srt":
        cues = parse_srt(body.decode())
        transcript = " ".join(text for _, _, text in cues)
        assert word_error_rate(SPOKEN_TEXT, transcript) <= MAX_WER, transcript
    else:  # pragma: no cover - a typo in EXPECTED
        raise AssertionError(f"unknown kind {expected.kind}")


# ------------------------------------------------------------------- body encoding paths


def echo_adapter() -> Mangum:
    """A bare app behind Mangum that reports what it received in the ``file`` field."""
    app = FastAPI()

    @app.post("/v1/audio/transcriptions")
    async def echo(file: UploadFile) -> dict[str, Any]:
        data = await file.read()
        return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    return Mangum(app, lifespan="off")


@pytest.mark.parametrize(
    "name",
    [
        "http-api-transcribe-json.json",
        "rest-api-transcribe-verbose-json.json",
        "function-url-transcribe-text.json",
    ],
)
def test_base64_multipart_reaches_the_app_byte_for_byte(name: str) -> None:
    event = load_event(name)
    assert event["isBase64Encoded"] is True
    audio = multipart_file(event)
    assert audio[:2] == b"\xff\xf3" or audio[:3] == b"ID3", "an MP3 frame or tag"

    response = echo_adapter()(event, LambdaContext())

    assert response["statusCode"] == 200, response["body"]
    received = json.loads(response_body(response))
    assert received == {"sha256": hashlib.sha256(audio).hexdigest(), "size": len(audio)}


def test_v2_base64_multipart_is_decoded_by_the_entry_point(invoke: Invoke, caller: Caller) -> None:
    """The real handler decodes the base64 body: the clip is transcribed, not garbage."""
    event = with_key(load_event("http-api-transcribe-json.json"), caller.secret)
    response = invoke(event)
    assert response["statusCode"] == 200, response["body"]
    billed = int(response_headers(response)["x-tinyscribe-billed-seconds"])
    result = json.loads(response_body(response))
    assert result["text"].strip()
    assert billed == result["usage"]["seconds"] > 0


def test_v2_multipart_without_base64_is_refused_cleanly(invoke: Invoke, caller: Caller) -> None:
    """If a gateway delivered the base64 text as the body (isBase64Encoded false), the app
    sees no valid multipart: a 400 envelope, never a 500 or a charge."""
    event = with_key(load_event("http-api-transcribe-json.json"), caller.secret)
    event["isBase64Encoded"] = False
    response = invoke(event)
    assert response["statusCode"] == 400, response["body"]
    error = json.loads(response_body(response))["error"]
    assert set(error) == ERROR_FIELDS
    assert error["type"] == "invalid_request_error"


def test_event_from_an_unwired_source_is_refused(invoke: Invoke) -> None:
    """An SQS message is no HTTP request: the invocation fails loudly."""
    event = {
        "Records": [
            {
                "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "body": "hello",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:queue",
                "awsRegion": "us-east-1",
            }
        ]
    }
    with pytest.raises(UnsupportedEvent):
        invoke(event)


@pytest.mark.parametrize(
    "body",
    ["%%% not base64 %%%", "QUJDR", "QUJDRA", "été"],
    ids=["junk", "truncated", "bad-padding", "non-ascii"],
)
def test_undecodable_base64_body_is_a_400_envelope_without_charge(
    invoke: Invoke, caller: Caller, services: Services, body: str
) -> None:
    """A body marked base64 that does not decode is the client's fault: 400, not 500."""
    event = with_key(load_event("http-api-transcribe-json.json"), caller.secret)
    event["body"] = body
    response = invoke(event)
    assert response["statusCode"] == 400, response["body"]
    error = json.loads(response["body"])["error"]
    assert set(error) == ERROR_FIELDS
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_body_encoding"
    assert response_headers(response)["x-request-id"] == event["requestContext"]["requestId"]
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(services.wallets, caller.key.wallet_id)
