"""Fault injection at botocore's wire level: the real client and retry logic run, only the
chosen calls fail, as they would with DynamoDB or S3 down or throttling.

Fakes are used only here, for faults the real services cannot produce on demand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

from handler.stores.dynamo import CLIENT_CONFIG


class _Body:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def stream(self, **_: Any) -> Any:
        yield self.payload


class Faults:
    """Counts and fails the matching calls of one client."""

    def __init__(self, client: Any, operation: str, when: Callable[[dict[str, Any]], bool]) -> None:
        self.client = client
        self.operation = operation
        self.when = when
        self.attempts = 0
        self.armed = True

    def matches(self, request: Any) -> bool:
        body = json.loads(request.body or b"{}")
        hit = self.armed and self.when(body)
        self.attempts += hit
        return hit


def dynamodb_client() -> Any:
    """A client like production's: the resource's thread-safe, high-level one."""
    return boto3.resource("dynamodb", config=CLIENT_CONFIG).meta.client


def connection_refused(
    client: Any, operation: str, when: Callable[[dict[str, Any]], bool] = lambda _: True
) -> Faults:
    """Make ``operation`` calls for which ``when(request body)`` holds fail to connect."""
    faults = Faults(client, operation, when)

    def refuse(request: Any, **_: Any) -> None:
        if faults.matches(request):
            raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register(f"before-send.dynamodb.{operation}", refuse)
    return faults


def throttled(client: Any, operation: str) -> Faults:
    """Answer every ``operation`` call with DynamoDB's ThrottlingException."""
    faults = Faults(client, operation, lambda _: True)
    body = json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Rate of requests exceeds the allowed throughput.",
        }
    ).encode()

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        if not faults.matches(request):
            return None
        return AWSResponse(
            request.url, 400, {"content-type": "application/x-amz-json-1.0"}, _Body(body)
        )

    client.meta.events.register(f"before-send.dynamodb.{operation}", throttle)
    return faults
