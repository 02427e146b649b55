"""Key schemas of the service's tables: one definition for `tinyscribe init` and the tests.

``template.yaml`` declares the same tables for AWS; a test checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from handler.config import Settings

OPEN_RESERVATIONS_INDEX = "open-reservations"
"""Sparse index of the ledger: only charges still ``reserved`` carry its partition key
(``open_reservation``), so reconciliation reads open reservations and nothing else."""


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index (string keys), projecting ``attributes`` besides the keys."""

    name: str
    partition_key: str
    sort_key: str | None = None
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    setting: str
    """Name of the :class:`Settings` field holding the table name."""
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    indexes: tuple[IndexSpec, ...] = ()
    disposable: bool = False
    """Holds nothing that must survive a schema change (rate-limit buckets): `tinyscribe init`
    may drop and recreate it when its key schema changed."""


TABLES: tuple[TableSpec, ...] = (
    TableSpec("keys_table", "key_id"),
    TableSpec("wallets_table", "wallet_id"),
    TableSpec(
        "ledger_table",
        "wallet_id",
        sort_key="entry_id",
        indexes=(
            IndexSpec(
                OPEN_RESERVATIONS_INDEX,
                "open_reservation",
                sort_key="created_at",
                attributes=("amount", "kind", "unit"),
            ),
        ),
    ),
    TableSpec("rate_limits_table", "key_id", ttl_attribute="expires_at", disposable=True),
    TableSpec("jobs_table", "job_id", ttl_attribute="expires_at"),
    TableSpec("idempotency_table", "id", ttl_attribute="expiration"),
    TableSpec("idempotency_keys_table", "id", ttl_attribute="expires_at"),
)


def table_name(spec: TableSpec, settings: Settings) -> str:
    return str(getattr(settings, spec.setting))
