"""Pure ASGI middleware wrapping every request (including ones no route matches)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handler.context import RequestContext, attach
from handler.errors import ApiError, PayloadTooLarge, ServerError
from handler.observability import emit_metrics, logger

# Room for the multipart boundaries and small form fields around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def error_response(
    error: ApiError, *, status: int | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The response for ``error``: OpenAI's envelope (:meth:`ApiError.envelope`), with the
    error's status and headers (or ``status`` and extra ``headers`` given here). Every error
    the service answers is rendered by this function."""
    return JSONResponse(
        error.envelope(),
        status_code=status or error.status,
        headers={**error.headers, **(headers or {})},
    )


def request_id_for(scope: Scope) -> str:
    """API Gateway's request id when behind it (so logs correlate), else a fresh one."""
    event: dict[str, Any] = scope.get("aws.event") or {}
    gateway_id = (event.get("requestContext") or {}).get("requestId")
    return str(gateway_id) if gateway_id else f"req_{uuid.uuid4().hex}"


class RequestContextMiddleware:
    """Attaches the request's :class:`RequestContext`; adds ``x-request-id``,
    ``openai-processing-ms`` and the rate-limit headers the context holds to every response;
    refuses bodies over the upload limit before reading them (413); and turns any unexpected
    exception into a 500 envelope with no internals in it."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_upload_bytes + MULTIPART_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope)
        context = attach(scope, RequestContext(request_id))
        started = time.perf_counter()
        response: dict[str, int] = {}  # the status, once the response has started

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                for name, value in context.rate_limit_headers.items():
                    headers.setdefault(name, value)
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers["openai-processing-ms"] = str(round(elapsed_ms))
            await send(message)

        try:
            declared_length = Headers(scope=scope).get("content-length", "")
            if declared_length.isdigit() and int(declared_length) > self.max_body_bytes:
                await self._refuse(self._too_large(), context, scope, receive, send_with_headers)
            else:
                await self.app(scope, self._limited(receive), send_with_headers)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            if response:
                raise
            failure = ServerError(
                "The server had an error while processing your request. Retry it, and "
                f"quote request id {request_id} if the error persists."
            )
            await self._refuse(failure, context, scope, receive, send_with_headers)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            record_request(scope, context, response.get("status", 500), elapsed_ms)

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that stops a body sent without Content-Length (chunked) at the limit."""
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                # FastAPI passes an HTTPException raised while reading the form through to the
                # exception handlers (anything else would become a 400).
                raise HTTPException(413, detail=self._too_large().message)
            return message

        return limited_receive

    def _too_large(self) -> PayloadTooLarge:
        limit = self.max_body_bytes - MULTIPART_OVERHEAD_BYTES
        return PayloadTooLarge(
            f"The request body is over the {limit}-byte limit of synchronous requests. Upload "
            "large files through the asynchronous jobs API (POST /v1/audio/transcriptions/jobs).",
            param="file",
            code="file_too_large",
        )

    @staticmethod
    async def _refuse(
        error: ApiError, context: RequestContext, scope: Scope, receive: Receive, send: Send
    ) -> None:
        context.error_type = error.type
        await error_response(error)(scope, receive, send)


def record_request(scope: Scope, context: RequestContext, status: int, latency_ms: float) -> None:
    """One log line and one metrics blob per request, from what its context holds.

    Logged: ids, route, status, timing, audio seconds and charge. Never the key's secret, the
    audio or the transcript.
    """
    error_type = context.error_type
    fields: dict[str, Any] = {
        "request_id": context.request_id,
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": status,
        "latency_ms": round(latency_ms, 1),
        "key_id": context.key_id,
        "audio_seconds": context.audio_seconds,
        "billed_micro_usd": context.billed_micro_usd,
        "engine_ms": context.engine_ms,
        "outcome": error_type or "ok",
    }
    logger.info("request", extra={k: v for k, v in fields.items() if v is not None})
    values: dict[str, float] = {"Requests": 1, "RequestLatency": latency_ms}
    if context.audio_seconds is not None:
        values["AudioSeconds"] = context.audio_seconds
        values["BilledMicroUsd"] = context.billed_micro_usd or 0
        values["EngineLatency"] = context.engine_ms or 0
    if status == 402:
        values["InsufficientCredits"] = 1
    if status == 429:
        values["RateLimited"] = 1
    emit_metrics(values)
    if error_type:
        emit_metrics({"Errors": 1}, {"ErrorType": error_type})
