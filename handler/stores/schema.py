"""Key schemas of the service's tables: one definition for `tinyscribe init` and the tests.

``template.yaml`` declares the same tables for AWS; a test checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from handler.config import Settings


@dataclass(frozen=True)
class TableSpec:
    setting: str
    """Name of the :class:`Settings` field holding the table name."""
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None


TABLES: tuple[TableSpec, ...] = (
    TableSpec("keys_table", "key_id"),
    TableSpec("wallets_table", "wallet_id"),
    TableSpec("ledger_table", "wallet_id", sort_key="entry_id"),
    TableSpec("rate_limits_table", "window", ttl_attribute="expires_at"),
    TableSpec("jobs_table", "job_id", ttl_attribute="expires_at"),
    TableSpec("idempotency_table", "id", ttl_attribute="expiration"),
)


def table_name(spec: TableSpec, settings: Settings) -> str:
    return str(getattr(settings, spec.setting))
