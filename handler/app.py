"""Lambda entry point (``handler.app.lambda_handler``), the composition root of the service.

HTTP events (API Gateway HTTP API v2, REST API v1, Function URLs) go through Mangum to the
FastAPI app. S3 events are dispatched here first, because Mangum raises on events it cannot
infer. Everything is built on the first event, not at import, so tests can set the
environment first and the init phase stays short.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from mangum import Mangum

from handler.api import create_app
from handler.config import get_settings
from handler.s3_events import _persistence_layer, handle_s3_event, is_s3_event
from handler.services import Services


@lru_cache
def services() -> Services:
    """One set of stores and one engine per process, shared by every event."""
    return Services.from_settings(get_settings())


@lru_cache
def http_handler() -> Mangum:
    """The adapter. ``lifespan="off"``: Mangum would run startup/shutdown on every call."""
    return Mangum(create_app(services()), lifespan="off")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Route one Lambda event to the code that handles its kind."""
    if is_s3_event(event):
        return handle_s3_event(services(), event, context)
    return http_handler()(event, context)


def reset() -> None:
    """Forget the process-wide objects (tests change the environment between runs)."""
    get_settings.cache_clear()
    services.cache_clear()
    _persistence_layer.cache_clear()
    http_handler.cache_clear()
