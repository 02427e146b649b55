"""API Gateway HTTP API (payload 2.0) events carrying a base64 multipart body, as Lambda
receives them for ``POST /v1/audio/transcriptions``."""

from __future__ import annotations

import base64
import mimetypes
import time
import uuid
from pathlib import Path
from typing import Any

AUDIO_TYPES = {".flac": "audio/flac", ".mp3": "audio/mpeg", ".wav": "audio/wav"}


class LambdaContext:
    """The few attributes of Lambda's context object that handlers commonly read."""

    function_name = "tinyscribe-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tinyscribe-bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def multipart_body(fields: dict[str, str], file_path: Path) -> tuple[bytes, str]:
    """``multipart/form-data`` with ``fields`` and the file; returns (body, content type)."""
    boundary = f"bench{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    mime = AUDIO_TYPES.get(file_path.suffix) or mimetypes.guess_type(file_path.name)[0]
    header = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{file_path.name}"\r\nContent-Type: {mime or "application/octet-stream"}'
        "\r\n\r\n"
    )
    parts.append(header.encode() + file_path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def http_api_event(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> dict[str, Any]:
    """A payload-2.0 event; a body is base64-encoded, as HTTP APIs do for multipart."""
    now = time.time()
    all_headers = {
        "host": "bench.execute-api.us-east-1.amazonaws.com",
        "user-agent": "tinyscribe-bench",
        **{name.lower(): value for name, value in (headers or {}).items()},
    }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": all_headers["host"],
            "domainPrefix": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": all_headers["user-agent"],
            },
            "requestId": f"bench-{uuid.uuid4().hex[:16]}",
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": body is not None,
    }
    if body is not None:
        event["body"] = base64.b64encode(body).decode("ascii")
        all_headers["content-length"] = str(len(body))
    return event


def transcription_event(
    file_path: Path, secret: str, fields: dict[str, str] | None = None
) -> dict[str, Any]:
    """``POST /v1/audio/transcriptions`` with the file and ``model=whisper-1``."""
    body, content_type = multipart_body({"model": "whisper-1", **(fields or {})}, file_path)
    headers = {"authorization": f"Bearer {secret}", "content-type": content_type}
    return http_api_event("POST", "/v1/audio/transcriptions", headers, body)
