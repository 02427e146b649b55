"""``POST /v1/audio/translations``: OpenAI's translation request (speech to English text).

Whisper tiny.en is English-only, so this route serves English speech: it comes back as English
text, as whisper-1 does with English input. Speech in other languages is not supported.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from handler.deps import LimitedCallerDep, ServicesDep
from handler.idempotency import IdempotencyDep
from handler.routes.audio import RESPONSES, FormFields, form_fields, serve
from handler.transcript import MAX_PROMPT_CHARS, ResponseFormat
from handler.validation import TRANSLATION_FIELDS, translation_request

router = APIRouter(tags=["audio"])

DESCRIPTION = """Translate speech into English text, charging the caller's wallet per second
of audio.

This server runs Whisper tiny.en, an English-only model: English speech comes back as English
text (as whisper-1 does for English input). **Other languages are not supported**: their
speech is not translated. Takes OpenAI's translation fields (`file`, `model`, `prompt`,
`response_format`, `temperature`); any other field is refused as unknown
(`unknown_parameter`), `stream` included: OpenAI's translation request has no `stream`.
`json` is `{"text"}`; `verbose_json` has `task: "translate"`, `language: "english"`,
`duration`, `text` and `segments`."""

TranslationFormDep = Annotated[FormFields, Depends(form_fields(TRANSLATION_FIELDS))]


@router.post("/v1/audio/translations", responses=RESPONSES, description=DESCRIPTION)
def create_translation(
    request: Request,
    caller: LimitedCallerDep,
    _form: TranslationFormDep,
    idempotency: IdempotencyDep,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="English speech, in any format FFmpeg decodes.")],
    model: Annotated[str, Form(description="openai/whisper-tiny-en, or an alias: whisper-1.")],
    prompt: Annotated[
        str | None,
        Form(max_length=MAX_PROMPT_CHARS, description="English text to guide the style."),
    ] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float, Form(ge=0, le=1, allow_inf_nan=False)] = 0.0,
) -> Response:
    """Turn English speech into English text, charging the caller's wallet per second."""
    translation = translation_request(
        model=model, prompt=prompt, response_format=response_format, temperature=temperature
    )
    return serve(request, caller, services, idempotency, file, translation)
