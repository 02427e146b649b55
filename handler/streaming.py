"""``stream=true``: a transcription sent as OpenAI's server-sent events while it is decoded.

The wire format is OpenAI's transcription stream, as the official SDKs parse it (openai-python
``Stream``, openai-node ``Stream.fromSSEResponse``): one ``data: <JSON>`` line per event, each
followed by a blank line, no ``event:`` names. Both SDKs also accept a ``data: [DONE]`` line and
stop there, but neither needs one (they stop at the end of the body) and OpenAI's typed events
end with their own last event, so none is sent: a client that parses every ``data`` line as
JSON never meets it. The events, in order:

- ``{"type": "transcript.text.delta", "delta": "..."}``: each segment's text as soon as the
  model has decoded it (the first one without its leading space), so the deltas joined are the
  final text.
- ``{"type": "transcript.text.segment", "id": "seg_0", "start", "end", "text"}`` after each
  segment's delta, only when the client asked for ``timestamp_granularities[]=segment``:
  clients read ``event.delta`` on every event, so none is sent unasked. OpenAI sends this event
  for its diarizing model; here ``id`` is ``seg_`` and the segment's verbose_json id, times are
  seconds (2 decimals, as in verbose_json), and there is no ``speaker``: Whisper tiny.en cannot
  tell speakers apart, and a made-up label would claim it did.
- ``{"type": "transcript.text.done", "text": "...", "usage": {"type": "duration",
  "seconds": N}}``: the whole text (equal to the non-streamed ``json`` text of the same file
  under the same decoding) and the audio's whole seconds, as whisper-1 reports usage (OpenAI's
  streaming models report tokens there).
- or, if the transcription fails after the first event, ``{"type": "error", "error":
  {"message", "type", "param", "code"}}`` as the last event: OpenAI's transcription stream
  defines no error event, so this is the error envelope with a ``type``. Both SDKs raise their
  ``APIError`` for an event with an ``error`` object, with this envelope as its body.

Money and slots, as for any request (:mod:`handler.pipeline`): the audio is decoded, a
transcription slot taken and the cost reserved before the response starts, so bad input, 402,
413 and 503 are still statuses. The status line waits for the first event, so a failure before
the first segment (the model missing, the engine failing at once) is a proper status too,
refunded. After that, a failure refunds and ends the stream with the error event. The charge
is settled once the ``done`` event exists and before it is sent, in one transaction with the
complete event stream stored under the request's ``Idempotency-Key`` (a retry gets the stream
again, as one body, uncharged); a settlement that fails refunds and sends the error event
instead.

A client that hangs up does not stop the work: the engine runs to the end, the charge is
settled and the stream stored, exactly as on Lambda (where the function always runs to the end
whatever the client does). The client got part of the transcript and asked for all of it;
with an ``Idempotency-Key`` its retry gets the whole of it without a second charge.

The engine runs on a thread of its own for each stream, which owns the slot and the charge
once started (released, settled or refunded on every exit) and hands events to the response
body through a queue. A thread that ends also takes its OpenMP team with it
(:func:`handler.engine.on_short_lived_thread` says why that matters).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import anyio.to_thread
from starlette.responses import Response, StreamingResponse

from handler.audio import DecodedAudio
from handler.billing import billable_seconds
from handler.context import RequestContext
from handler.engine import ModelUnavailable
from handler.errors import ApiError, ServerError
from handler.formats import usage
from handler.observability import logger
from handler.pipeline import (
    Charge,
    Payer,
    TranscriptionRequest,
    UnitOfWork,
    decode_input,
    model_unavailable,
    reserve,
)
from handler.services import Services
from handler.stores.dynamo import TransactItem
from handler.transcript import Segment, Transcript

MEDIA_TYPE = "text/event-stream"
STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # a reverse proxy (nginx) must pass each event on at once
}

# ---------------------------------------------------------------------------- the events


def delta_event(delta: str) -> dict[str, Any]:
    """``transcript.text.delta``: text added to the transcript."""
    return {"type": "transcript.text.delta", "delta": delta}


def segment_event(segment: Segment) -> dict[str, Any]:
    """``transcript.text.segment`` for a decoded segment (no ``speaker``: no diarization)."""
    return {
        "type": "transcript.text.segment",
        "id": f"seg_{segment.id}",
        "start": round(segment.start, 2),
        "end": round(segment.end, 2),
        "text": segment.text,
    }


def done_event(text: str, usage_seconds: int) -> dict[str, Any]:
    """``transcript.text.done``: the whole text, and the audio's seconds as ``usage``."""
    return {"type": "transcript.text.done", "text": text, "usage": usage(usage_seconds)}


def error_event(error: ApiError) -> dict[str, Any]:
    """The last event of a stream that failed: the error envelope, with a ``type``."""
    return {"type": "error", **error.envelope()}


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event: a ``data`` line of JSON (which never holds a raw newline)."""
    return b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"


# ---------------------------------------------------------------------------- the stream

Settlement = Callable[[Response], tuple[TransactItem, ...]]
"""Given the complete stream as a response, what to write in the settlement's transaction
(:meth:`handler.idempotency.Idempotency.completion`)."""


@dataclass(frozen=True)
class _Failed:
    """The stream failed before its first event: the route raises ``error`` instead."""

    error: Exception


_END = object()


class EventStream:
    """One transcription decoded on its own thread, its events queued for the response body.

    Created with the slot taken and the cost reserved; from :meth:`start` on, its thread
    releases the slot and settles or refunds the charge, whatever happens to the client.
    """

    def __init__(
        self,
        services: Services,
        audio: DecodedAudio,
        request: TranscriptionRequest,
        charge: Charge,
        *,
        headers: dict[str, str],
        settlement: Settlement,
        context: RequestContext,
    ) -> None:
        self.services = services
        self.audio = audio
        self.request = request
        self.charge = charge
        self.headers = headers
        self.settlement = settlement
        self.context = context
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._sent: list[bytes] = []
        self._text_started = False
        self._thread = threading.Thread(target=self._run, name="transcription-stream")

    def start(self) -> None:
        """Start decoding (the thread owns the slot and the charge from here)."""
        self._thread.start()

    def first(self) -> bytes:
        """The first event, once the engine has produced it; raises what failed before it
        (already refunded, the slot already given back)."""
        item = self._queue.get()
        if isinstance(item, _Failed):
            raise item.error
        assert isinstance(item, bytes)
        return item

    async def body(self, first: bytes) -> AsyncIterator[bytes]:
        """The response body: ``first``, then each event as the thread queues it. Cancelled
        when the client hangs up; the thread carries on (see the module's docstring)."""
        yield first
        while True:
            item = await anyio.to_thread.run_sync(self._queue.get, abandon_on_cancel=True)
            if item is _END:
                return
            assert isinstance(item, bytes)
            yield item

    # ----------------------------------------------------------------------- the thread

    def _run(self) -> None:
        final: bytes | _Failed | None = None
        try:
            try:
                final = self._transcribe()
            except Exception as exc:
                final = self._failed(exc)
            finally:
                # Before the last event: a client that sends its next request on `done` finds
                # the slot free and this charge settled.
                self.services.slots.release()
        finally:
            if final is not None:
                self._queue.put(final)
            self._queue.put(_END)

    def _transcribe(self) -> bytes:
        """Queue each segment's events; settle; return the ``done`` event (not yet queued)."""
        # What the request's log line and metrics report (a failure sets the charge to 0).
        self.context.audio_seconds = round(self.audio.duration, 3)
        self.context.billed_micro_usd = self.charge.amount
        with self.charge.refunded_on_error():
            started = time.perf_counter()
            segments: list[Segment] = []
            try:
                for segment in self.services.engine.stream(
                    self.audio.samples, self.request.options
                ):
                    self._emit_segment(segment)
                    segments.append(segment)
            except ModelUnavailable as exc:
                raise model_unavailable(exc) from exc
            self.context.engine_ms = round((time.perf_counter() - started) * 1000, 1)
            text = Transcript(self.audio.duration, segments).text
            done = sse(done_event(text, self.audio.whole_seconds))
            complete = Response(
                b"".join(self._sent) + done, media_type=MEDIA_TYPE, headers=self.headers
            )
            self.charge.settle(*self.settlement(complete))  # charged once `done` exists
            return done

    def _emit_segment(self, segment: Segment) -> None:
        # The transcript's text is stripped: so is the first delta that carries any text.
        delta = segment.text if self._text_started else segment.text.lstrip()
        if delta:
            self._text_started = True
            self._emit(sse(delta_event(delta)))
        if self.request.stream_segments:
            self._emit(sse(segment_event(segment)))

    def _emit(self, event: bytes) -> None:
        self._sent.append(event)
        self._queue.put(event)

    def _failed(self, exc: Exception) -> bytes | _Failed:
        """What ends a failed stream (the charge is refunded by now, or left to
        reconciliation when the database is down): before the first event, the failure for
        the route to raise as a status; after it, the error event."""
        self.context.billed_micro_usd = 0
        if not self._sent:
            return _Failed(exc)
        if isinstance(exc, ApiError):
            error = exc
        else:
            logger.exception(
                "transcription stream failed after its first event",
                extra={"request_id": self.charge.unit.request_id},
            )
            error = ServerError(
                "The server had an error while transcribing, so the stream ends here and "
                "nothing is charged. Retry the request, and quote request id "
                f"{self.charge.unit.request_id} if the error persists."
            )
        self.context.error_type = error.type
        return sse(error_event(error))


def respond(
    services: Services,
    source: BinaryIO,
    request: TranscriptionRequest,
    *,
    payer: Payer,
    unit: UnitOfWork,
    max_seconds: float,
    too_long_hint: str,
    settlement: Settlement,
    context: RequestContext,
) -> StreamingResponse:
    """Decode, take a slot, reserve, start the engine and answer once the first event exists.

    Raises the 4xx of bad input before any reservation, 402 or 503 (busy, database down)
    before any work, and whatever failed before the first event (refunded). ``context`` gets
    what the request's log line reports (the middleware sends its rate-limit headers)."""
    audio = decode_input(source, max_seconds=max_seconds, too_long_hint=too_long_hint)
    seconds = billable_seconds(audio.duration, services.settings.billing_increment_seconds)
    services.slots.acquire()  # a busy server answers 503 before touching the wallet
    try:
        charge = reserve(services, payer, unit, seconds)
        response_headers = {
            **STREAM_HEADERS,
            "x-tinyscribe-billed-seconds": str(seconds),
            "x-tinyscribe-cost-micro-usd": str(charge.amount),
        }
        events = EventStream(
            services,
            audio,
            request,
            charge,
            headers=response_headers,
            settlement=settlement,
            context=context,
        )
        with charge.refunded_on_error():
            events.start()
    except BaseException:
        services.slots.release()  # not started: the slot is still this thread's to give back
        raise
    first = events.first()
    return StreamingResponse(events.body(first), media_type=MEDIA_TYPE, headers=response_headers)
