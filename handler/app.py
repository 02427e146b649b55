"""Lambda entry point (``handler.app.lambda_handler``), the composition root of the service.

HTTP events (API Gateway HTTP API v2, REST API v1, Function URLs) go through Mangum to the
FastAPI app. S3 events are dispatched here first, because Mangum raises on events it cannot
infer. Everything is built on the first event, not at import, so tests can set the
environment first and the init phase stays short; only on Lambda does the model start
loading at import, on a thread of its own, while the rest of the service imports.
"""

# ruff: noqa: E402  (the model starts loading before the web framework is imported)
from __future__ import annotations

import base64
import binascii
import time
from functools import lru_cache
from typing import Any

import handler
from handler.config import get_settings, running_in_lambda
from handler.engine import Engine


@lru_cache
def engine() -> Engine:
    """The process-wide engine (its model loads on first use, or ahead, see below)."""
    return Engine(get_settings())


if running_in_lambda():
    # Lambda's init phase: CTranslate2 builds the model without holding the GIL, so it
    # loads while FastAPI, pydantic and boto3 are imported below.
    engine().start_loading()

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from handler.api import create_app
from handler.errors import ApiError, InvalidRequest, ServerError
from handler.middleware import error_response
from handler.observability import emit_metrics, logger, tracer
from handler.reconcile import reconcile
from handler.services import Services

# Returned as text, not base64, so a REST API without binary media types still works: the
# transcripts, and the page's HTML, CSS, JavaScript and SVG icon (handler/routes/page.py).
TEXT_MIME_TYPES = [*DEFAULT_TEXT_MIME_TYPES, "application/x-subrip", "image/svg+xml"]


_cold_start = {"pending": True}


class UnsupportedEvent(ValueError):
    """An event from a source this function is not wired to."""


@lru_cache
def services() -> Services:
    """One set of stores and one engine per process, shared by every event."""
    return Services.from_settings(get_settings(), engine=engine())


@lru_cache
def http_handler() -> Mangum:
    """The adapter. ``lifespan="off"``: Mangum would run startup/shutdown on every call."""
    return Mangum(create_app(services()), lifespan="off", text_mime_types=TEXT_MIME_TYPES)


def is_s3_event(event: dict[str, Any]) -> bool:
    """S3 notifications (object created under the batch or job prefixes)."""
    records: list[dict[str, Any]] = event.get("Records") or []
    return bool(records) and all(r.get("eventSource") == "aws:s3" for r in records)


def is_schedule_event(event: dict[str, Any]) -> bool:
    """The EventBridge schedule that runs the reconciliation."""
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


def is_http_event(event: dict[str, Any]) -> bool:
    """API Gateway (v1 or v2), Function URL or ALB events."""
    return "requestContext" in event and ("httpMethod" in event or "rawPath" in event)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Route one Lambda event to the code that handles its kind."""
    started = time.perf_counter()
    try:
        return _dispatch(event, context)
    finally:
        if _cold_start.pop("pending", False):
            _report_cold_start(started)


def _dispatch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if is_s3_event(event):
        # Imported here: Powertools' idempotency and S3 helpers are not needed for HTTP.
        from handler.s3_events import handle_s3_event

        return handle_s3_event(services(), event, context)
    if is_schedule_event(event):
        return reconcile(services())
    if not is_http_event(event):
        raise UnsupportedEvent(f"unsupported event with keys {sorted(event)[:8]}")
    try:
        return http_handler()(event, context)
    except Exception:
        # Only what Mangum itself chokes on gets here: the app answers its own errors.
        if not _body_decodes(event):
            # Mangum decodes a base64 body before the app runs: one that is not base64 is the
            # client's (or a misconfigured proxy's) fault, not a server error.
            return _http_error(
                InvalidRequest(
                    "The request body is marked base64-encoded but is not valid base64.",
                    code="invalid_body_encoding",
                ),
                event,
            )
        logger.exception("HTTP event could not be handled")
        return _http_error(ServerError("The server could not read this request."), event)


def _body_decodes(event: dict[str, Any]) -> bool:
    """Whether the event's body can be read the way Mangum reads it."""
    if not event.get("isBase64Encoded"):
        return True
    try:
        base64.b64decode(event.get("body") or b"")
    except (binascii.Error, ValueError, TypeError):
        return False
    return True


def _http_error(error: ApiError, event: dict[str, Any]) -> dict[str, Any]:
    """An HTTP answer in the envelope for an event the app never saw: the app's own error
    response, as a Lambda proxy response."""
    response = error_response(error)
    headers = dict(response.headers)
    request_id = (event.get("requestContext") or {}).get("requestId")
    if request_id:
        headers["x-request-id"] = str(request_id)
    return {
        "statusCode": response.status_code,
        "headers": headers,
        "body": bytes(response.body).decode(),
        "isBase64Encoded": False,
    }


def _report_cold_start(first_event_started: float) -> None:
    """How long the first event of this process took, split as a user feels it."""
    now = time.perf_counter()
    engine = services().engine
    logger.info(
        "cold start",
        extra={
            "import_ms": round((IMPORT_FINISHED - handler.IMPORT_STARTED) * 1000),
            "model_load_ms": round(engine.load_seconds * 1000) if engine.load_seconds else None,
            "first_event_ms": round((now - first_event_started) * 1000),
            "total_ms": round((now - handler.IMPORT_STARTED) * 1000),
        },
    )
    emit_metrics({"ColdStart": 1})


def reset() -> None:
    """Forget the process-wide objects (tests change the environment between runs)."""
    get_settings.cache_clear()
    engine.cache_clear()
    services.cache_clear()
    http_handler.cache_clear()
    from handler.s3_events import reset_idempotency

    reset_idempotency()


IMPORT_FINISHED = time.perf_counter()
