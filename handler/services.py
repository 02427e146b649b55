"""Everything a request needs, built once from the settings (the composition root)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from handler.config import Settings
from handler.engine import Engine
from handler.errors import ServiceUnavailable
from handler.stores.dynamo import client as dynamo_client
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

    @contextmanager
    def hold(self) -> Iterator[None]:
        if not self._semaphore.acquire(timeout=self.wait_seconds):
            raise ServiceUnavailable(
                "The server is busy transcribing other requests. Please retry shortly.",
                code="server_busy",
                headers={"Retry-After": "5"},
            )
        try:
            yield
        finally:
            self._semaphore.release()


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    keys: KeyStore
    wallets: WalletStore
    rate_limits: RateLimitStore
    jobs: JobStore
    objects: ObjectStore
    slots: TranscriptionSlots
    dynamodb: Any

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: Engine | None = None, dynamodb: Any | None = None
    ) -> Services:
        """Stores named by the settings. Pass ``engine`` to share an already loaded model and
        ``dynamodb`` (a boto3 client) to use another database than the environment's."""
        dynamodb = dynamodb or dynamo_client()
        return cls(
            settings=settings,
            engine=engine or Engine(settings),
            keys=KeyStore(settings.keys_table, dynamodb),
            wallets=WalletStore(settings.wallets_table, settings.ledger_table, dynamodb),
            rate_limits=RateLimitStore(settings.rate_limits_table, dynamodb),
            jobs=JobStore(settings.jobs_table, dynamodb),
            objects=ObjectStore(settings.bucket),
            slots=TranscriptionSlots(
                settings.max_concurrent_transcriptions, settings.transcription_queue_seconds
            ),
            dynamodb=dynamodb,
        )
