"""The transcription path after authentication, shared by the HTTP route and S3 jobs:

decode -> (wait for a free slot) -> reserve -> transcribe -> render -> settle, or refund on
failure.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from handler.audio import decode_audio
from handler.billing import billable_seconds, cost_micro_usd
from handler.engine import ModelUnavailable
from handler.errors import ServiceUnavailable
from handler.formats import Rendered, render
from handler.observability import logger
from handler.services import Services
from handler.transcript import Granularity, ResponseFormat, TranscribeOptions, Transcript


@dataclass(frozen=True)
class TranscriptionRequest:
    """A validated request: what to transcribe it with and how to render it."""

    options: TranscribeOptions
    response_format: ResponseFormat = "json"
    granularities: Collection[Granularity] = ("segment",)


@dataclass(frozen=True)
class Payer:
    """Who pays: the key's wallet; ``metered`` is False for unmetered plans."""

    key_id: str
    wallet_id: str
    metered: bool


@dataclass(frozen=True)
class Outcome:
    transcript: Transcript
    rendered: Rendered
    duration: float
    billed_seconds: int
    cost: int
    """Micro-USD charged (0 for unmetered payers and unbilled batch work)."""
    engine_ms: float


def transcribe(
    services: Services,
    source: BinaryIO | str,
    request: TranscriptionRequest,
    *,
    payer: Payer | None,
    request_id: str,
    max_seconds: float,
    too_long_hint: str = "",
) -> Outcome:
    """Run one transcription, charging ``payer`` (if any) exactly when it succeeds."""
    settings = services.settings
    audio = decode_audio(source, max_seconds=max_seconds, too_long_hint=too_long_hint)
    seconds = billable_seconds(audio.duration, settings.billing_increment_seconds)
    cost = cost_micro_usd(seconds, settings.price_micro_usd_per_minute)
    with services.slots.hold():  # a busy server answers 503 before touching the wallet
        reservation = None
        if payer is not None:
            reservation = services.wallets.reserve(
                payer.wallet_id,
                cost=cost,
                metered=payer.metered,
                key_id=payer.key_id,
                request_id=request_id,
                audio_seconds=seconds,
            )
        try:
            engine_started = time.perf_counter()
            transcript = _run_engine(services, audio.samples, request.options)
            engine_ms = (time.perf_counter() - engine_started) * 1000
            rendered = render(
                transcript, request.response_format, audio.whole_seconds, request.granularities
            )
        except BaseException:
            if reservation is not None:
                services.wallets.refund(reservation)
            raise
        else:
            if reservation is not None:
                services.wallets.settle(reservation)
    charged = reservation.amount if reservation else 0
    return Outcome(transcript, rendered, audio.duration, seconds, charged, engine_ms)


def _run_engine(services: Services, samples: np.ndarray, options: TranscribeOptions) -> Transcript:
    try:
        return services.engine.transcribe(samples, options)
    except ModelUnavailable as exc:
        logger.error("model unavailable", extra={"reason": str(exc)})
        raise ServiceUnavailable(
            "The transcription model is not available on this server.",
            code="model_unavailable",
            headers={"Retry-After": "30"},
        ) from exc
