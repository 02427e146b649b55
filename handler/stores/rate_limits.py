"""Per-key request limits: a token bucket per key, kept as GCRA in one DynamoDB item.

A key of ``rpm`` requests per minute has a bucket of ``rpm`` requests that refills
continuously at ``rpm / 60`` per second, so no burst, wherever it falls on the clock, gets
more than ``rpm`` requests through, and a client that waits gets exactly what has refilled.

The bucket is stored the GCRA way (the generic cell rate algorithm of ATM networks, as in
redis-cell and the ``throttled`` library): one number per key, the *theoretical arrival
time* ``tat``, the moment the bucket will be full again. Each request costs one emission
interval ``T = 60 s / rpm``. A request at ``now`` is allowed when, once it is counted,
the bucket is not over-full: ``max(tat, now) + T - now <= rpm * T``; it then sets
``tat = max(tat, now) + T``. A refused request changes nothing.

DynamoDB update expressions have no ``max()``, so the store writes one of two conditional
updates and picks the one that fits what it expects:

- *idle* (``tat <= now``, or no item): ``SET tat = :now + T`` if ``tat <= :now``;
- *busy* (``tat > now``): ``SET tat = tat + T`` if ``:now < tat <= :now + (rpm - 1) T``.

The first attempt is *idle*, unless this process saw the key's bucket busy a moment ago.
When its condition fails, ``ReturnValuesOnConditionCheckFailure`` returns the stored
``tat`` with the error, which says whether to refuse (no more writes) or to try the other
form once. So a request costs one write, two only when a burst from several processes
catches this one with the wrong guess. Times are integer microseconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from handler.clock import Clock
from handler.stores.dynamo import client, old_item, unavailable_on_outage

MICROS = 1_000_000
WINDOW_MICROS = 60 * MICROS
# An item outlives its bucket's refill by this much before DynamoDB's TTL may delete it (a
# deleted item reads as a full bucket, which it is by then).
EXPIRY_GRACE_SECONDS = 60
# Retry-After is sent in whole seconds below 60: the Vercel AI SDK ignores values of 60 s and
# more, and a key of 1 rpm waits at most 60 s (retry-after-ms then carries the exact wait).
MAX_RETRY_AFTER_SECONDS = 59


@dataclass(frozen=True)
class RateLimitState:
    """Where a key's bucket stands after this request (counted if allowed)."""

    limit: int
    """Requests per minute, and the bucket's capacity."""
    allowed: bool
    remaining: int
    """Requests that could be sent right now, after this one."""
    reset_micros: int
    """Until the bucket is full again (OpenAI's ``x-ratelimit-reset-requests``)."""
    wait_micros: int = 0
    """For a refused request, until one request fits in the bucket."""

    @property
    def reset_seconds(self) -> float:
        return self.reset_micros / MICROS

    @property
    def retry_after(self) -> int:
        """``Retry-After``: whole seconds, 1 to 59, rounded up so a retry then succeeds."""
        return min(MAX_RETRY_AFTER_SECONDS, max(1, -(-self.wait_micros // MICROS)))

    @property
    def retry_after_ms(self) -> int:
        """``retry-after-ms`` (read first by the OpenAI, Anthropic and Vercel SDKs)."""
        return min(MAX_RETRY_AFTER_SECONDS * 1000 + 999, max(1, -(-self.wait_micros // 1000)))


def emission_interval(rpm: int) -> int:
    """Microseconds one request takes out of a bucket refilled at ``rpm`` per minute."""
    return WINDOW_MICROS // rpm


def latest_tat(now: int, rpm: int) -> int:
    """The highest theoretical arrival time (tat, microseconds since the epoch) that still
    admits a request at ``now``: a full bucket holds ``rpm`` requests, so a request fits
    while the tat is at most ``rpm - 1`` emission intervals ahead of ``now`` (GCRA)."""
    return now + (rpm - 1) * emission_interval(rpm)


def admitted(rpm: int, now: int, tat: int) -> RateLimitState:
    """The state after a request at ``now`` was counted, ``tat`` being the bucket's new
    theoretical arrival time (microseconds): what is left, and when the bucket is full."""
    interval = emission_interval(rpm)
    remaining = (now + rpm * interval - tat) // interval
    return RateLimitState(rpm, True, remaining, tat - now)


def refused(rpm: int, now: int, stored: int) -> RateLimitState:
    """The state of a request at ``now`` refused by a bucket whose tat is ``stored`` (past
    :func:`latest_tat`): it may retry once the tat is back within reach."""
    return RateLimitState(rpm, False, 0, stored - now, wait_micros=stored - latest_tat(now, rpm))


class RateLimitStore:
    """The rate-limits table: one item per key, ``{key_id, tat, expires_at}``."""

    def __init__(self, table: str, dynamodb: Any | None = None, clock: Clock = time.time) -> None:
        self.table = table
        self.client = dynamodb or client()
        self.clock = clock
        self._busy_until: dict[str, int] = {}  # key id -> the last tat seen (a hint only)
        self._lock = threading.Lock()

    def hit(self, key_id: str, rpm: int) -> RateLimitState:
        """Take one request out of ``key_id``'s bucket of ``rpm``, if it holds one.

        A key of ``rpm <= 0`` has no bucket: every request is refused, with nothing written
        (an operator's way to pause a key without revoking it)."""
        if rpm <= 0:
            return RateLimitState(rpm, False, 0, 0, wait_micros=WINDOW_MICROS)
        now = round(self.clock() * MICROS)
        interval = emission_interval(rpm)
        latest = latest_tat(now, rpm)
        with self._lock:
            busy = self._busy_until.get(key_id, 0) > now
        for _ in range(3):
            tat = self._take(key_id, now, interval, latest, busy=busy)
            if isinstance(tat, int):
                self._remember(key_id, tat)
                return admitted(rpm, now, tat)
            stored = tat.stored
            if stored is not None and stored > latest:
                self._remember(key_id, stored)
                return refused(rpm, now, stored)
            busy = stored is not None and stored > now
        # Three writes lost to concurrent ones: the bucket is contended; refuse this one.
        return RateLimitState(rpm, False, 0, rpm * interval, wait_micros=MICROS)

    def peek(self, key_id: str, rpm: int) -> RateLimitState:
        """Where ``key_id``'s bucket of ``rpm`` stands now, nothing taken from it (one read):
        ``remaining`` is what could be sent now, ``allowed`` whether that is any."""
        if rpm <= 0:
            return RateLimitState(rpm, False, 0, 0)
        now = round(self.clock() * MICROS)
        interval = emission_interval(rpm)
        with unavailable_on_outage():
            item = self.client.get_item(
                TableName=self.table, Key={"key_id": key_id}, ConsistentRead=True
            ).get("Item")
        tat = max(int(item["tat"]) if item and "tat" in item else now, now)
        remaining = (now + rpm * interval - tat) // interval
        return RateLimitState(rpm, remaining > 0, remaining, tat - now)

    def _take(
        self, key_id: str, now: int, interval: int, latest: int, *, busy: bool
    ) -> int | _Missed:
        """Counted: the new tat (int). Not counted: a :class:`_Missed` with the stored tat."""
        if busy:
            expression = "SET tat = tat + :interval, expires_at = :expires"
            condition = "tat > :now AND tat <= :latest"
            values = {":interval": interval, ":now": now, ":latest": latest}
        else:
            expression = "SET tat = :next, expires_at = :expires"
            condition = "attribute_not_exists(tat) OR tat <= :now"
            values = {":next": now + interval, ":now": now}
        # tat never passes latest + interval, so this outlives it.
        values[":expires"] = (latest + interval) // MICROS + 1 + EXPIRY_GRACE_SECONDS
        with unavailable_on_outage():
            try:
                result = self.client.update_item(
                    TableName=self.table,
                    Key={"key_id": key_id},
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except self.client.exceptions.ConditionalCheckFailedException as exc:
                item = old_item(exc)
                return _Missed(int(item["tat"]) if item and "tat" in item else None)
        return int(result["Attributes"]["tat"])

    def _remember(self, key_id: str, tat: int) -> None:
        with self._lock:
            if len(self._busy_until) > 10_000:  # bound the hints of a long-lived server
                self._busy_until.clear()
            self._busy_until[key_id] = tat


@dataclass(frozen=True)
class _Missed:
    stored: int | None
    """The tat in the table when the condition failed (``None``: no item)."""
