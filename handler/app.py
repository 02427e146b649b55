"""Lambda entry point (``handler.app.lambda_handler``).

HTTP events (API Gateway HTTP API v2, REST API v1, Function URLs) go through Mangum to the
FastAPI app. Everything else is dispatched here first, because Mangum raises on events it
cannot infer (S3 among them).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from mangum import Mangum

from handler.api import create_app


@lru_cache
def http_handler() -> Mangum:
    """The adapter, built on the first HTTP event. ``lifespan="off"``: Mangum would otherwise
    run startup and shutdown on every invocation."""
    return Mangum(create_app(), lifespan="off")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Route one Lambda event to the code that handles its kind."""
    return http_handler()(event, context)
