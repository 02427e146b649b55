"""Checks shared by the audio routes and the jobs API, turning fields into a request.

Every field OpenAI's spec defines for an endpoint is either honoured or refused here with a
400 that names it (``param``) and says why; fields in no spec are refused as unknown
(OpenAI's own endpoint ignores them, so a client would believe it got what it asked for).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import fields, replace
from typing import Annotated, Literal, TypedDict

from pydantic import BeforeValidator, TypeAdapter, ValidationError

from handler.errors import InvalidRequest, PayloadTooLarge, shown
from handler.models import resolve_model
from handler.pipeline import TranscriptionRequest
from handler.transcript import (
    SEGMENT_TIMES,
    ChunkingStrategy,
    Granularity,
    ResponseFormat,
    TranscribeOptions,
    VadParameters,
    vad_options,
)

RequestedFormat = Literal["json", "verbose_json", "text", "srt", "vtt", "diarized_json"]


class TranscriptionFields(TypedDict):
    """A transcription's fields as the client sent them, before :func:`transcription_request`
    validates them (the jobs API keeps them with the job, to validate again when it runs)."""

    model: str
    language: str | None
    prompt: str | None
    response_format: RequestedFormat
    temperature: float
    granularities: list[Granularity]


"""The response formats OpenAI's transcription spec lists; ``diarized_json`` is refused."""


def form_boolean(value: object) -> object:
    """A multipart boolean as the SDKs send it: ``true`` or ``false`` (any case). Pydantic's
    lax reading would also take ``yes``, ``on``, ``1``, ``y``... and a client that meant
    something else would be streamed (and charged) without asking; anything but the two words
    is refused (a 400 naming the field). Booleans pass through (JSON bodies)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("expected true or false")


FormBoolean = Annotated[bool, BeforeValidator(form_boolean)]
"""A form field that is ``true`` or ``false`` and nothing else (see :func:`form_boolean`)."""

TRANSCRIPTION_FIELDS = frozenset(
    {
        "file", "model", "language", "languages", "prompt", "response_format", "temperature",
        "timestamp_granularities", "chunking_strategy", "include", "keywords",
        "known_speaker_names", "known_speaker_references", "stream",
    }
)  # fmt: skip
"""``CreateTranscriptionRequest``'s properties in OpenAI's OpenAPI spec."""
TRANSLATION_FIELDS = frozenset({"file", "model", "prompt", "response_format", "temperature"})
"""``CreateTranslationRequest``'s properties in OpenAI's OpenAPI spec (it has no ``stream``, so
``stream`` on a translation is refused as unknown, like any field outside the spec)."""
STREAM_FORMATS: frozenset[ResponseFormat] = frozenset({"json", "text"})
"""Formats a transcription may stream (``stream=true``): OpenAI's events carry text; subtitles
and verbose_json are sent whole."""
LIST_FIELDS = frozenset(
    {
        "languages", "timestamp_granularities", "include", "keywords",
        "known_speaker_names", "known_speaker_references",
    }
)  # fmt: skip
"""The array fields of the specs: the only ones a form may repeat."""
REQUIRED_FIELDS = ("file", "model")
"""Required by both specs. A request missing one is told so first: audio sent under another
name (``audio``) gets "file is required", not "unknown parameter 'audio'"."""

REFUSED_FIELDS: Mapping[str, str] = {
    "include": "per-token log-probabilities ('logprobs') are not exposed by this server's "
    "engine (OpenAI returns them only for its gpt-4o transcription models); verbose_json "
    "gives each segment's avg_logprob",
    "keywords": "keyword biasing is a gpt-transcribe feature that Whisper tiny.en does not "
    "have here; put the words in 'prompt' instead",
    "known_speaker_names": "speaker identification (diarization) is not something Whisper "
    "tiny.en can do",
    "known_speaker_references": "speaker identification (diarization) is not something "
    "Whisper tiny.en can do",
}
"""Fields of OpenAI's transcription spec this model cannot honour, and why."""

_VAD_PARAMETERS = TypeAdapter(VadParameters)
_VAD_KEYS = frozenset({"type", *(f.name for f in fields(VadParameters))})


def field_name(key: str) -> str:
    """The spec field a multipart key belongs to: ``include[]`` and ``chunking_strategy[type]``
    belong to ``include`` and ``chunking_strategy`` (the SDKs' bracket forms)."""
    return key.split("[", 1)[0]


def refuse_unknown_fields(keys: Iterable[str], known: Collection[str]) -> None:
    """400 ``unknown_parameter`` naming the first key that belongs to no field in ``known``."""
    for key in keys:
        if field_name(key) not in known:
            raise InvalidRequest(
                f"Unknown parameter: '{shown(key)}'. This endpoint takes "
                f"{', '.join(sorted(known))}; other fields are refused rather than ignored.",
                param=shown(key),
                code="unknown_parameter",
            )


def refuse_repeated_fields(keys: Iterable[str]) -> None:
    """400 ``duplicate_parameter`` for a field other than a list sent more than once (one of
    the values would otherwise be dropped without a word)."""
    for key, count in Counter(keys).items():
        if count > 1 and field_name(key) not in LIST_FIELDS:
            raise InvalidRequest(
                f"'{shown(key)}' was sent {count} times: send it once.",
                param=shown(key),
                code="duplicate_parameter",
            )


def refuse_unsupported_fields(sent: Collection[str]) -> None:
    """400 ``unsupported_parameter`` for the first field of :data:`REFUSED_FIELDS` in ``sent``
    (field names, brackets removed)."""
    for name, why in REFUSED_FIELDS.items():
        if name in sent:
            raise InvalidRequest(
                f"'{name}' is not supported: {why}.", param=name, code="unsupported_parameter"
            )


def validate_language(language: str | None) -> None:
    """tiny.en only speaks English."""
    if language not in (None, "", "en"):
        raise InvalidRequest(
            f"Unsupported language '{shown(language)}': this model transcribes English only "
            "('en').",
            param="language",
            code="unsupported_language",
        )


def validate_languages(languages: Iterable[str]) -> None:
    """``languages[]`` (the possible languages of the audio) may only name English."""
    for language in languages:
        if language != "en":
            raise InvalidRequest(
                f"Unsupported language '{shown(language)}' in languages: this model "
                "transcribes English only ('en').",
                param="languages",
                code="unsupported_language",
            )


def check_stream(response_format: ResponseFormat, granularities: Iterable[Granularity]) -> None:
    """``stream=true`` is for ``json`` and ``text`` (400 on ``stream`` otherwise), with at most
    ``segment`` times (its ``transcript.text.segment`` events; 400 for ``word``)."""
    if response_format not in STREAM_FORMATS:
        raise InvalidRequest(
            f"stream=true works with response_format 'json' or 'text', not "
            f"'{response_format}': the streamed events carry text, and srt, vtt and "
            "verbose_json are sent whole. Leave stream out for this format.",
            param="stream",
            code="unsupported_value",
        )
    if "word" in granularities:
        raise InvalidRequest(
            "Word times are not streamed: with stream=true, timestamp_granularities may only "
            "be 'segment' (one transcript.text.segment event per segment). For word times, ask "
            "for response_format 'verbose_json' without stream.",
            param="timestamp_granularities",
            code="unsupported_value",
        )


def granularities_for(
    response_format: ResponseFormat, asked: Iterable[Granularity], *, stream: bool = False
) -> tuple[Granularity, ...]:
    """Timestamp granularities, accepted only with ``verbose_json`` (as OpenAI), or as
    ``segment`` with ``stream`` (see :func:`check_stream`)."""
    unique = tuple(dict.fromkeys(asked))
    if stream:
        check_stream(response_format, unique)
        return unique or SEGMENT_TIMES
    if unique and response_format != "verbose_json":
        raise InvalidRequest(
            "timestamp_granularities requires response_format 'verbose_json'.",
            param="timestamp_granularities",
        )
    return unique or SEGMENT_TIMES


def supported_format(response_format: RequestedFormat) -> ResponseFormat:
    """The format, unless it is one this model cannot produce (400 on ``response_format``)."""
    if response_format == "diarized_json":
        raise InvalidRequest(
            "response_format 'diarized_json' needs speaker diarization, which Whisper tiny.en "
            "cannot do. Use json, verbose_json, text, srt or vtt.",
            param="response_format",
            code="unsupported_value",
        )
    return response_format


def chunking_strategy(raw: str | None, nested: Mapping[str, str]) -> ChunkingStrategy | None:
    """OpenAI's ``chunking_strategy`` from a multipart form, in any of the shapes clients send:
    ``auto``; the ``server_vad`` object as a JSON string (curl, OpenAI's docs); or the object
    spread over ``chunking_strategy[type]``, ``chunking_strategy[threshold]``... fields (the
    Python and Node SDKs). ``nested`` maps those bracketed sub-keys to their values.

    Returns None when absent (or ``null``), ``"auto"``, or validated :class:`VadParameters`;
    anything else is a 400 on ``chunking_strategy`` that says what is wrong.
    """
    if raw is not None and nested:
        raise _bad_chunking("send it once, either as one field or as bracketed fields")
    if nested:
        return _server_vad(dict(nested))
    if raw is None or raw.strip() in ("", "null"):
        return None
    if raw.strip() == "auto":
        return "auto"
    try:
        value = json.loads(raw)
    except ValueError:
        raise _bad_chunking(f"'{shown(raw)}' is neither 'auto' nor a JSON object") from None
    if value == "auto":
        return "auto"
    if not isinstance(value, dict):
        raise _bad_chunking("expected 'auto' or a server_vad object")
    return _server_vad(value)


def _server_vad(value: dict[str, object]) -> VadParameters:
    if value.get("type") != "server_vad":
        raise _bad_chunking('an object needs "type": "server_vad"')
    unknown = sorted(set(value) - _VAD_KEYS)
    if unknown:
        raise _bad_chunking(f"unknown key '{shown(unknown[0])}'")
    settings = {key: item for key, item in value.items() if key != "type"}
    for key, item in settings.items():
        if isinstance(item, bool) or item is None:
            raise _bad_chunking(f"'{key}' must be a number")
    try:
        return _VAD_PARAMETERS.validate_python(settings)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise _bad_chunking(f"'{where}': {error['msg']}") from None


def _bad_chunking(why: str) -> InvalidRequest:
    return InvalidRequest(
        f'Invalid chunking_strategy: {why}. Send \'auto\' or {{"type": "server_vad", '
        '"prefix_padding_ms": 0-10000, "silence_duration_ms": 0-10000, "threshold": 0-1}.',
        param="chunking_strategy",
        code="invalid_value",
    )


def transcription_request(
    *,
    model: str,
    language: str | None,
    prompt: str | None,
    response_format: RequestedFormat,
    temperature: float,
    granularities: Iterable[Granularity],
    languages: Iterable[str] = (),
    chunking: ChunkingStrategy | None = None,
    stream: bool = False,
) -> TranscriptionRequest:
    """Validate the client's fields (404 for the model, 400 otherwise) into a request."""
    resolve_model(model)
    validate_language(language)
    validate_languages(languages)
    fmt = supported_format(response_format)
    asked = tuple(granularities)
    chosen = granularities_for(fmt, asked, stream=stream)
    return TranscriptionRequest(
        options=TranscribeOptions(
            initial_prompt=prompt or None,
            temperature=temperature,
            word_timestamps="word" in chosen,
            vad=vad_options(chunking),
        ),
        response_format=fmt,
        granularities=chosen,
        stream=stream,
        stream_segments=stream and "segment" in asked,
    )


def translation_request(
    *, model: str, prompt: str | None, response_format: ResponseFormat, temperature: float
) -> TranscriptionRequest:
    """Validate a translation's fields into a request. tiny.en is English-only: English speech
    comes back as English text (what whisper-1 does with English input), so the model runs
    exactly as for a transcription; only the rendering differs."""
    request = transcription_request(
        model=model,
        language=None,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=(),
    )
    return replace(request, task="translate")


def check_file_size(size: int | None, limit: int, *, param: str, path: str, hint: str = "") -> None:
    """413 for a file over ``limit`` bytes (``path`` names the route's limit in the message)."""
    if size is not None and size > limit:
        raise PayloadTooLarge(
            f"The file is over the {limit}-byte limit of {path}. {hint}".strip(),
            param=param,
            code="file_too_large",
        )
