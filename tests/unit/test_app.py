"""handler.app: which code a Lambda event goes to, and the envelope for a body Mangum
cannot read (no model, no table: the dispatch alone)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from handler.app import (
    _body_decodes,
    _http_error,
    is_http_event,
    is_s3_event,
    is_schedule_event,
)
from handler.errors import InvalidRequest

HTTP_API = {"version": "2.0", "rawPath": "/v1/models", "requestContext": {"requestId": "r-1"}}
REST_API = {"httpMethod": "GET", "path": "/v1/models", "requestContext": {"requestId": "r-2"}}
S3 = {"Records": [{"eventSource": "aws:s3", "s3": {}}]}
SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
SQS = {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}


@pytest.mark.parametrize(
    ("event", "kinds"),
    [
        (HTTP_API, {"http"}),
        (REST_API, {"http"}),
        (S3, {"s3"}),
        (SCHEDULE, {"schedule"}),
        (SQS, set()),
        ({"Records": []}, set()),
        ({"Records": [*S3["Records"], *SQS["Records"]]}, set()),  # all or nothing
        ({"rawPath": "/"}, set()),  # no requestContext: not from API Gateway
        ({}, set()),
    ],
)
def test_each_event_has_at_most_one_kind(event: dict[str, Any], kinds: set[str]) -> None:
    found = {
        kind
        for kind, test in (
            ("http", is_http_event),
            ("s3", is_s3_event),
            ("schedule", is_schedule_event),
        )
        if test(event)
    }
    assert found == kinds


@pytest.mark.parametrize(
    ("event", "decodes"),
    [
        ({"body": "not base64 at all!"}, True),  # not marked: read as text
        ({"isBase64Encoded": True, "body": "aGVsbG8="}, True),
        ({"isBase64Encoded": True, "body": None}, True),
        ({"isBase64Encoded": True, "body": "a"}, False),
        ({"isBase64Encoded": True, "body": "aGVsbG8"}, False),  # padding missing
    ],
)
def test_a_base64_body_is_checked_as_mangum_reads_it(event: dict[str, Any], decodes: bool) -> None:
    assert _body_decodes(event) is decodes


def test_an_unreadable_event_gets_the_envelope_and_its_request_id() -> None:
    answer = _http_error(InvalidRequest("Bad body.", code="invalid_body_encoding"), REST_API)
    assert answer == {
        "statusCode": 400,
        "headers": {
            "content-type": "application/json",
            "content-length": str(len(answer["body"].encode())),
            "x-request-id": "r-2",
        },
        "body": answer["body"],
        "isBase64Encoded": False,
    }
    assert json.loads(answer["body"]) == {
        "error": {
            "message": "Bad body.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_body_encoding",
        }
    }
