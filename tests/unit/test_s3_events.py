"""handler.s3_events: the object versions an S3 notification names (no bucket, no table)."""

from __future__ import annotations

from typing import Any

from handler.s3_events import ObjectRef, object_refs


def record(key: str, **object_fields: Any) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": "tinyscribe-bucket", "arn": "arn:aws:s3:::tinyscribe-bucket"},
            "object": {"key": key, **object_fields},
        },
    }


def test_keys_are_url_decoded_and_versions_kept_in_order() -> None:
    event = {
        "Records": [
            record("input/my+talk%281%29.wav", size=1234, versionId="v1", eTag="e1"),
            record("uploads/job_abc", size=99, eTag="e2"),  # a bucket without versioning
            record("input/a%2Bb.mp3", size=5, eTag=""),
        ]
    }
    assert object_refs(event) == [
        ObjectRef("tinyscribe-bucket", "input/my talk(1).wav", "v1", 1234),
        ObjectRef("tinyscribe-bucket", "uploads/job_abc", "e2", 99),
        ObjectRef("tinyscribe-bucket", "input/a+b.mp3", "", 5),
    ]


def test_an_event_without_records_names_nothing() -> None:
    assert object_refs({"Records": []}) == []
