"""``POST /v1/audio/transcriptions``: OpenAI's multipart request, answered synchronously."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from handler.deps import LimitedCallerDep, MultipartDep, ServicesDep
from handler.pipeline import Payer, transcribe
from handler.transcript import MAX_PROMPT_CHARS, Granularity, ResponseFormat
from handler.validation import check_file_size, transcription_request

router = APIRouter(tags=["audio"])

ASYNC_HINT = "Use the asynchronous jobs API (POST /v1/audio/transcriptions/jobs) for long audio."


@router.post(
    "/v1/audio/transcriptions",
    responses={
        200: {
            "description": "The transcript in the requested format",
            "content": {
                "application/json": {},
                "text/plain": {},
                "application/x-subrip": {},
                "text/vtt": {},
            },
        },
    },
)
def create_transcription(
    request: Request,
    caller: LimitedCallerDep,
    _multipart: MultipartDep,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="The audio file (any format FFmpeg decodes).")],
    model: Annotated[str, Form(description="openai/whisper-tiny-en, or an alias: whisper-1.")],
    language: Annotated[str | None, Form(description="Only 'en'.")] = None,
    prompt: Annotated[
        str | None, Form(max_length=MAX_PROMPT_CHARS, description="Text to guide the style.")
    ] = None,
    response_format: Annotated[
        ResponseFormat,
        Form(
            description="How the transcript is written. Every format is decoded the same way "
            "and takes the same time; audio without speech gives an empty transcript."
        ),
    ] = "json",
    temperature: Annotated[float, Form(ge=0, le=1, allow_inf_nan=False)] = 0.0,
    timestamp_granularities: Annotated[
        list[Granularity] | None, Form(alias="timestamp_granularities[]")
    ] = None,
    timestamp_granularities_bare: Annotated[
        list[Granularity] | None, Form(alias="timestamp_granularities")
    ] = None,
) -> Response:
    """Transcribe an uploaded file, charging the caller's wallet per second of audio."""
    transcription = transcription_request(
        model=model,
        language=language,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=[*(timestamp_granularities or []), *(timestamp_granularities_bare or [])],
    )
    check_file_size(
        file.size,
        services.settings.max_upload_bytes,
        param="file",
        path="synchronous requests",
        hint=ASYNC_HINT,
    )
    outcome = transcribe(
        services,
        file.file,
        transcription,
        payer=Payer(caller.key_id, caller.wallet_id, metered=caller.plan == "payg"),
        request_id=request.state.request_id,
        max_seconds=services.settings.max_sync_audio_seconds,
        too_long_hint=ASYNC_HINT,
    )
    request.state.audio_seconds = round(outcome.duration, 3)
    request.state.billed_micro_usd = outcome.cost
    request.state.engine_ms = round(outcome.engine_ms, 1)
    headers = {
        **request.state.rate_limit_headers,
        "x-tinyscribe-billed-seconds": str(outcome.billed_seconds),
        "x-tinyscribe-cost-micro-usd": str(outcome.cost),
    }
    return Response(outcome.rendered.body, media_type=outcome.rendered.media_type, headers=headers)
