"""Fault injection at botocore's wire level: the real client and retry logic run, only the
chosen calls fail, as they would with DynamoDB or S3 down or throttling, or with an answer
lost on the way back after the write was applied.

Fakes are used only here, for faults the real services cannot produce on demand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import urllib3
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from handler.stores.dynamo import CLIENT_CONFIG

_http = urllib3.PoolManager()


class _Body:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def stream(self, **_: Any) -> Any:
        yield self.payload


class Faults:
    """Counts and fails the matching calls of one client (the first ``times`` of them, or
    all while ``armed``)."""

    def __init__(
        self,
        client: Any,
        operation: str,
        when: Callable[[Any], bool],
        times: int | None = None,
    ) -> None:
        self.client = client
        self.operation = operation
        self.when = when
        self.times = times
        self.attempts = 0
        self.armed = True

    def matches(self, subject: Any) -> bool:
        if not self.armed or (self.times is not None and self.attempts >= self.times):
            return False
        hit = bool(self.when(subject))
        self.attempts += hit
        return hit


def json_body(request: Any) -> dict[str, Any]:
    """A DynamoDB request's parameters."""
    parameters: dict[str, Any] = json.loads(request.body or b"{}")
    return parameters


def dynamodb_client() -> Any:
    """A client like production's: the resource's thread-safe, high-level one."""
    return boto3.resource("dynamodb", config=CLIENT_CONFIG).meta.client


def connection_refused(
    client: Any,
    operation: str,
    when: Callable[[dict[str, Any]], bool] = lambda _: True,
    *,
    times: int | None = None,
) -> Faults:
    """Make DynamoDB ``operation`` calls (``"*"``: any) for which ``when(request body)``
    holds fail to connect. Each of botocore's attempts counts as one call."""
    faults = Faults(client, operation, when, times)

    def refuse(request: Any, **_: Any) -> None:
        if faults.matches(json_body(request)):
            raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register(_event("dynamodb", operation), refuse)
    return faults


def response_lost(
    client: Any,
    operation: str,
    when: Callable[[dict[str, Any]], bool] = lambda _: True,
    *,
    then_unreachable: int = 0,
) -> Faults:
    """Deliver the first matching DynamoDB call, then lose its answer (a read timeout): the
    write is applied and botocore, not knowing, sends it again. ``then_unreachable`` refuses
    that many of the calls after it too (so botocore gives up: the caller never learns that
    the write happened, as a process that died right after it)."""
    faults = Faults(client, operation, when, 1 + then_unreachable)

    def deliver_then_time_out(request: Any, **_: Any) -> None:
        if not faults.matches(json_body(request)):
            return
        if faults.attempts == 1:
            _http.request(
                request.method, request.url, body=request.body, headers=dict(request.headers)
            )
            raise ReadTimeoutError(endpoint_url=request.url)
        raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register(_event("dynamodb", operation), deliver_then_time_out)
    return faults


class UnreachableAfter:
    """Let DynamoDB calls through until one matching ``when`` has been answered, then refuse
    every call (the process lost the database right after that write, as one that died
    there would) until :meth:`restore`. It happens once."""

    def __init__(self, client: Any, when: Callable[[dict[str, Any]], bool]) -> None:
        self.when = when
        self.down = False
        self.refused = 0
        self._pending = False
        self._spent = False
        client.meta.events.register("before-send.dynamodb", self._before_send)
        client.meta.events.register("after-call.dynamodb", self._after_call)

    def restore(self) -> None:
        self.down = False

    def _before_send(self, request: Any, **_: Any) -> None:
        if self.down:
            self.refused += 1
            raise EndpointConnectionError(endpoint_url=request.url)
        if not self._spent and self.when(json_body(request)):
            self._pending = True

    def _after_call(self, **_: Any) -> None:
        if self._pending:
            self._pending, self._spent, self.down = False, True, True


def s3_unreachable(
    client: Any,
    operation: str,
    when: Callable[[str], bool] = lambda _: True,
    *,
    times: int | None = None,
) -> Faults:
    """Make S3 ``operation`` calls whose URL satisfies ``when`` fail to connect."""
    faults = Faults(client, operation, when, times)

    def refuse(request: Any, **_: Any) -> None:
        if faults.matches(request.url):
            raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register(_event("s3", operation), refuse)
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
        if not faults.matches(json_body(request)):
            return None
        headers = HTTPHeaders()  # what botocore's own responses carry, not a plain dict
        headers["content-type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 400, headers, _Body(body))

    client.meta.events.register(_event("dynamodb", operation), throttle)
    return faults


def _event(service: str, operation: str) -> str:
    return f"before-send.{service}" if operation == "*" else f"before-send.{service}.{operation}"


# -- which DynamoDB request is which step of a unit of work ------------------------------
def _writes(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The writes of a request body: a transaction's items, or the single write itself."""
    if "TransactItems" in body:
        return [next(iter(item.values())) for item in body["TransactItems"]]
    return [body]


def is_reservation(body: dict[str, Any]) -> bool:
    """The transaction that reserves a unit's cost (it opens a ledger entry)."""
    return any("open_reservation" in write.get("Item", {}) for write in _writes(body))


def is_settlement(body: dict[str, Any]) -> bool:
    """The write that settles a reservation (alone, or with the unit's record)."""
    return any(
        write.get("ExpressionAttributeValues", {}).get(":status") == {"S": "settled"}
        for write in _writes(body)
    )


def is_refund(body: dict[str, Any]) -> bool:
    return any(
        write.get("ExpressionAttributeValues", {}).get(":status") == {"S": "refunded"}
        for write in _writes(body)
    )
