"""API Gateway HTTP API (payload 2.0) events carrying a base64 multipart body, as Lambda
receives them for ``POST /v1/audio/transcriptions``: the tests' builders
(:mod:`tests.support.lambda_events`, :mod:`tests.support.lambda_context`) with fresh ids and
times."""

from __future__ import annotations

import mimetypes
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support.lambda_context import LambdaContext
from tests.support.lambda_events import (
    AUDIO_MEDIA_TYPES,
    multipart_body,
    multipart_content_type,
    payload_v2_event,
)

__all__ = ["LambdaContext", "http_api_event", "transcription_event"]

HOST = "bench.execute-api.us-east-1.amazonaws.com"
USER_AGENT = "tinyscribe-bench"


def http_api_event(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> dict[str, Any]:
    """A payload-2.0 event; a body is base64-encoded, as HTTP APIs do for multipart."""
    now = time.time()
    all_headers = {
        "host": HOST,
        "user-agent": USER_AGENT,
        **{name.lower(): value for name, value in (headers or {}).items()},
    }
    if body is not None:
        all_headers["content-length"] = str(len(body))
    return payload_v2_event(
        method,
        path,
        all_headers,
        body,
        request_id=f"bench-{uuid.uuid4().hex[:16]}",
        time=time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        time_epoch_ms=int(now * 1000),
        domain=HOST,
        api_id="bench",
        account_id="123456789012",
        source_ip="127.0.0.1",
        user_agent=all_headers["user-agent"],
    )


def transcription_event(
    file_path: Path, secret: str, fields: dict[str, str] | None = None
) -> dict[str, Any]:
    """``POST /v1/audio/transcriptions`` with the file and ``model=whisper-1``."""
    boundary = f"bench{uuid.uuid4().hex}"
    mime = AUDIO_MEDIA_TYPES.get(file_path.suffix) or mimetypes.guess_type(file_path.name)[0]
    body = multipart_body(
        list({"model": "whisper-1", **(fields or {})}.items()),
        file_path.read_bytes(),
        filename=file_path.name,
        content_type=mime or "application/octet-stream",
        boundary=boundary,
    )
    headers = {
        "authorization": f"Bearer {secret}",
        "content-type": multipart_content_type(boundary),
    }
    return http_api_event("POST", "/v1/audio/transcriptions", headers, body)
