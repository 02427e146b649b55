"""What a client sends and API Gateway hands the function, built one way for the tests, the
benchmark (``bench/events.py``) and the sample events (``events/generate.py``): a
``multipart/form-data`` body and API Gateway's payload 2.0 event (HTTP APIs and Function
URLs). The Lambda context object is :class:`tests.support.lambda_context.LambdaContext`.

Standard library only: the benchmark imports it in the Lambda image's dependency set.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

EVENTS = Path(__file__).resolve().parents[2] / "events"
"""The sample events ``sam local invoke`` uses (``events/``)."""

AUDIO_MEDIA_TYPES = {".flac": "audio/flac", ".mp3": "audio/mpeg", ".wav": "audio/wav"}
"""Content types of the file part, by extension (what the SDKs and curl send)."""


def multipart_content_type(boundary: str) -> str:
    """The ``Content-Type`` header of a body made by :func:`multipart_body`."""
    return f"multipart/form-data; boundary={boundary}"


def multipart_body(
    fields: Sequence[tuple[str, str]],
    file: bytes,
    *,
    filename: str,
    content_type: str,
    boundary: str,
) -> bytes:
    """A ``multipart/form-data`` body as ``curl -F`` or the OpenAI SDK sends it: one part per
    field, in order, then the ``file`` part (RFC 7578)."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    parts.append(
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + file
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def payload_v2_event(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    *,
    request_id: str,
    time: str,
    time_epoch_ms: int,
    domain: str,
    api_id: str,
    account_id: str,
    source_ip: str,
    user_agent: str,
) -> dict[str, Any]:
    """API Gateway's payload format 2.0 (HTTP APIs, and Function URLs), ``$default`` route and
    stage: ``headers`` as given (lowercase), a body base64-encoded (as for binary media such
    as multipart), no ``body`` key without one. ``time`` is API Gateway's CLF time
    (``12/Mar/2025:19:03:58 +0000``)."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": api_id,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time,
            "timeEpoch": time_epoch_ms,
        },
    }
    return add_body(event, body)


def add_body(event: dict[str, Any], body: bytes | None) -> dict[str, Any]:
    """``event`` with ``body`` as the gateways pass binary media (multipart): base64, with
    ``isBase64Encoded``; no body means no ``body`` key (payloads 1.0 and 2.0 alike)."""
    if body is None:
        event["isBase64Encoded"] = False
    else:
        event["body"] = base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = True
    return event


def s3_event(template: str, bucket: str, key: str, s3_client: Any) -> dict[str, Any]:
    """The ``events/`` sample ``template``, pointed at an object that really exists: its
    bucket, its key URL-encoded as S3 sends it, its size and ETag (read with ``s3_client``,
    a boto3 S3 client)."""
    event = json.loads((EVENTS / template).read_text())
    head = s3_client.head_object(Bucket=bucket, Key=key)
    record = copy.deepcopy(event["Records"][0])
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"].update(
        key=quote_plus(key, safe="/"), size=head["ContentLength"], eTag=head["ETag"].strip('"')
    )
    return {"Records": [record]}
