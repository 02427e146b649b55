"""Per-key request limits: a counter per key and clock minute, expired by DynamoDB's TTL."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from handler.stores.dynamo import client, unavailable_on_outage

WINDOW_SECONDS = 60
# Counters outlive their minute a little so a late write never resurrects a fresh window.
EXPIRY_GRACE_SECONDS = 120


@dataclass(frozen=True)
class RateLimitState:
    """Where a key stands in the current window, after counting this request."""

    limit: int
    used: int
    reset_seconds: float

    @property
    def allowed(self) -> bool:
        return self.used <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window resets (at least 1), for ``Retry-After``."""
        return max(1, math.ceil(self.reset_seconds))


class RateLimitStore:
    """The rate-limits table."""

    def __init__(self, table: str, dynamodb: Any | None = None) -> None:
        self.table = table
        self.client = dynamodb or client()

    def hit(self, key_id: str, limit: int, now: float | None = None) -> RateLimitState:
        """Count one request for ``key_id`` in the current minute (one atomic write)."""
        now = time.time() if now is None else now
        window_start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        with unavailable_on_outage():
            result = self.client.update_item(
                TableName=self.table,
                Key={"window": f"{key_id}#{window_start}"},
                UpdateExpression="ADD hits :one SET expires_at = :expires",
                ExpressionAttributeValues={
                    ":one": 1,
                    ":expires": window_start + WINDOW_SECONDS + EXPIRY_GRACE_SECONDS,
                },
                ReturnValues="UPDATED_NEW",
            )
        used = int(result["Attributes"]["hits"])
        return RateLimitState(limit, used, window_start + WINDOW_SECONDS - now)
