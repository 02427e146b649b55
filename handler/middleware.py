"""Pure ASGI middleware wrapping every request (including ones no route matches)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handler.errors import ApiError, PayloadTooLarge, ServerError
from handler.observability import logger

# Room for the multipart boundaries and small form fields around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def error_response(error: ApiError) -> JSONResponse:
    """The OpenAI envelope for ``error``, with its status and headers."""
    return JSONResponse(error.envelope(), status_code=error.status, headers=error.headers)


def request_id_for(scope: Scope) -> str:
    """API Gateway's request id when behind it (so logs correlate), else a fresh one."""
    event: dict[str, Any] = scope.get("aws.event") or {}
    gateway_id = (event.get("requestContext") or {}).get("requestId")
    return str(gateway_id) if gateway_id else f"req_{uuid.uuid4().hex}"


class RequestContextMiddleware:
    """Adds ``x-request-id`` and ``openai-processing-ms`` to every response, refuses bodies
    over the upload limit before reading them (413), and turns any unexpected exception into
    a 500 envelope with no internals in it."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_upload_bytes + MULTIPART_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers["openai-processing-ms"] = str(round(elapsed_ms))
            await send(message)

        declared_length = Headers(scope=scope).get("content-length", "")
        if declared_length.isdigit() and int(declared_length) > self.max_body_bytes:
            too_large = PayloadTooLarge(
                f"The request body is over the {self.max_body_bytes - MULTIPART_OVERHEAD_BYTES}"
                "-byte limit of synchronous requests. Upload large files through the "
                "asynchronous jobs API (POST /v1/audio/transcriptions/jobs).",
                param="file",
                code="file_too_large",
            )
            await error_response(too_large)(scope, receive, send_with_headers)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            if response_started:
                raise
            failure = ServerError(
                "The server had an error while processing your request. Retry it, and "
                f"quote request id {request_id} if the error persists."
            )
            await error_response(failure)(scope, receive, send_with_headers)
