"""Records of requests sent with an ``Idempotency-Key`` header (the idempotency-keys table).

One item per API key and Idempotency-Key, ``id = "<key id>#<sha256 of the header value>"``
(the client's value is never stored). Its life, as Stripe and the IETF httpapi draft
("The Idempotency-Key HTTP Header Field") describe it:

- ``acquire`` writes it ``in_progress`` with the request's fingerprint, conditional on no
  live record existing. A live record answers instead: the same fingerprint and a stored
  response -> replay it; still in progress -> the caller answers 409; another fingerprint ->
  422. A record ``in_progress`` whose lock has run out belonged to a process that died: the
  next attempt takes it over, keeping its ``incarnation`` so it finds the same reservation.
- ``completion_item`` (in the transaction that settles the charge) stores the response;
  it is replayed until ``expires_at`` (``created_at`` + 24 h), which is also the TTL.
- ``release_item`` (in the transaction that refunds) deletes it, so a retry runs again, as
  a new incarnation of the key (a new unit of work, with a reservation of its own).

Times come from the injected clock; ``expires_at`` is also checked on read, because
DynamoDB's TTL deletes expired items late (and DynamoDB Local never).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

from boto3.dynamodb.types import Binary

from handler.clock import Clock, iso_time
from handler.stores.dynamo import TransactItem, client, old_item, unavailable_on_outage

RecordStatus = Literal["in_progress", "completed"]


@dataclass(frozen=True)
class StoredResponse:
    """What a replay sends back: the status, the headers that matter, the exact body."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IdempotencyRecord:
    id: str
    fingerprint: str
    created_at: str
    """When this incarnation's first attempt began (ISO)."""
    incarnation: str
    """Random, new each time the key is acquired afresh (not when an attempt takes over):
    the unit of work, and so the reservation, is derived from it."""
    locked_until_ms: int
    expires_at: int
    status: RecordStatus = "in_progress"
    response: StoredResponse | None = None


@dataclass(frozen=True)
class Acquired:
    """This request holds the key and must run."""

    record: IdempotencyRecord


@dataclass(frozen=True)
class Replay:
    """A response is stored for this key and request: send it again."""

    record: IdempotencyRecord


@dataclass(frozen=True)
class InFlight:
    """Another attempt with this key is running."""

    record: IdempotencyRecord
    retry_after_seconds: float


@dataclass(frozen=True)
class Mismatch:
    """The key was used for a different request."""

    record: IdempotencyRecord


Claim = Acquired | Replay | InFlight | Mismatch


def record_id(key_id: str, idempotency_key: str) -> str:
    """The item's id: scoped to the API key; the client's value only as a hash."""
    return f"{key_id}#{hashlib.sha256(idempotency_key.encode()).hexdigest()}"


class IdempotencyStore:
    """The idempotency-keys table."""

    def __init__(
        self,
        table: str,
        dynamodb: Any | None = None,
        *,
        clock: Clock = time.time,
        ttl_seconds: int = 24 * 3600,
        lock_seconds: int = 120,
    ) -> None:
        self.table = table
        self.client = dynamodb or client()
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self.lock_seconds = lock_seconds

    def acquire(self, record_id: str, fingerprint: str) -> Claim:
        """Hold the key for this request, or say why not (one write in the common case)."""
        for _ in range(3):
            now = self.clock()
            record = IdempotencyRecord(
                id=record_id,
                fingerprint=fingerprint,
                created_at=iso_time(now),
                incarnation=secrets.token_hex(8),
                locked_until_ms=int((now + self.lock_seconds) * 1000),
                expires_at=int(now) + self.ttl_seconds,
            )
            with unavailable_on_outage():
                try:
                    self.client.put_item(
                        TableName=self.table,
                        Item=_item(record),
                        # New, or what is there has expired (TTL may not have deleted it yet).
                        ConditionExpression="attribute_not_exists(id) OR expires_at <= :now",
                        ExpressionAttributeValues={":now": int(now)},
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                    return Acquired(record)
                except self.client.exceptions.ConditionalCheckFailedException as exc:
                    stored = old_item(exc)
            if stored is None:
                continue  # deleted meanwhile: try again
            existing = _record(stored)
            if existing.fingerprint != fingerprint:
                return Mismatch(existing)
            if existing.status == "completed":
                return Replay(existing)
            now_ms = int(now * 1000)
            if existing.locked_until_ms > now_ms:
                return InFlight(existing, (existing.locked_until_ms - now_ms) / 1000)
            taken = self._take_over(existing, now)
            if taken is not None:
                return Acquired(taken)
        raise RuntimeError(f"idempotency record {record_id} kept changing")

    def _take_over(self, stale: IdempotencyRecord, now: float) -> IdempotencyRecord | None:
        """Hold a record whose holder died (its lock ran out); None if someone else did."""
        locked_until_ms = int((now + self.lock_seconds) * 1000)
        with unavailable_on_outage():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"id": stale.id},
                    UpdateExpression="SET locked_until_ms = :locked",
                    ConditionExpression="#status = :in_progress AND locked_until_ms = :stale",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":locked": locked_until_ms,
                        ":in_progress": "in_progress",
                        ":stale": stale.locked_until_ms,
                    },
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                return None
        return IdempotencyRecord(
            stale.id,
            stale.fingerprint,
            stale.created_at,
            stale.incarnation,
            locked_until_ms,
            stale.expires_at,
        )

    def get(self, record_id: str) -> IdempotencyRecord | None:
        """The record, if it exists and has not expired."""
        with unavailable_on_outage():
            item = self.client.get_item(
                TableName=self.table, Key={"id": record_id}, ConsistentRead=True
            ).get("Item")
        if not item or int(item["expires_at"]) <= self.clock():
            return None
        return _record(item)

    def completion_item(self, record: IdempotencyRecord, response: StoredResponse) -> TransactItem:
        """The write storing ``response`` for replays, valid only while ``record`` holds the
        key (``TransactItem``: put it in the transaction that settles the charge)."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"id": record.id},
                "UpdateExpression": "SET #status = :completed, #response = :response "
                "REMOVE locked_until_ms",
                "ConditionExpression": _HELD,
                "ExpressionAttributeNames": {"#status": "status", "#response": "response"},
                "ExpressionAttributeValues": {
                    ":completed": "completed",
                    ":response": _stored(response),
                    ":in_progress": "in_progress",
                    ":incarnation": record.incarnation,
                },
            }
        }

    def release_item(self, record: IdempotencyRecord) -> TransactItem:
        """The delete that gives the key back for a retry (``TransactItem``: put it in the
        transaction that refunds)."""
        return {
            "Delete": {
                "TableName": self.table,
                "Key": {"id": record.id},
                "ConditionExpression": _HELD,
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":in_progress": "in_progress",
                    ":incarnation": record.incarnation,
                },
            }
        }

    def complete(self, record: IdempotencyRecord, response: StoredResponse) -> bool:
        """Store ``response`` on its own (when no money moves); False if the key was lost."""
        return self._write(self.completion_item(record, response)["Update"], "update_item")

    def release(self, record: IdempotencyRecord) -> bool:
        """Give the key back on its own; False if it was already released or lost."""
        return self._write(self.release_item(record)["Delete"], "delete_item")

    def _write(self, request: dict[str, Any], operation: str) -> bool:
        with unavailable_on_outage():
            try:
                getattr(self.client, operation)(**request)
            except self.client.exceptions.ConditionalCheckFailedException:
                return False
        return True


# Still in progress, and still this incarnation (not a later one with the same key).
_HELD = "#status = :in_progress AND incarnation = :incarnation"


def _item(record: IdempotencyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "status": record.status,
        "fingerprint": record.fingerprint,
        "created_at": record.created_at,
        "incarnation": record.incarnation,
        "locked_until_ms": record.locked_until_ms,
        "expires_at": record.expires_at,
    }


def _stored(response: StoredResponse) -> dict[str, Any]:
    # Compressed: transcripts shrink 3-10x, far under DynamoDB's 400 KB item limit (the
    # synchronous route's 300 s of audio renders to well under 100 KB before compression).
    return {
        "status": response.status,
        "headers": response.headers,
        "body": Binary(zlib.compress(response.body)),
    }


def _record(item: dict[str, Any]) -> IdempotencyRecord:
    response = None
    if "response" in item:
        stored = item["response"]
        body = stored["body"]
        raw = bytes(body)  # a Binary (the resource's type) or bytes: both convert
        response = StoredResponse(
            int(stored["status"]), zlib.decompress(raw), dict(stored.get("headers", {}))
        )
    return IdempotencyRecord(
        id=item["id"],
        fingerprint=item["fingerprint"],
        created_at=item["created_at"],
        incarnation=item["incarnation"],
        locked_until_ms=int(item.get("locked_until_ms", 0)),
        expires_at=int(item["expires_at"]),
        status=item["status"],
        response=response,
    )
