"""The S3 bucket: downloads for transcription, uploads of results, presigned URLs.

boto3 honours ``AWS_ENDPOINT_URL_S3``, so tests use a local S3 endpoint over HTTP.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from typing import IO, Any

import boto3
from botocore.config import Config

# Spill downloads to /tmp (Lambda's only writable place) above this size.
SPOOL_IN_MEMORY_BYTES = 32 * 1024 * 1024
CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=30,
    retries={"mode": "standard", "total_max_attempts": 4},
    signature_version="s3v4",
)


@lru_cache
def client() -> Any:
    """The process-wide S3 client."""
    return boto3.client("s3", config=CLIENT_CONFIG)


class ObjectStore:
    """One bucket."""

    def __init__(self, bucket: str, s3: Any | None = None) -> None:
        self.bucket = bucket
        self._client = s3

    @property
    def client(self) -> Any:
        # Created on first use: most API requests never touch S3.
        if self._client is None:
            self._client = client()
        return self._client

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or ``None`` when it does not exist."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def download(self, key: str) -> IO[bytes]:
        """The object's bytes in a seekable temporary file (memory, then /tmp)."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
        self.client.download_fileobj(self.bucket, key, spool)
        spool.seek(0)
        return spool

    def put_text(self, key: str, body: str, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body.encode(), ContentType=content_type
        )

    def read_text(self, key: str) -> str:
        return str(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode())

    def presign_put(self, key: str, expires_seconds: int) -> str:
        """A URL anyone may PUT the object to until it expires."""
        return str(
            self.client.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=expires_seconds,
                HttpMethod="PUT",
            )
        )

    def presign_get(self, key: str, expires_seconds: int) -> str:
        """A URL anyone may GET the object from until it expires."""
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds
            )
        )
