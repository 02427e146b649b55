"""handler.idempotency: the Idempotency-Key header's rules and the request fingerprint that
decides whether a retry asks for the same thing (no table, no server)."""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import pytest
from starlette.requests import Request

from handler.errors import InvalidRequest
from handler.idempotency import MAX_KEY_LENGTH, check_key, request_fingerprint

URL = "http://testserver/v1/audio/transcriptions"


def fingerprint(request: httpx.Request) -> str:
    """:func:`request_fingerprint` of ``request`` as the app would receive it."""
    body = request.read()
    scope = {
        "type": "http",
        "method": request.method,
        "path": request.url.path,
        "raw_path": request.url.raw_path,
        "query_string": b"",
        "headers": [(name.lower(), value) for name, value in request.headers.raw],
        "scheme": "http",
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return asyncio.run(request_fingerprint(Request(scope, receive)))


def upload(audio: bytes, fields: dict[str, str], url: str = URL) -> httpx.Request:
    return httpx.Request("POST", url, files={"file": ("a.wav", audio)}, data=fields)


@pytest.mark.parametrize("key", ["a", "550e8400-e29b-41d4-a716-446655440000", "~" * MAX_KEY_LENGTH])
def test_visible_ascii_keys_up_to_255_are_accepted(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * (MAX_KEY_LENGTH + 1), "tab\tkey", "clé", "new\nline"])
def test_other_keys_are_a_400_on_the_header(key: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_key(key)
    assert (refused.value.param, refused.value.code) == (
        "Idempotency-Key",
        "invalid_idempotency_key",
    )


def test_a_json_body_is_fingerprinted_whatever_its_key_order_and_spacing() -> None:
    first = httpx.Request(
        "POST", URL + "/jobs", content=b'{"model": "whisper-1", "language": "en"}'
    )
    second = httpx.Request("POST", URL + "/jobs", content=b'{"language":"en","model":"whisper-1"}')
    material = ["POST", "/v1/audio/transcriptions/jobs", {"language": "en", "model": "whisper-1"}]
    expected = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    assert fingerprint(first) == fingerprint(second) == expected


def test_a_body_that_is_not_json_is_fingerprinted_by_its_bytes() -> None:
    request = httpx.Request("POST", URL + "/jobs", content=b"\xff not json")
    material = [
        "POST",
        "/v1/audio/transcriptions/jobs",
        hashlib.sha256(b"\xff not json").hexdigest(),
    ]
    expected = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    assert fingerprint(request) == expected


def test_a_multipart_fingerprint_covers_fields_and_file_bytes_not_boundaries() -> None:
    audio = b"RIFF" + bytes(1000)
    same = fingerprint(upload(audio, {"model": "whisper-1", "prompt": "Hi."}))
    # A new boundary and another field order: the same request.
    assert fingerprint(upload(audio, {"prompt": "Hi.", "model": "whisper-1"})) == same
    material = [
        "POST",
        "/v1/audio/transcriptions",
        sorted(
            [
                ("file", "sha256:" + hashlib.sha256(audio).hexdigest()),
                ("model", "whisper-1"),
                ("prompt", "Hi."),
            ]
        ),
    ]
    assert same == hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    assert fingerprint(upload(audio + b"\x00", {"model": "whisper-1", "prompt": "Hi."})) != same
    assert fingerprint(upload(audio, {"model": "whisper-1", "prompt": "Hi!"})) != same
    translations = URL.replace("transcriptions", "translations")
    assert fingerprint(upload(audio, {"model": "whisper-1", "prompt": "Hi."}, translations)) != same
