"""The DynamoDB client, and the translation of its outages into 503s.

boto3 honours ``AWS_ENDPOINT_URL_DYNAMODB``, so the same code reaches DynamoDB Local in
development and tests. We use the resource's client: it is thread-safe (resources are not)
and still takes plain Python values instead of ``{"S": ...}`` attribute maps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
)

from handler.errors import ServiceUnavailable

# Fail fast: a request stuck on a dead database is worse than a quick 503 the SDK retries.
CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 3},
)
UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflictException",
    }
)
RETRY_AFTER_SECONDS = "2"

TransactItem = dict[str, Any]
"""One element of ``TransactWriteItems`` (``{"Put" | "Update" | "Delete" | "ConditionCheck":
...}``). Only the stores build them; other code passes them along so that a change of state
in one table is written in the same transaction as a movement of money."""

_deserializer = TypeDeserializer()


@lru_cache
def client() -> Any:
    """The process-wide DynamoDB client (created on first use, so tests can set the env)."""
    return boto3.resource("dynamodb", config=CLIENT_CONFIG).meta.client


def plain_item(typed: dict[str, Any]) -> dict[str, Any]:
    """Turn a raw ``{"N": "5"}``-style item (as in cancellation reasons) into Python values."""
    return {name: _deserializer.deserialize(value) for name, value in typed.items()}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def cancellation_reasons(exc: ClientError) -> list[dict[str, Any]]:
    """Why a transaction was cancelled: one ``{"Code", "Item"?}`` per item, in order."""
    return [dict(reason) for reason in exc.response.get("CancellationReasons", [])]


def failed_condition(reason: dict[str, Any]) -> bool:
    """Whether this item of a cancelled transaction failed its condition."""
    return reason.get("Code") == "ConditionalCheckFailed"


def old_item(failure: ClientError | dict[str, Any]) -> dict[str, Any] | None:
    """The item as it was when a condition failed (``ReturnValuesOnConditionCheckFailure``),
    from a failed single write or from one reason of a cancelled transaction; ``None`` when
    the item did not exist. Both arrive typed (``{"N": "5"}``), even from the resource client."""
    source: Mapping[str, object] = failure.response if isinstance(failure, ClientError) else failure
    item = source.get("Item")
    return plain_item(item) if isinstance(item, dict) and item else None


@contextmanager
def unavailable_on_outage() -> Iterator[None]:
    """Raise :class:`ServiceUnavailable` (503, Retry-After) when DynamoDB cannot answer."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) in UNAVAILABLE_CODES:
            raise unavailable() from exc
        raise
    except (ConnectionError, HTTPClientError, BotoCoreError) as exc:
        raise unavailable() from exc


def unavailable() -> ServiceUnavailable:
    """The 503 for a database that cannot answer right now."""
    return ServiceUnavailable(
        "The accounts database is unavailable. Please retry shortly.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )
