"""Everything a request needs, built once from the settings (the composition root)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from handler.clock import Clock
from handler.config import Settings
from handler.engine import Engine
from handler.errors import ServiceUnavailable
from handler.stores.dynamo import client as dynamo_client
from handler.stores.idempotency import IdempotencyStore
from handler.stores.jobs import JobStore
from handler.stores.keys import KeyStore
from handler.stores.objects import ObjectStore
from handler.stores.rate_limits import RateLimitStore
from handler.stores.wallets import WalletStore


class TranscriptionSlots:
    """Bounds the transcriptions running at once; a request that waits too long gets 503."""

    def __init__(self, size: int, wait_seconds: float) -> None:
        self._semaphore = threading.BoundedSemaphore(size)
        self.wait_seconds = wait_seconds

    def acquire(self) -> None:
        """Take a slot, waiting up to ``wait_seconds``; 503 ``server_busy`` if none frees up.

        The caller must :meth:`release` it on every exit: a streamed response holds its slot
        from before its first byte until its engine has finished, on another thread."""
        if not self._semaphore.acquire(timeout=self.wait_seconds):
            raise ServiceUnavailable(
                "The server is busy transcribing other requests. Please retry shortly.",
                code="server_busy",
                headers={"Retry-After": "5"},
            )

    def release(self) -> None:
        """Give back a slot taken with :meth:`acquire`."""
        self._semaphore.release()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """A slot for the duration of the block (503 if none frees up in time)."""
        self.acquire()
        try:
            yield
        finally:
            self.release()


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    keys: KeyStore
    wallets: WalletStore
    rate_limits: RateLimitStore
    jobs: JobStore
    idempotency: IdempotencyStore
    objects: ObjectStore
    slots: TranscriptionSlots
    dynamodb: Any
    clock: Clock = time.time

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine: Engine | None = None,
        dynamodb: Any | None = None,
        clock: Clock = time.time,
    ) -> Services:
        """Stores named by the settings. Pass ``engine`` to share an already loaded model,
        ``dynamodb`` (a boto3 client) to use another database than the environment's, and
        ``clock`` to drive rate limits, Idempotency-Key expiry and reconciliation in tests."""
        dynamodb = dynamodb or dynamo_client()
        return cls(
            settings=settings,
            engine=engine or Engine(settings),
            keys=KeyStore(settings.keys_table, dynamodb),
            wallets=WalletStore(settings.wallets_table, settings.ledger_table, dynamodb, clock),
            rate_limits=RateLimitStore(settings.rate_limits_table, dynamodb, clock),
            jobs=JobStore(settings.jobs_table, dynamodb),
            idempotency=IdempotencyStore(
                settings.idempotency_keys_table,
                dynamodb,
                clock=clock,
                ttl_seconds=settings.idempotency_key_seconds,
                lock_seconds=settings.idempotency_lock_seconds,
            ),
            objects=ObjectStore(settings.bucket),
            slots=TranscriptionSlots(
                settings.max_concurrent_transcriptions, settings.transcription_queue_seconds
            ),
            dynamodb=dynamodb,
            clock=clock,
        )
