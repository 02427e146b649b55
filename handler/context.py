"""What one request learns on its way through the service, in one typed object.

:class:`handler.middleware.RequestContextMiddleware` attaches a :class:`RequestContext` to
every HTTP request's ASGI scope before anything else runs; dependencies, routes, exception
handlers and the streaming thread fill it in (:func:`request_context` reads it back); the
middleware then sends the rate-limit headers it holds with the response, whatever the
response is, and logs and counts the request from it (:func:`handler.middleware.record_request`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.types import Scope

SCOPE_KEY = "tinyscribe.context"
"""Where the context lives in the ASGI scope (which Starlette passes down unchanged)."""


@dataclass
class RequestContext:
    """One request's facts, each written once by the step that learns it."""

    request_id: str
    """API Gateway's request id behind it, else ``req_<hex>`` (``x-request-id``)."""
    key_id: str | None = None
    """The authenticated key (never its secret)."""
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    """OpenAI's ``x-ratelimit-*-requests`` headers for the key, sent with the response."""
    audio_seconds: float | None = None
    """Duration of the audio transcribed (seconds, 3 decimals)."""
    billed_micro_usd: int | None = None
    """What the request was charged (0 once refunded)."""
    engine_ms: float | None = None
    """Time spent in the engine (milliseconds, 1 decimal)."""
    error_type: str | None = None
    """The OpenAI error type of the response, when it is an error."""


def attach(scope: Scope, context: RequestContext) -> RequestContext:
    """Put ``context`` in ``scope`` (the middleware does this first, once per request)."""
    scope[SCOPE_KEY] = context
    return context


def context_of(scope: Scope) -> RequestContext | None:
    """The context attached to ``scope``, if any."""
    context = scope.get(SCOPE_KEY)
    return context if isinstance(context, RequestContext) else None


def request_context(request: Request) -> RequestContext:
    """The request's context (a FastAPI dependency too). Raises ``LookupError`` for an app
    built without :class:`handler.middleware.RequestContextMiddleware`."""
    context = context_of(request.scope)
    if context is None:
        raise LookupError("no RequestContext: the app lacks RequestContextMiddleware")
    return context
