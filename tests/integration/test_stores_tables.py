"""`tinyscribe init` (``create_tables``) against DynamoDB Local: it creates what is missing
and brings tables made by the previous version up to date without losing money data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from handler.config import Settings
from handler.stores.dynamo import client
from handler.stores.schema import OPEN_RESERVATIONS_INDEX, TABLES, table_name
from handler.stores.tables import create_tables


@pytest.fixture
def fresh_names(settings: Settings) -> Iterator[Settings]:
    suffix = uuid.uuid4().hex[:8]
    named = settings.model_copy(
        update={spec.setting: f"{table_name(spec, settings)}-{suffix}" for spec in TABLES}
    )
    yield named
    dynamodb = client()
    pages = dynamodb.get_paginator("list_tables").paginate()
    existing = {name for page in pages for name in page["TableNames"]}
    for spec in TABLES:
        name = table_name(spec, named)
        if name in existing:
            dynamodb.delete_table(TableName=name)


def keys_of(name: str) -> tuple[str, ...]:
    table = client().describe_table(TableName=name)["Table"]
    return tuple(k["AttributeName"] for k in table["KeySchema"])


def test_tables_made_by_the_previous_version_are_upgraded_in_place(fresh_names: Settings) -> None:
    dynamodb = client()
    ledger, buckets = fresh_names.ledger_table, fresh_names.rate_limits_table
    # The previous version's ledger (no index) holding an entry, and its per-minute counters.
    dynamodb.create_table(
        TableName=ledger,
        KeySchema=[
            {"AttributeName": "wallet_id", "KeyType": "HASH"},
            {"AttributeName": "entry_id", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "wallet_id", "AttributeType": "S"},
            {"AttributeName": "entry_id", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=buckets,
        KeySchema=[{"AttributeName": "window", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "window", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    entry = {"wallet_id": "wal_x", "entry_id": "2026-01-01T00:00:00.000+00:00#1", "amount": 5}
    dynamodb.put_item(TableName=ledger, Item=entry)

    changed = create_tables(fresh_names)

    assert {ledger, buckets} <= set(changed)
    assert len(changed) == len(TABLES)  # the other five were created
    indexes = dynamodb.describe_table(TableName=ledger)["Table"]["GlobalSecondaryIndexes"]
    assert [i["IndexName"] for i in indexes] == [OPEN_RESERVATIONS_INDEX]
    kept = dynamodb.get_item(TableName=ledger, Key={k: entry[k] for k in ("wallet_id", "entry_id")})
    assert kept["Item"]["amount"] == 5  # money data survives
    assert keys_of(buckets) == ("key_id",)  # buckets only: recreated with the new key
    assert create_tables(fresh_names) == []  # idempotent


def test_a_money_table_with_another_key_is_refused_not_dropped(fresh_names: Settings) -> None:
    dynamodb = client()
    dynamodb.create_table(
        TableName=fresh_names.wallets_table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(RuntimeError, match="expected wallet_id"):
        create_tables(fresh_names)
    assert keys_of(fresh_names.wallets_table) == ("id",)
