"""What the two multipart audio routes (transcriptions, translations) share.

Both go the same way: form fields -> a validated :class:`TranscriptionRequest` (each route's
own fields, :mod:`handler.validation`; a translation only renders differently) ->
:func:`serve` (size check, the pipeline charged per unit of work, the response stored under
the ``Idempotency-Key`` when the client sends one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from fastapi import Request, UploadFile
from fastapi.responses import Response
from starlette.datastructures import FormData

from handler import pipeline, streaming
from handler.context import request_context
from handler.deps import MultipartDep
from handler.idempotency import Idempotency
from handler.pipeline import TranscriptionRequest
from handler.services import Services
from handler.stores.keys import ApiKey
from handler.validation import (
    REQUIRED_FIELDS,
    check_file_size,
    field_name,
    refuse_repeated_fields,
    refuse_unknown_fields,
    refuse_unsupported_fields,
)

ASYNC_HINT = "Use the asynchronous jobs API (POST /v1/audio/transcriptions/jobs) for long audio."

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The text in the requested format",
        "content": {
            "application/json": {},
            "text/plain": {},
            "application/x-subrip": {},
            "text/vtt": {},
        },
    },
}
"""OpenAPI: the media types of the five response formats."""

STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The text in the requested format; with `stream=true`, server-sent "
        "events (`transcript.text.delta`, `transcript.text.segment` when asked for, then "
        "`transcript.text.done` or `error`)",
        "content": {**RESPONSES[200]["content"], "text/event-stream": {}},
    },
}
"""OpenAPI: the transcription route's media types, the event stream included."""


@dataclass(frozen=True)
class FormFields:
    """The multipart form as sent, for what FastAPI's ``Form`` parameters cannot read: an
    object spread over bracketed sub-keys (``chunking_strategy[type]``)."""

    form: FormData

    @property
    def names(self) -> set[str]:
        """The spec fields present (``include[]`` counts as ``include``)."""
        return {field_name(key) for key in self.form}

    def nested(self, name: str) -> dict[str, str]:
        """``{"type": "server_vad", ...}`` from ``name[type]=server_vad`` and its siblings."""
        prefix = f"{name}["
        return {
            key[len(prefix) : -1]: value
            for key, value in self.form.multi_items()
            if key.startswith(prefix) and key.endswith("]") and isinstance(value, str)
        }


def form_fields(known: Collection[str]) -> Callable[..., Awaitable[FormFields]]:
    """A dependency that refuses, before the route runs, a body that is not one multipart
    upload (:data:`MultipartDep`), a field that is in no spec for the route (``known``), a
    field that is not a list sent twice, and a field of the spec this model cannot honour. A
    request without ``file`` or ``model`` is left to FastAPI's validation, which names the
    missing field."""

    async def dependency(request: Request, _multipart: MultipartDep) -> FormFields:
        fields = FormFields(await request.form())  # parsed once by FastAPI: no second read
        if not all(name in fields.form for name in REQUIRED_FIELDS):
            return fields
        refuse_unknown_fields(fields.form.keys(), known)
        refuse_repeated_fields(key for key, _ in fields.form.multi_items())
        refuse_unsupported_fields(fields.names)
        return fields

    return dependency


def serve(
    request: Request,
    caller: ApiKey,
    services: Services,
    idempotency: Idempotency,
    file: UploadFile,
    transcription: TranscriptionRequest,
) -> Response:
    """Answer a validated audio request: 413 for an oversize file, then the pipeline (decode,
    reserve, transcribe, render; refund on failure) charging ``caller``'s wallet per second of
    audio once the response exists (stored under the ``Idempotency-Key`` in the same
    transaction when there is one), with the billing headers (the middleware adds the
    rate-limit headers). A request with
    ``stream`` gets the events of :mod:`handler.streaming` as they are decoded."""
    check_file_size(
        file.size,
        services.settings.max_upload_bytes,
        param="file",
        path="synchronous requests",
        hint=ASYNC_HINT,
    )
    context = request_context(request)
    payer = pipeline.Payer(caller.key_id, caller.wallet_id, metered=caller.metered)
    if transcription.stream:
        stream = streaming.respond(
            services,
            file.file,
            transcription,
            payer=payer,
            unit=idempotency.unit(),
            max_seconds=services.settings.max_sync_audio_seconds,
            too_long_hint=ASYNC_HINT,
            settlement=idempotency.completion,  # the whole stream, stored as it is settled
            context=context,
        )
        idempotency.handed_over()
        return stream
    with pipeline.transcription(
        services,
        file.file,
        transcription,
        payer=payer,
        unit=idempotency.unit(),
        max_seconds=services.settings.max_sync_audio_seconds,
        too_long_hint=ASYNC_HINT,
    ) as run:
        outcome = run.outcome
        context.audio_seconds = round(outcome.duration, 3)
        context.billed_micro_usd = outcome.cost
        context.engine_ms = round(outcome.engine_ms, 1)
        headers = {
            "x-tinyscribe-billed-seconds": str(outcome.billed_seconds),
            "x-tinyscribe-cost-micro-usd": str(outcome.cost),
        }
        response = Response(
            outcome.rendered.body, media_type=outcome.rendered.media_type, headers=headers
        )
        run.settle(*idempotency.completion(response))  # charged once the response exists
    return response
