"""API keys: only a SHA-256 of each secret is stored; the secret is shown once at creation.

A secret reads ``sk-ts-<key id>-<43 random url-safe chars>`` (32 random bytes). The key id
inside it lets us fetch the one record by primary key and compare hashes in constant time,
without an index on the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from handler.stores.dynamo import client, unavailable_on_outage

Plan = Literal["payg", "unmetered"]
SECRET_PATTERN = re.compile(r"sk-ts-([0-9a-f]{16})-[A-Za-z0-9_-]{43}")
# Compared against when the key id is unknown, so unknown and wrong keys take the same time.
_DUMMY_HASH = hashlib.sha256(b"tinyscribe-dummy-key").hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """A key as stored, without its secret."""

    key_id: str
    name: str
    wallet_id: str
    plan: Plan
    rpm: int
    created_at: str
    revoked_at: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def metered(self) -> bool:
        """Whether its requests are charged to its wallet (plan ``payg``; ``unmetered`` keys
        are recorded in the ledger at no cost)."""
        return self.plan == "payg"


def hash_secret(secret: str) -> str:
    """The stored form of a secret (the secret has 256 bits of entropy: no salt needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> tuple[str, str]:
    """A fresh ``(key_id, secret)`` pair."""
    key_id = secrets.token_hex(8)
    return key_id, f"sk-ts-{key_id}-{secrets.token_urlsafe(32)}"


def key_id_of(secret: str) -> str | None:
    """The key id inside a well-formed secret, else ``None``."""
    match = SECRET_PATTERN.fullmatch(secret)
    return match.group(1) if match else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class KeyStore:
    """The keys table."""

    def __init__(self, table: str, dynamodb: Any | None = None) -> None:
        self.table = table
        self.client = dynamodb or client()

    def create(self, *, name: str, wallet_id: str, plan: Plan, rpm: int) -> tuple[ApiKey, str]:
        """Store a new key and return it with its secret (never stored, never shown again)."""
        key_id, secret = new_secret()
        key = ApiKey(key_id, name, wallet_id, plan, rpm, created_at=now_iso())
        item = {**asdict(key), "secret_hash": hash_secret(secret)}
        item.pop("revoked_at")
        with unavailable_on_outage():
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(key_id)",
            )
        return key, secret

    def get(self, key_id: str) -> ApiKey | None:
        """The key with this id, or ``None``."""
        item = self._item(key_id)
        return _key(item) if item else None

    def verify(self, secret: str) -> ApiKey | None:
        """The key this secret opens, or ``None`` (malformed, unknown or wrong secret)."""
        key_id = key_id_of(secret)
        item = self._item(key_id) if key_id else None
        stored_hash = item["secret_hash"] if item else _DUMMY_HASH
        matches = hmac.compare_digest(stored_hash, hash_secret(secret))
        return _key(item) if item and matches else None

    def list(self) -> list[ApiKey]:
        """Every key (an operator command: a scan is fine at this scale)."""
        items: list[dict[str, Any]] = []
        with unavailable_on_outage():
            for page in self.client.get_paginator("scan").paginate(TableName=self.table):
                items.extend(page.get("Items", []))
        return sorted((_key(item) for item in items), key=lambda key: key.created_at)

    def revoke(self, key_id: str) -> ApiKey | None:
        """Mark the key revoked (effective on the next request); ``None`` if it does not exist."""
        with unavailable_on_outage():
            try:
                result = self.client.update_item(
                    TableName=self.table,
                    Key={"key_id": key_id},
                    UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
                    ConditionExpression="attribute_exists(key_id)",
                    ExpressionAttributeValues={":now": now_iso()},
                    ReturnValues="ALL_NEW",
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                return None
        return _key(result["Attributes"])

    def _item(self, key_id: str) -> dict[str, Any] | None:
        with unavailable_on_outage():
            response = self.client.get_item(
                TableName=self.table, Key={"key_id": key_id}, ConsistentRead=True
            )
        item: dict[str, Any] | None = response.get("Item")
        return item


def _key(item: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=item["key_id"],
        name=item["name"],
        wallet_id=item["wallet_id"],
        plan=item["plan"],
        rpm=int(item["rpm"]),
        created_at=item["created_at"],
        revoked_at=item.get("revoked_at"),
    )
