"""The FastAPI application: routes, and every error rendered as OpenAI's envelope."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

import handler
from handler import cors
from handler.config import get_settings
from handler.context import request_context
from handler.errors import ApiError, InvalidRequest, MethodNotAllowed, NotFound, PayloadTooLarge
from handler.idempotency import IdempotentReplay, replay
from handler.middleware import RequestContextMiddleware, error_response
from handler.pipeline import missing_wallet
from handler.routes import health, jobs, models, page, transcriptions, translations, wallet
from handler.services import Services
from handler.stores.wallets import WalletNotFound


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(BaseModel):
    """OpenAI's error envelope, the body of every error response."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {
        400: "Invalid field or undecodable audio (`param` names the field)",
        401: "Missing, malformed, unknown or revoked API key",
        402: "The wallet cannot pay for this audio",
        404: "Unknown model, endpoint or job",
        405: "Method not allowed",
        409: "A request with this Idempotency-Key is still running (see Retry-After)",
        413: "Upload or audio over the limits",
        422: "The Idempotency-Key was used for a different request",
        429: "The key's request rate is used up (see Retry-After and retry-after-ms)",
        500: "Unexpected failure (retryable; nothing charged)",
        503: "Busy or a dependency is down (see Retry-After)",
    }.items()
}


def create_app(services: Services | None = None) -> FastAPI:
    """Build the API around ``services`` (by default, from the environment's settings)."""
    services = services or Services.from_settings(get_settings())
    settings = services.settings
    app = FastAPI(
        title="tinyscribe",
        version=handler.__version__,
        summary="OpenAI-compatible speech-to-text (Whisper tiny.en), billed per audio second.",
        responses=ERROR_RESPONSES,
    )
    app.state.services = services
    for module in (health, models, transcriptions, translations, jobs, wallet, page):
        app.include_router(module.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(IdempotentReplay, replay)
    app.add_exception_handler(WalletNotFound, _wallet_not_found)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(RequestContextMiddleware, max_upload_bytes=settings.max_upload_bytes)
    if settings.cors_origins:
        # Outermost (added last), so that the answers RequestContextMiddleware gives itself
        # (413 before reading a body, 500) carry the CORS headers too: a page can read them.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=list(cors.ALLOW_METHODS),
            allow_headers=list(cors.ALLOW_HEADERS),
            expose_headers=list(cors.EXPOSE_HEADERS),
            max_age=cors.MAX_AGE_SECONDS,
        )
    return app


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    request_context(request).error_type = exc.type
    return error_response(exc)


async def _wallet_not_found(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WalletNotFound)
    return await _api_error(request, missing_wallet(request_context(request).key_id, exc.wallet_id))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    sources = ("body", "query", "path", "header", "cookie")
    location = [str(part) for part in first.get("loc", ()) if part not in sources]
    param = location[0] if location else None
    # A validator's ValueError reads "Value error, <why>" in pydantic's words; the why is enough.
    message = str(first.get("msg", "Invalid request.")).removeprefix("Value error, ")
    code = None
    if param and first.get("type") == "extra_forbidden":
        message, code = f"Unknown parameter: '{param}'.", "unknown_parameter"
    elif param:
        message = f"Invalid value for '{param}': {message}"
    return await _api_error(request, InvalidRequest(message, param=param, code=code))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error: ApiError
    if exc.status_code == 404:
        error = NotFound(f"Unknown endpoint: {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}.")
    elif exc.status_code == 413:
        error = PayloadTooLarge(str(exc.detail), param="file", code="file_too_large")
    else:
        error = InvalidRequest(str(exc.detail))
    request_context(request).error_type = error.type
    return error_response(error, status=exc.status_code, headers=exc.headers)
