"""Create the service's tables (``tinyscribe init``): for DynamoDB Local and first deploys
without CloudFormation. Idempotent, and it brings tables made by older versions up to date:
missing indexes are added in place, and a disposable table whose key changed is recreated."""

from __future__ import annotations

import time
from typing import Any

from handler.config import Settings
from handler.stores.dynamo import client, unavailable_on_outage
from handler.stores.schema import TABLES, IndexSpec, TableSpec, table_name


def create_tables(settings: Settings, dynamodb: Any | None = None) -> list[str]:
    """Create every missing table (and add missing indexes); returns the names it created or
    changed. Raises ``RuntimeError`` for a table holding data whose key schema differs."""
    dynamodb = dynamodb or client()
    changed: list[str] = []
    with unavailable_on_outage():
        existing = set(_table_names(dynamodb))
        for spec in TABLES:
            name = table_name(spec, settings)
            if name in existing and _migrate(dynamodb, spec, name):
                changed.append(name)
            elif name not in existing:
                _create(dynamodb, spec, name)
                changed.append(name)
    return changed


def _table_names(dynamodb: Any) -> list[str]:
    names: list[str] = []
    for page in dynamodb.get_paginator("list_tables").paginate():
        names.extend(page["TableNames"])
    return names


def _create(dynamodb: Any, spec: TableSpec, name: str) -> None:
    dynamodb.create_table(TableName=name, **_definition(spec))
    dynamodb.get_waiter("table_exists").wait(TableName=name)
    if spec.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )


def _migrate(dynamodb: Any, spec: TableSpec, name: str) -> bool:
    """Bring an existing table to ``spec``; True if anything changed."""
    table = dynamodb.describe_table(TableName=name)["Table"]
    keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
    if (keys.get("HASH"), keys.get("RANGE")) != (spec.partition_key, spec.sort_key):
        if not spec.disposable:
            raise RuntimeError(
                f"table {name} has keys {keys}, expected {spec.partition_key}/{spec.sort_key}"
            )
        dynamodb.delete_table(TableName=name)
        dynamodb.get_waiter("table_not_exists").wait(TableName=name)
        _create(dynamodb, spec, name)
        return True
    present = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    missing = [index for index in spec.indexes if index.name not in present]
    for index in missing:  # DynamoDB adds one index per call
        dynamodb.update_table(
            TableName=name,
            AttributeDefinitions=_attribute_definitions(_index_keys(index)),
            GlobalSecondaryIndexUpdates=[{"Create": _index(index)}],
        )
        _wait_for_index(dynamodb, name, index.name)
    return bool(missing)


def _wait_for_index(dynamodb: Any, table: str, index: str, timeout: float = 600) -> None:
    """Poll until the new index is ACTIVE (boto3 has no waiter for indexes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = dynamodb.describe_table(TableName=table)["Table"]
        statuses = {
            i["IndexName"]: i["IndexStatus"] for i in described.get("GlobalSecondaryIndexes", [])
        }
        if statuses.get(index) == "ACTIVE":
            return
        time.sleep(0.2)
    raise RuntimeError(f"index {index} of {table} did not become active in {timeout:g} s")


def _index_keys(index: IndexSpec) -> list[tuple[str, str]]:
    keys = [(index.partition_key, "HASH")]
    if index.sort_key:
        keys.append((index.sort_key, "RANGE"))
    return keys


def _index(index: IndexSpec) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": "KEYS_ONLY"}
    if index.attributes:
        projection = {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.attributes)}
    return {
        "IndexName": index.name,
        "KeySchema": [{"AttributeName": n, "KeyType": t} for n, t in _index_keys(index)],
        "Projection": projection,
    }


def _attribute_definitions(keys: list[tuple[str, str]]) -> list[dict[str, str]]:
    names = dict.fromkeys(name for name, _ in keys)
    return [{"AttributeName": name, "AttributeType": "S"} for name in names]


def _definition(spec: TableSpec) -> dict[str, Any]:
    keys = [(spec.partition_key, "HASH")]
    if spec.sort_key:
        keys.append((spec.sort_key, "RANGE"))
    all_keys = keys + [key for index in spec.indexes for key in _index_keys(index)]
    definition: dict[str, Any] = {
        "KeySchema": [{"AttributeName": name, "KeyType": kind} for name, kind in keys],
        "AttributeDefinitions": _attribute_definitions(all_keys),
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.indexes:
        definition["GlobalSecondaryIndexes"] = [_index(index) for index in spec.indexes]
    return definition
