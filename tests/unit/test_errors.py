"""handler.errors: every error a client can see, in OpenAI's envelope with its status."""

from __future__ import annotations

import pytest

from handler.errors import (
    ApiError,
    AuthenticationFailed,
    InsufficientCredits,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    shown,
)


@pytest.mark.parametrize(
    ("error", "status", "type_", "code"),
    [
        (InvalidRequest, 400, "invalid_request_error", None),
        (AuthenticationFailed, 401, "authentication_error", "invalid_api_key"),
        (InsufficientCredits, 402, "insufficient_credits", "insufficient_credits"),
        (NotFound, 404, "not_found", "not_found"),
        (MethodNotAllowed, 405, "invalid_request_error", "method_not_allowed"),
        (PayloadTooLarge, 413, "invalid_request_error", None),
        (RateLimited, 429, "rate_limit_error", "rate_limit_exceeded"),
        (ServerError, 500, "server_error", "internal_error"),
        (ServiceUnavailable, 503, "service_unavailable", "service_unavailable"),
    ],
)
def test_each_error_has_its_status_type_and_default_code(
    error: type[ApiError], status: int, type_: str, code: str | None
) -> None:
    raised = error("Something went wrong.")
    assert raised.status == status
    assert raised.envelope() == {
        "error": {"message": "Something went wrong.", "type": type_, "param": None, "code": code}
    }
    assert raised.headers == {}


def test_param_code_and_headers_are_kept() -> None:
    error = RateLimited("Slow down.", param="model", code="custom", headers={"Retry-After": "3"})
    assert error.envelope() == {
        "error": {
            "message": "Slow down.",
            "type": "rate_limit_error",
            "param": "model",
            "code": "custom",
        }
    }
    assert error.headers == {"Retry-After": "3"}
    assert str(error) == "Slow down."


def test_headers_are_not_shared_between_errors() -> None:
    first, second = InvalidRequest("a"), InvalidRequest("b")
    first.headers["x"] = "1"
    assert second.headers == {}


@pytest.mark.parametrize(
    ("value", "limit", "text"),
    [("short", 64, "short"), ("x" * 64, 64, "x" * 64), ("x" * 65, 64, "x" * 64 + "…"),
     ("abcdef", 3, "abc…"), ("", 64, "")],
)  # fmt: skip
def test_client_input_is_quoted_short(value: str, limit: int, text: str) -> None:
    assert shown(value, limit) == text
