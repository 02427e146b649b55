"""Checks shared by the synchronous route and the jobs API, turning fields into a request."""

from __future__ import annotations

from collections.abc import Iterable

from handler.errors import InvalidRequest, PayloadTooLarge, shown
from handler.models import resolve_model
from handler.pipeline import TranscriptionRequest
from handler.transcript import TIMED_FORMATS, Granularity, ResponseFormat, TranscribeOptions


def validate_language(language: str | None) -> None:
    """tiny.en only speaks English."""
    if language not in (None, "", "en"):
        raise InvalidRequest(
            f"Unsupported language '{shown(language)}': this model transcribes English only "
            "('en').",
            param="language",
            code="unsupported_language",
        )


def granularities_for(
    response_format: ResponseFormat, asked: Iterable[Granularity]
) -> tuple[Granularity, ...]:
    """Timestamp granularities, accepted only with ``verbose_json`` (as OpenAI)."""
    unique = tuple(dict.fromkeys(asked))
    if unique and response_format != "verbose_json":
        raise InvalidRequest(
            "timestamp_granularities requires response_format 'verbose_json'.",
            param="timestamp_granularities",
        )
    return unique or ("segment",)


def transcription_request(
    *,
    model: str,
    language: str | None,
    prompt: str | None,
    response_format: ResponseFormat,
    temperature: float,
    granularities: Iterable[Granularity],
) -> TranscriptionRequest:
    """Validate the client's fields (404 for the model, 400 otherwise) into a request."""
    resolve_model(model)
    validate_language(language)
    chosen = granularities_for(response_format, granularities)
    return TranscriptionRequest(
        options=TranscribeOptions(
            initial_prompt=prompt or None,
            temperature=temperature,
            word_timestamps="word" in chosen,
            segment_timestamps=response_format in TIMED_FORMATS,
        ),
        response_format=response_format,
        granularities=chosen,
    )


def check_file_size(size: int | None, limit: int, *, param: str, path: str, hint: str = "") -> None:
    """413 for a file over ``limit`` bytes (``path`` names the route's limit in the message)."""
    if size is not None and size > limit:
        raise PayloadTooLarge(
            f"The file is over the {limit}-byte limit of {path}. {hint}".strip(),
            param=param,
            code="file_too_large",
        )
