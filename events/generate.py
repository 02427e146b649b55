"""Regenerate the sample Lambda events in ``events/``.

Every file is exactly what API Gateway (HTTP API payload 2.0, REST API payload 1.0) or a
Lambda Function URL hands to the function, so it can be passed to
``sam local invoke ApiFunction -e events/<file>`` and is replayed by
``tests/integration/test_events.py``.

The audio is a short clip synthesised with espeak-ng and encoded to a small mono 16 kHz MP3
with ffmpeg (bit-exact flags, no metadata). Request ids, times and the multipart boundary
are fixed, so regenerating the files gives no diff unless something meaningful changed.

Usage::

    .venv/bin/python events/generate.py                 # placeholder key
    .venv/bin/python events/generate.py --key sk-ts-... # a key from `tinyscribe keys create`
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent
if str(EVENTS_DIR.parent) not in sys.path:  # run as a script: the repository's modules
    sys.path.insert(0, str(EVENTS_DIR.parent))

from tests.support import lambda_events  # noqa: E402  (needs the path above)

SPOKEN_TEXT = "Hello from tiny scribe. The quick brown fox jumps over the lazy dog."
"""What the clip in every transcription event says."""

KEY_PATTERN = re.compile(r"sk-ts-([0-9a-f]{16})-[A-Za-z0-9_-]{43}")
"""The secret format of ``handler.stores.keys.SECRET_PATTERN`` (kept equal by the tests)."""

PLACEHOLDER_KEY = "sk-ts-0000000000000000-REPLACE_WITH_YOUR_KEY_sss__________________"
"""Well-formed but unknown key: replace it, or regenerate with ``--key``."""

BOUNDARY = "----tinyscribe-event-boundary-7MA4YWxkTrZu0gW"
"""Fixed multipart boundary (clients pick a random one; a fixed one keeps diffs small)."""

BASE_TIME = datetime(2025, 3, 12, 19, 3, 58, tzinfo=UTC)
"""Request time of the first event; each following event is one second later."""

ACCOUNT_ID = "123456789012"
HTTP_API_ID = "a1b2c3d4e5"
HTTP_API_DOMAIN = f"{HTTP_API_ID}.execute-api.us-east-1.amazonaws.com"
REST_API_ID = "f6g7h8i9j0"
REST_API_DOMAIN = f"{REST_API_ID}.execute-api.us-east-1.amazonaws.com"
REST_STAGE = "prod"
FUNCTION_URL_ID = "abcdefghijklmnopqrstuvwxyz234567"
FUNCTION_URL_DOMAIN = f"{FUNCTION_URL_ID}.lambda-url.us-east-1.on.aws"
SOURCE_IP = "203.0.113.10"
USER_AGENT = "curl/8.5.0"
TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
TRANSLATIONS_PATH = "/v1/audio/translations"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Form = list[tuple[str, str]]

MP3_OPTIONS = (
    "-ac", "1", "-ar", "16000", "-codec:a", "libmp3lame", "-b:a", "32k",
    "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
    "-id3v2_version", "0", "-write_id3v1", "0",
)  # fmt: skip
"""Mono 16 kHz (what Whisper uses), 32 kbit/s, and no tags or encoder version (stable bytes)."""


# ----------------------------------------------------------------------------------- audio


def synthesise_clip(text: str = SPOKEN_TEXT) -> bytes:
    """``text`` spoken by espeak-ng, as a small, reproducible mono 16 kHz MP3."""
    with tempfile.TemporaryDirectory(prefix="tinyscribe-events-") as tmp:
        wav = Path(tmp) / "speech.wav"
        mp3 = Path(tmp) / "speech.mp3"
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(wav),
                *MP3_OPTIONS,
                str(mp3),
            ],
            check=True,
            capture_output=True,
        )
        return mp3.read_bytes()


def multipart_body(form: Form, audio: bytes, filename: str = "speech.mp3") -> bytes:
    """A ``multipart/form-data`` body as ``curl -F`` or the OpenAI SDK would send it."""
    return lambda_events.multipart_body(
        form, audio, filename=filename, content_type="audio/mpeg", boundary=BOUNDARY
    )


# ---------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Request:
    """One client request, before a gateway turns it into an event."""

    method: str
    path: str
    authorization: str | None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def client_headers(self, host: str) -> dict[str, str]:
        """Headers as the client sent them (lowercase: how HTTP/2 and payload 2.0 carry them)."""
        headers = {"accept": "*/*"}
        if self.authorization is not None:
            headers["authorization"] = f"Bearer {self.authorization}"
        if self.body is not None:
            headers["content-length"] = str(len(self.body))
            headers["content-type"] = lambda_events.multipart_content_type(BOUNDARY)
        headers.update({"host": host, "user-agent": USER_AGENT, **self.headers})
        return headers


def request_time(index: int) -> tuple[str, int]:
    """API Gateway's ``time`` (CLF, English month names) and ``timeEpoch`` (ms) for an event."""
    moment = BASE_TIME + timedelta(seconds=index)
    clf = (
        f"{moment.day:02d}/{MONTHS[moment.month - 1]}/{moment.year}:"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} +0000"
    )
    return clf, int(moment.timestamp() * 1000)


def trace_id(index: int, epoch_ms: int) -> str:
    """An X-Ray trace header of the shape the gateways add."""
    return f"Root=1-{epoch_ms // 1000:08x}-{index:024x}"


def payload_v2_event(
    request: Request,
    index: int,
    request_id: str,
    *,
    domain: str,
    api_id: str,
    account_id: str,
    edge_headers: dict[str, str],
) -> dict[str, Any]:
    """Payload format 2.0, shared by HTTP APIs and Function URLs (``$default`` route)."""
    clf, epoch_ms = request_time(index)
    headers = request.client_headers(domain)
    headers.update(edge_headers)
    headers.update(
        {
            "x-amzn-trace-id": trace_id(index, epoch_ms),
            "x-forwarded-for": SOURCE_IP,
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        }
    )
    return lambda_events.payload_v2_event(
        request.method,
        request.path,
        dict(sorted(headers.items())),
        request.body,
        request_id=request_id,
        time=clf,
        time_epoch_ms=epoch_ms,
        domain=domain,
        api_id=api_id,
        account_id=account_id,
        source_ip=SOURCE_IP,
        user_agent=USER_AGENT,
    )


def http_api_event(request: Request, index: int, request_id: str) -> dict[str, Any]:
    """API Gateway HTTP API, payload format 2.0, ``$default`` route and stage."""
    return payload_v2_event(
        request,
        index,
        request_id,
        domain=HTTP_API_DOMAIN,
        api_id=HTTP_API_ID,
        account_id=ACCOUNT_ID,
        edge_headers={},
    )


def function_url_event(request: Request, index: int, request_id: str) -> dict[str, Any]:
    """Lambda Function URL (auth type NONE): payload 2.0 with the URL's own domain."""
    return payload_v2_event(
        request,
        index,
        request_id,
        domain=FUNCTION_URL_DOMAIN,
        api_id=FUNCTION_URL_ID,
        account_id="anonymous",
        edge_headers={
            "x-amzn-tls-cipher-suite": "ECDHE-RSA-AES128-GCM-SHA256",
            "x-amzn-tls-version": "TLSv1.2",
        },
    )


def rest_api_event(request: Request, index: int, request_id: str) -> dict[str, Any]:
    """API Gateway REST API, payload format 1.0, ``/{proxy+}`` resource on stage ``prod``.

    REST APIs keep the client's header case and repeat every header in ``multiValueHeaders``.
    The body is base64 because the API lists ``multipart/form-data`` in BinaryMediaTypes
    (without it, API Gateway corrupts multipart uploads).
    """
    clf, epoch_ms = request_time(index)
    headers = {
        "-".join(part.capitalize() for part in name.split("-")): value
        for name, value in request.client_headers(REST_API_DOMAIN).items()
    }
    headers.update(
        {
            "X-Amzn-Trace-Id": trace_id(index, epoch_ms),
            "X-Forwarded-For": SOURCE_IP,
            "X-Forwarded-Port": "443",
            "X-Forwarded-Proto": "https",
        }
    )
    headers = dict(sorted(headers.items()))
    event: dict[str, Any] = {
        "resource": "/{proxy+}",
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": request.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": "/{proxy+}",
            "httpMethod": request.method,
            "extendedRequestId": f"{request_id[:8].upper()}Fg=",
            "requestTime": clf,
            "path": f"/{REST_STAGE}{request.path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": REST_STAGE,
            "domainPrefix": REST_API_ID,
            "requestTimeEpoch": epoch_ms,
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": SOURCE_IP,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": USER_AGENT,
                "user": None,
            },
            "domainName": REST_API_DOMAIN,
            "deploymentId": "d3pl0y",
            "apiId": REST_API_ID,
        },
    }
    return lambda_events.add_body(event, request.body)


Builder = Callable[[Request, int, str], dict[str, Any]]


@dataclass(frozen=True)
class EventSpec:
    """One sample event: its file, the gateway that shapes it, and the request inside it."""

    filename: str
    builder: Builder
    method: str
    path: str
    request_id: str
    authenticated: bool = True
    form: Form | None = None
    """Multipart fields besides ``file``; ``None`` for a request without a body."""


def transcribe_form(
    response_format: str, model: str = "whisper-1", *extra: tuple[str, str]
) -> Form:
    """The form fields of a transcription (or translation) request."""
    return [("model", model), ("response_format", response_format), *extra]


SPECS: tuple[EventSpec, ...] = (
    EventSpec(
        "http-api-transcribe-json.json", http_api_event, "POST", TRANSCRIPTIONS_PATH,
        "Hk2vOgTmoAMEb1A=", form=transcribe_form("json"),
    ),
    EventSpec(
        "http-api-transcribe-srt.json", http_api_event, "POST", TRANSCRIPTIONS_PATH,
        "Hk2vOhQzoAMEb2B=", form=transcribe_form("srt"),
    ),
    EventSpec(
        "rest-api-transcribe-verbose-json.json", rest_api_event, "POST", TRANSCRIPTIONS_PATH,
        "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        form=transcribe_form("verbose_json", "whisper-1", ("timestamp_granularities[]", "word")),
    ),
    EventSpec(
        "function-url-transcribe-text.json", function_url_event, "POST", TRANSCRIPTIONS_PATH,
        "4d3c2b1a-0f9e-4d8c-b7a6-958473625140", form=transcribe_form("text"),
    ),
    EventSpec(
        "http-api-list-models.json", http_api_event, "GET", "/v1/models", "Hk2vOi7XoAMEb3C=",
    ),
    EventSpec(
        "http-api-health.json", http_api_event, "GET", "/health", "Hk2vOjK1oAMEb4D=",
        authenticated=False,
    ),
    EventSpec(
        "http-api-unknown-path.json", http_api_event, "GET", "/v1/nope", "Hk2vOkPaoAMEb5E=",
    ),
    EventSpec(
        "http-api-missing-key.json", http_api_event, "POST", TRANSCRIPTIONS_PATH,
        "Hk2vOlRsoAMEb6F=", authenticated=False, form=transcribe_form("json"),
    ),
    EventSpec(
        "http-api-unknown-model.json", http_api_event, "POST", TRANSCRIPTIONS_PATH,
        "Hk2vOmWdoAMEb7G=", form=transcribe_form("json", "gpt-4o"),
    ),
    EventSpec(
        "http-api-translate-verbose-json.json", http_api_event, "POST", TRANSLATIONS_PATH,
        "Hk2vOnXeoAMEb8H=", form=transcribe_form("verbose_json"),
    ),
    EventSpec(
        "http-api-transcribe-stream.json", http_api_event, "POST", TRANSCRIPTIONS_PATH,
        "Hk2vOoYfoAMEb9J=", form=transcribe_form("json", "whisper-1", ("stream", "true")),
    ),
)  # fmt: skip


def build_events(key: str, audio: bytes) -> dict[str, dict[str, Any]]:
    """Every sample event by file name, carrying ``key`` where the request is authenticated."""
    events: dict[str, dict[str, Any]] = {}
    for index, spec in enumerate(SPECS):
        body = None if spec.form is None else multipart_body(spec.form, audio)
        request = Request(spec.method, spec.path, key if spec.authenticated else None, body)
        events[spec.filename] = spec.builder(request, index, spec.request_id)
    return events


def render(event: dict[str, Any]) -> str:
    """Pretty, stable JSON (insertion order kept: it follows the gateways' own layout)."""
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def write_events(out_dir: Path, key: str, audio: bytes | None = None) -> list[Path]:
    """Write every event into ``out_dir`` and return the paths written."""
    if not KEY_PATTERN.fullmatch(key):
        raise ValueError("the key must look like sk-ts-<16 hex>-<43 url-safe characters>")
    audio = synthesise_clip() if audio is None else audio
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, event in build_events(key, audio).items():
        path = out_dir / filename
        path.write_text(render(event), encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: regenerate the events, optionally with a real key."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--key",
        default=PLACEHOLDER_KEY,
        help="API key to put in the Authorization headers (default: a placeholder)",
    )
    parser.add_argument(
        "--out", type=Path, default=EVENTS_DIR, help="output directory (default: events/)"
    )
    args = parser.parse_args(argv)
    try:
        written = write_events(args.out, args.key)
    except ValueError as error:
        parser.error(str(error))
    for path in written:
        print(f"{path.stat().st_size:>7} bytes  {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
