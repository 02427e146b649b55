"""One error hierarchy for the whole service, rendered as OpenAI's error envelope.

Every failure a client can see is an :class:`ApiError`; routes and stores raise the
subclass that names the situation and the API layer turns it into
``{"error": {"message", "type", "param", "code"}}`` with the matching status.
"""

from __future__ import annotations

from typing import Any, ClassVar


def shown(value: str, limit: int = 64) -> str:
    """``value`` as an error message may quote it: cut short, so a message never echoes a
    megabyte of client input back."""
    return value if len(value) <= limit else value[:limit] + "…"


class ApiError(Exception):
    """Base error: an HTTP status, an OpenAI error type, and a message safe to show."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        """The JSON body OpenAI clients expect."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(ApiError):
    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(ApiError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class InsufficientCredits(ApiError):
    status = 402
    type = "insufficient_credits"
    default_code = "insufficient_credits"


class NotFound(ApiError):
    status = 404
    type = "not_found"
    default_code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    type = "invalid_request_error"
    default_code = "method_not_allowed"


class PayloadTooLarge(ApiError):
    status = 413
    type = "invalid_request_error"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class ServerError(ApiError):
    status = 500
    type = "server_error"
    default_code = "internal_error"


class ServiceUnavailable(ApiError):
    status = 503
    type = "service_unavailable"
    default_code = "service_unavailable"
