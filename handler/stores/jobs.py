"""Asynchronous transcription jobs: created by the API, run by the S3 upload event.

A job is one unit of work: it is charged once, whatever the retries. Its end is written in
the same transaction as its money (``complete_item`` with the settlement, ``fail_item`` with
the refund), so a job never reads completed with its charge refunded, or failed and charged.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

from handler.stores.dynamo import TransactItem, client, unavailable_on_outage
from handler.stores.keys import now_iso

JobStatus = Literal["awaiting_upload", "queued", "processing", "completed", "failed"]
# Jobs and their records disappear (DynamoDB TTL) this long after creation.
JOB_RETENTION_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Job:
    job_id: str
    key_id: str
    wallet_id: str
    metered: bool
    request: Mapping[str, Any]
    """The validated request fields (model, response_format, prompt, ...)."""
    file_name: str
    upload_key: str
    status: JobStatus = "awaiting_upload"
    created_at: str = field(default_factory=now_iso)
    updated_at: str | None = None
    started_at: str | None = None
    """When the first attempt to run it began (kept by later attempts: the unit's start)."""
    result_key: str | None = None
    media_type: str | None = None
    error: dict[str, Any] | None = None
    duration: float | None = None
    billed_seconds: int | None = None
    cost: int | None = None
    expires_at: int = field(default_factory=lambda: int(time.time()) + JOB_RETENTION_SECONDS)


def new_job_id() -> str:
    return f"job_{secrets.token_hex(12)}"


class JobStore:
    """The jobs table."""

    def __init__(self, table: str, dynamodb: Any | None = None) -> None:
        self.table = table
        self.client = dynamodb or client()

    def create(self, job: Job) -> Job:
        with unavailable_on_outage():
            self.client.put_item(
                TableName=self.table,
                Item=_item(job),
                ConditionExpression="attribute_not_exists(job_id)",
            )
        return job

    def get(self, job_id: str) -> Job | None:
        with unavailable_on_outage():
            item = self.client.get_item(
                TableName=self.table, Key={"job_id": job_id}, ConsistentRead=True
            ).get("Item")
        return _job(item) if item else None

    def start(self, job_id: str) -> Job | None:
        """Move the job to ``processing``; ``None`` if it is unknown or already finished.

        A job left ``processing`` by an attempt that failed on the way (and is retried) starts
        again, keeping its ``started_at``: the idempotency guard around the S3 handler keeps
        two attempts from running at once, and the reservation derived from the job keeps
        them from charging twice.
        """
        now = now_iso()
        with unavailable_on_outage():
            try:
                result = self.client.update_item(
                    TableName=self.table,
                    Key={"job_id": job_id},
                    UpdateExpression="SET #status = :processing, updated_at = :now, "
                    "started_at = if_not_exists(started_at, :now)",
                    ConditionExpression="#status IN (:awaiting, :queued, :processing)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":now": now,
                        ":awaiting": "awaiting_upload",
                        ":queued": "queued",
                        ":processing": "processing",
                    },
                    ReturnValues="ALL_NEW",
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                return None
        return _job(result["Attributes"])

    def complete_item(self, job: Job, **results: Any) -> TransactItem:
        """The write that records the result (``result_key``, ``media_type``, ``duration``,
        ``cost``...), valid only while the job is ``processing``: put it in the transaction
        that settles the job's charge."""
        return self._transition(job.job_id, {"status": "completed", "error": None, **results})

    def fail_item(self, job: Job, error: dict[str, Any]) -> TransactItem:
        """The write that records a failure (``error``: the OpenAI envelope's inner object),
        valid only while the job is ``processing``: put it in the transaction that refunds."""
        return self._transition(job.job_id, {"status": "failed", "error": error})

    def fail(self, job: Job, error: dict[str, Any]) -> bool:
        """Record a failure when no money moves; False if the job was no longer running."""
        update = self._transition(job.job_id, {"status": "failed", "error": error})["Update"]
        with unavailable_on_outage():
            try:
                self.client.update_item(**update)
            except self.client.exceptions.ConditionalCheckFailedException:
                return False
        return True

    def _transition(self, job_id: str, changes: dict[str, Any]) -> TransactItem:
        changes = {**changes, "updated_at": now_iso()}
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"job_id": job_id},
                "UpdateExpression": "SET " + ", ".join(f"#{name} = :{name}" for name in changes),
                "ConditionExpression": "#status = :from_status",
                "ExpressionAttributeNames": {f"#{name}": name for name in changes},
                "ExpressionAttributeValues": {
                    **{f":{name}": _storable(value) for name, value in changes.items()},
                    ":from_status": "processing",
                },
            }
        }


def _storable(value: Any) -> Any:
    """DynamoDB takes no floats: store them as Decimals, at any depth."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int or float, at any depth."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _item(job: Job) -> dict[str, Any]:
    return {name: _storable(value) for name, value in asdict(job).items() if value is not None}


def _job(item: dict[str, Any]) -> Job:
    fields = {k: _plain(v) for k, v in item.items() if k in Job.__dataclass_fields__}
    if fields.get("duration") is not None:
        fields["duration"] = float(fields["duration"])
    return Job(**fields)
