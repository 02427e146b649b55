"""The transcription path after authentication, shared by the HTTP routes and S3 jobs:

decode -> (wait for a free slot) -> reserve -> transcribe -> render -> deliver -> settle, or
refund on failure.

Money moves per **unit of work** (:class:`UnitOfWork`): an HTTP request, an HTTP request
under an ``Idempotency-Key`` (all its retries are one unit), or a customer job. The unit
names its reservation, so a retried unit finds the reservation its first attempt made and
carries on with it instead of charging again. The unit is charged only once its result is
delivered: for HTTP once the response is rendered, for a job once the result object and
the job record are written. A failure before that refunds, in the same transaction as the
unit's change of state (an Idempotency-Key released, a job marked failed).

The pieces compose, so each route drives them as its delivery needs:

- :func:`transcription` runs the whole path for a response that is complete before it is
  sent (``POST /v1/audio/transcriptions``; translations can use it as is)::

      with transcription(services, file, request, payer=payer, unit=unit, ...) as run:
          response = Response(run.outcome.rendered.body, ...)
          run.settle(*idempotency.completion(response))
      return response

- a streamed response (``stream=true``, :mod:`handler.streaming`) uses the steps:
  :func:`decode_input`, then ``services.slots.acquire()`` and :func:`reserve` before the first
  byte (so 402 and 503 are still proper statuses), then on the stream's own thread
  ``with charge.refunded_on_error():`` around the engine's segments, and
  ``charge.settle(...)`` once the final event exists, before it is sent; a failure mid-stream
  refunds, and the slot is released on every exit.
- jobs (``handler.s3_events``) use the steps too, because a job's infrastructure failure
  keeps its reservation open for the platform's retry instead of refunding it.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

from handler.audio import DecodedAudio, decode_audio
from handler.billing import billable_seconds, cost_micro_usd
from handler.engine import ModelUnavailable
from handler.errors import ApiError, AuthenticationFailed, InvalidRequest, ServiceUnavailable
from handler.formats import Rendered, render, render_translation
from handler.observability import logger
from handler.services import Services
from handler.stores.dynamo import TransactItem
from handler.stores.keys import now_iso
from handler.stores.wallets import (
    Reservation,
    WalletNotFound,
    WalletStore,
    reservation_entry_id,
)
from handler.transcript import (
    SEGMENT_TIMES,
    Granularity,
    ResponseFormat,
    Task,
    TranscribeOptions,
    Transcript,
)


@dataclass(frozen=True)
class TranscriptionRequest:
    """A validated request: what to transcribe it with and how to render it."""

    options: TranscribeOptions
    response_format: ResponseFormat = "json"
    granularities: Collection[Granularity] = SEGMENT_TIMES
    task: Task = "transcribe"
    """``translate`` renders OpenAI's translation shapes (tiny.en: English in, English out)."""
    stream: bool = False
    """Answer with OpenAI's server-sent transcription events (``json`` and ``text`` only)."""
    stream_segments: bool = False
    """With ``stream``: a ``transcript.text.segment`` event after each segment's text (the
    client asked for ``timestamp_granularities[]=segment``)."""


@dataclass(frozen=True)
class Payer:
    """Who pays: the key's wallet; ``metered`` is False for unmetered plans."""

    key_id: str
    wallet_id: str
    metered: bool


@dataclass(frozen=True)
class UnitOfWork:
    """One thing charged at most once, however often it is attempted.

    ``name`` says what it is (``request:<request id>``, ``idempotency:<record id>``,
    ``job:<job id>``) and ``started_at`` (ISO) when its first attempt began; together they
    give the reservation's ledger entry id, the same for every attempt.
    """

    name: str
    started_at: str
    request_id: str
    """Shown as the charge's ``request_id`` in the ledger and ``/v1/usage``."""
    on_refund: tuple[TransactItem, ...] = field(default=(), compare=False)
    """State changes written in the same transaction as a refund (releasing an
    Idempotency-Key so that the client's retry runs again)."""

    @classmethod
    def request(cls, request_id: str) -> UnitOfWork:
        """A request without Idempotency-Key: its own unit (a retry is a new request)."""
        return cls(f"request:{request_id}", now_iso(), request_id)

    @classmethod
    def job(cls, job_id: str, started_at: str) -> UnitOfWork:
        """A customer job: every S3 event delivery and Lambda retry of it is the same unit."""
        return cls(f"job:{job_id}", started_at, job_id)

    @property
    def kind(self) -> str:
        """``request``, ``idempotency`` or ``job``."""
        return self.name.partition(":")[0]

    @property
    def reservation_id(self) -> str:
        """The ledger entry id of this unit's reservation."""
        return reservation_entry_id(self.name, self.started_at)


class Charge:
    """The money of one unit of work: reserved, then settled or refunded exactly once.

    A charge without a reservation (unbilled batch work) settles and refunds nothing but the
    state changes passed to it.
    """

    def __init__(
        self, wallets: WalletStore, unit: UnitOfWork, reservation: Reservation | None
    ) -> None:
        self.wallets = wallets
        self.unit = unit
        self.reservation = reservation
        self.open = True

    @property
    def amount(self) -> int:
        """Micro-USD held, and charged once settled (0 when unmetered or unbilled)."""
        return self.reservation.amount if self.reservation else 0

    def settle(self, *also: TransactItem) -> None:
        """Charge for good, writing ``also`` (the delivery's record) in the same transaction.

        Raises :class:`~handler.stores.wallets.ReservationClosed` when the unit was closed
        meanwhile (reconciliation refunded it, or another attempt finished it)."""
        if self.reservation is not None:
            self.wallets.settle(self.reservation, *also)
        elif also:
            self.wallets.transact(list(also))
        self.open = False

    def refund(self, *also: TransactItem) -> None:
        """Give the money back, writing the unit's ``on_refund`` and ``also`` with it."""
        changes = (*self.unit.on_refund, *also)
        if self.reservation is not None:
            self.wallets.refund(self.reservation, *changes)
        elif changes:
            self.wallets.transact(list(changes))
        self.open = False

    @contextmanager
    def refunded_on_error(self) -> Iterator[Charge]:
        """Refund if the block raises before the charge is settled; the error propagates
        (a failing refund leaves the reservation to reconciliation and raises its 503)."""
        try:
            yield self
        except BaseException:
            if self.open:
                self.refund()
            raise


@dataclass(frozen=True)
class Outcome:
    transcript: Transcript
    rendered: Rendered
    duration: float
    billed_seconds: int
    cost: int
    """Micro-USD charged (0 for unmetered payers and unbilled batch work)."""
    engine_ms: float


@dataclass
class Transcription:
    """What the body of :func:`transcription` gets: the result, and the charge to settle
    once it has delivered it."""

    outcome: Outcome
    charge: Charge

    def settle(self, *also: TransactItem) -> None:
        """Charge the unit, writing ``also`` (its delivery's record) in the same transaction."""
        self.charge.settle(*also)


@contextmanager
def transcription(
    services: Services,
    source: IO[bytes] | str,
    request: TranscriptionRequest,
    *,
    payer: Payer | None,
    unit: UnitOfWork,
    max_seconds: float,
    too_long_hint: str = "",
) -> Iterator[Transcription]:
    """Decode, reserve, transcribe and render; the block delivers and calls ``settle``.

    Any exception (from here or the block) refunds; so does leaving the block without
    settling. Raises the 4xx :class:`ApiError` of bad input before any reservation, and
    :class:`InsufficientCredits` (402), a 401 for a key without wallet, or 503 (busy server,
    database down) before any work."""
    audio = decode_input(source, max_seconds=max_seconds, too_long_hint=too_long_hint)
    seconds = billable_seconds(audio.duration, services.settings.billing_increment_seconds)
    with services.slots.hold():  # a busy server answers 503 before touching the wallet
        charge = reserve(services, payer, unit, seconds)
        with charge.refunded_on_error():
            transcript, rendered, engine_ms = run_engine(services, audio, request)
            outcome = Outcome(
                transcript, rendered, audio.duration, seconds, charge.amount, engine_ms
            )
            yield Transcription(outcome, charge)
            if charge.open:
                charge.refund()  # not delivered: not charged


def decode_input(
    source: IO[bytes] | str, *, max_seconds: float, too_long_hint: str = ""
) -> DecodedAudio:
    """Decode bytes already received (nothing here reaches another service).

    So whatever the decoder raises is about the input: an unexpected exception becomes a 400
    (``param: file``) like any undecodable file, rather than a 500 that clients would retry
    or an S3 event Lambda would retry. Only running out of memory is the server's."""
    try:
        return decode_audio(source, max_seconds=max_seconds, too_long_hint=too_long_hint)
    except (ApiError, MemoryError):
        raise
    except Exception as exc:
        logger.warning("decoder failed on an input", exc_info=True)
        raise InvalidRequest(
            "The file could not be decoded as audio. Supported formats include flac, mp3, "
            "mp4, mpeg, mpga, m4a, ogg, opus, wav and webm.",
            param="file",
            code="invalid_audio",
        ) from exc


def reserve(services: Services, payer: Payer | None, unit: UnitOfWork, seconds: int) -> Charge:
    """Hold the cost of ``seconds`` of audio for ``unit`` (or find the unit's reservation
    from an earlier attempt). ``payer=None`` (operator batch work) holds nothing."""
    if payer is None:
        return Charge(services.wallets, unit, None)
    cost = cost_micro_usd(seconds, services.settings.price_micro_usd_per_minute)
    try:
        reservation = services.wallets.reserve(
            payer.wallet_id,
            entry_id=unit.reservation_id,
            unit=unit.name,
            cost=cost,
            metered=payer.metered,
            key_id=payer.key_id,
            request_id=unit.request_id,
            audio_seconds=seconds,
        )
    except WalletNotFound as exc:
        raise missing_wallet(payer.key_id, payer.wallet_id) from exc
    return Charge(services.wallets, unit, reservation)


def missing_wallet(key_id: str | None, wallet_id: str) -> AuthenticationFailed:
    """The 401 for a key whose wallet does not exist, logged for the operator to fix."""
    logger.error(
        "API key refers to a missing wallet: create the wallet or revoke the key",
        extra={"key_id": key_id, "wallet_id": wallet_id},
    )
    return AuthenticationFailed(
        "This API key has no wallet, so it cannot be used. Ask the operator who issued it "
        "to check the key.",
        code="wallet_not_found",
    )


def run_engine(
    services: Services, audio: DecodedAudio, request: TranscriptionRequest
) -> tuple[Transcript, Rendered, float]:
    """Transcribe and render: the transcript, the body, and the engine's milliseconds."""
    engine_started = time.perf_counter()
    try:
        transcript = services.engine.transcribe(audio.samples, request.options)
    except ModelUnavailable as exc:
        raise model_unavailable(exc) from exc
    engine_ms = (time.perf_counter() - engine_started) * 1000
    if request.task == "translate":
        rendered = render_translation(transcript, request.response_format)
    else:
        rendered = render(
            transcript, request.response_format, audio.whole_seconds, request.granularities
        )
    return transcript, rendered, engine_ms


def model_unavailable(exc: ModelUnavailable) -> ServiceUnavailable:
    """The 503 for a server whose model is missing or unreadable, logged for the operator."""
    logger.error("model unavailable", extra={"reason": str(exc)})
    return ServiceUnavailable(
        "The transcription model is not available on this server.",
        code="model_unavailable",
        headers={"Retry-After": "30"},
    )
