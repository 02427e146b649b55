"""FastAPI dependencies: the services, the authenticated key, the rate limit.

Every authenticated route answers with OpenAI's ``x-ratelimit-*-requests`` headers (the
middleware sends what :class:`handler.context.RequestContext` holds): the routes that do work
(:data:`LimitedCallerDep`) take a request from the key's bucket, the others
(:data:`CallerDep`: reads such as the wallet, a job's status, the models) report the bucket
without taking from it, so polling a job does not use up the key's transcriptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from handler.context import RequestContext, request_context
from handler.errors import AuthenticationFailed, InvalidRequest, RateLimited
from handler.services import Services
from handler.stores.keys import ApiKey
from handler.stores.rate_limits import RateLimitState


def get_services(request: Request) -> Services:
    """The app's :class:`Services` (set by :func:`handler.api.create_app`)."""
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
ContextDep = Annotated[RequestContext, Depends(request_context)]


def authenticate(services: ServicesDep, context: ContextDep, request: Request) -> ApiKey:
    """The key in ``Authorization: Bearer sk-...``, or 401."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it as 'Authorization: Bearer sk-...'.",
            code="missing_api_key",
        )
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise AuthenticationFailed(
            "Malformed Authorization header: expected 'Bearer sk-...'.",
            code="invalid_authorization_header",
        )
    key = services.keys.verify(secret)
    if key is None:
        raise AuthenticationFailed("Incorrect API key provided.")
    if key.revoked:
        raise AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
    context.key_id = key.key_id
    return key


AuthenticatedDep = Annotated[ApiKey, Depends(authenticate)]


def rate_limit_headers(state: RateLimitState) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*-requests`` headers: the key's requests per minute, what is
    left in its bucket now, and how long until the bucket is full again."""
    return {
        "x-ratelimit-limit-requests": str(state.limit),
        "x-ratelimit-remaining-requests": str(state.remaining),
        "x-ratelimit-reset-requests": format_duration(state.reset_seconds),
    }


def format_duration(seconds: float) -> str:
    """OpenAI's (Go's) style for reset times, to the millisecond: ``"850ms"``, ``"1s"``,
    ``"6.5s"``, ``"1m0s"``."""
    milliseconds = max(0, round(seconds * 1000))
    if milliseconds < 1000:
        return f"{milliseconds}ms" if milliseconds else "0s"
    minutes, milliseconds = divmod(milliseconds, 60_000)
    text = f"{milliseconds / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}m{text}" if minutes else text


def report_rate(caller: AuthenticatedDep, services: ServicesDep, context: ContextDep) -> ApiKey:
    """The key, with its bucket's state in the response headers (nothing taken from it)."""
    context.rate_limit_headers = rate_limit_headers(
        services.rate_limits.peek(caller.key_id, caller.rpm)
    )
    return caller


CallerDep = Annotated[ApiKey, Depends(report_rate)]
"""The authenticated key of a route that reads (see the module's docstring)."""


def limit_rate(caller: AuthenticatedDep, services: ServicesDep, context: ContextDep) -> ApiKey:
    """Take one request from the key's token bucket (capacity: its requests per minute), or
    429 with ``Retry-After`` (whole seconds) and ``retry-after-ms``."""
    state = services.rate_limits.hit(caller.key_id, caller.rpm)
    headers = rate_limit_headers(state)
    if not state.allowed:
        raise RateLimited(
            f"Rate limit reached: {caller.rpm} requests per minute for this key. "
            f"Retry in {state.retry_after} s.",
            headers={
                **headers,
                "Retry-After": str(state.retry_after),
                "retry-after-ms": str(state.retry_after_ms),
            },
        )
    context.rate_limit_headers = headers
    return caller


LimitedCallerDep = Annotated[ApiKey, Depends(limit_rate)]
"""The authenticated key of a route that does work, one request taken from its bucket."""


async def require_one_multipart_file(request: Request) -> None:
    """A clear 400 for a body that is not multipart (a missing content-type included) or
    that carries more than one ``file`` part (which would otherwise be billed silently)."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest(
            "Send the request as multipart/form-data, with the audio in a 'file' field.",
            param="file",
            code="invalid_content_type",
        )
    form = await request.form()  # already parsed by FastAPI: no second read
    if len(form.getlist("file")) > 1:
        raise InvalidRequest("Send exactly one 'file' part.", param="file", code="multiple_files")


MultipartDep = Annotated[None, Depends(require_one_multipart_file)]
