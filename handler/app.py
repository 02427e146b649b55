"""Lambda entry point (``handler.app.lambda_handler``), the composition root of the service.

HTTP events (API Gateway HTTP API v2, REST API v1, Function URLs) go through Mangum to the
FastAPI app. S3 events are dispatched here first, because Mangum raises on events it cannot
infer. Everything is built on the first event, not at import, so tests can set the
environment first and the init phase stays short.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from handler.api import create_app
from handler.config import get_settings
from handler.errors import ServerError
from handler.observability import logger
from handler.s3_events import handle_s3_event, is_s3_event, reset_idempotency
from handler.services import Services

# Returned as text, not base64, so a REST API without binary media types still works.
TEXT_MIME_TYPES = [*DEFAULT_TEXT_MIME_TYPES, "application/x-subrip"]


class UnsupportedEvent(ValueError):
    """An event from a source this function is not wired to."""


@lru_cache
def services() -> Services:
    """One set of stores and one engine per process, shared by every event."""
    return Services.from_settings(get_settings())


@lru_cache
def http_handler() -> Mangum:
    """The adapter. ``lifespan="off"``: Mangum would run startup/shutdown on every call."""
    return Mangum(create_app(services()), lifespan="off", text_mime_types=TEXT_MIME_TYPES)


def is_http_event(event: dict[str, Any]) -> bool:
    """API Gateway (v1 or v2), Function URL or ALB events."""
    return "requestContext" in event and ("httpMethod" in event or "rawPath" in event)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Route one Lambda event to the code that handles its kind."""
    if is_s3_event(event):
        return handle_s3_event(services(), event, context)
    if not is_http_event(event):
        raise UnsupportedEvent(f"unsupported event with keys {sorted(event)[:8]}")
    try:
        return http_handler()(event, context)  # type: ignore[no-any-return]
    except Exception:
        # Only what Mangum itself chokes on (say, a body that is not valid base64) gets here:
        # the app answers its own errors.
        logger.exception("HTTP event could not be handled")
        failure = ServerError("The server could not read this request.")
        return {
            "statusCode": failure.status,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(failure.envelope()),
            "isBase64Encoded": False,
        }


def reset() -> None:
    """Forget the process-wide objects (tests change the environment between runs)."""
    get_settings.cache_clear()
    services.cache_clear()
    http_handler.cache_clear()
    reset_idempotency()
