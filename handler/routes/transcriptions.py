"""``POST /v1/audio/transcriptions``: OpenAI's multipart request, answered synchronously."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from handler.deps import LimitedCallerDep, ServicesDep
from handler.idempotency import IdempotencyDep
from handler.routes.audio import STREAM_RESPONSES, FormFields, form_fields, serve
from handler.transcript import MAX_PROMPT_CHARS, Granularity
from handler.validation import (
    TRANSCRIPTION_FIELDS,
    FormBoolean,
    RequestedFormat,
    chunking_strategy,
    transcription_request,
)

router = APIRouter(tags=["audio"])

DESCRIPTION = """Transcribe English speech, charging the caller's wallet per second of audio.

With `stream=true` (`response_format` `json` or `text`) the answer is `text/event-stream`:
OpenAI's transcription events, one `data: {...}` line each, sent as each segment is decoded:
`{"type": "transcript.text.delta", "delta"}` per segment; with
`timestamp_granularities[]=segment` also `{"type": "transcript.text.segment", "id": "seg_0",
"start", "end", "text"}` after it (no `speaker`: Whisper tiny.en does not diarize); then
`{"type": "transcript.text.done", "text", "usage": {"type": "duration", "seconds"}}`. A failure
after the first event ends the stream with `{"type": "error", "error": {"message", "type",
"param", "code"}}` and nothing is charged. Bad input, 402, 413, 429 and 503 are statuses as
usual. `stream=true` with `srt`, `vtt` or `verbose_json`, or with word times, is a 400. Behind
API Gateway (Lambda) the events arrive all at once, when the transcription is complete.

Every field of OpenAI's transcription request is honoured or refused with a 400 naming it:
`include[]` (per-token logprobs are not exposed), `keywords[]`,
`known_speaker_names[]`, `known_speaker_references[]` and `response_format=diarized_json`
(no diarization) are refused. Fields in no spec are refused as unknown (`unknown_parameter`).
List fields are read under both `name[]` and `name`; `chunking_strategy` also as the SDKs'
`chunking_strategy[type]`, `chunking_strategy[threshold]`... fields."""

TranscriptionFormDep = Annotated[FormFields, Depends(form_fields(TRANSCRIPTION_FIELDS))]


@router.post("/v1/audio/transcriptions", responses=STREAM_RESPONSES, description=DESCRIPTION)
def create_transcription(
    request: Request,
    caller: LimitedCallerDep,
    form: TranscriptionFormDep,
    idempotency: IdempotencyDep,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="The audio file (any format FFmpeg decodes).")],
    model: Annotated[str, Form(description="openai/whisper-tiny-en, or an alias: whisper-1.")],
    language: Annotated[str | None, Form(description="Only 'en'.")] = None,
    languages: Annotated[
        list[str] | None,
        Form(alias="languages[]", description="Possible languages of the audio: only 'en'."),
    ] = None,
    languages_bare: Annotated[list[str] | None, Form(alias="languages")] = None,
    prompt: Annotated[
        str | None, Form(max_length=MAX_PROMPT_CHARS, description="Text to guide the style.")
    ] = None,
    response_format: Annotated[
        RequestedFormat,
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
    chunking_strategy_field: Annotated[
        str | None,
        Form(
            alias="chunking_strategy",
            description='Voice activity detection before decoding: "auto" (faster-whisper\'s '
            'Silero VAD with its own settings) or a JSON object {"type": "server_vad", '
            '"prefix_padding_ms": 300, "silence_duration_ms": 200, "threshold": 0.5} '
            "(OpenAI's defaults; ms from 0 to 10000, threshold from 0 to 1). Only detected "
            "speech is decoded; billing still counts every second of the file.",
        ),
    ] = None,
    stream: Annotated[
        FormBoolean,
        Form(
            description="`true` or `false`. Send the text as server-sent events while it is "
            "decoded (transcript.text.delta, then transcript.text.done), with response_format "
            "json or text; add timestamp_granularities[]=segment for transcript.text.segment "
            "events."
        ),
    ] = False,
) -> Response:
    """Transcribe an uploaded file, charging the caller's wallet per second of audio."""
    transcription = transcription_request(
        model=model,
        language=language,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=[*(timestamp_granularities or []), *(timestamp_granularities_bare or [])],
        languages=[*(languages or []), *(languages_bare or [])],
        chunking=chunking_strategy(chunking_strategy_field, form.nested("chunking_strategy")),
        stream=stream,
    )
    return serve(request, caller, services, idempotency, file, transcription)
