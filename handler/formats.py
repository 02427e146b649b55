"""Pure renderers from a :class:`Transcript` to OpenAI's five response formats, for the
transcriptions endpoint and (in OpenAI's smaller shapes) the translations endpoint."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from handler.transcript import SEGMENT_TIMES, Granularity, ResponseFormat, Segment, Transcript

# OpenAI's verbose_json names the language in full.
LANGUAGE_NAMES = {"en": "english"}


@dataclass(frozen=True)
class Rendered:
    """A response body and its media type."""

    body: str
    media_type: str


def usage(seconds: int) -> dict[str, Any]:
    """OpenAI's ``usage`` object for duration-billed models."""
    return {"type": "duration", "seconds": seconds}


def as_json(transcript: Transcript, usage_seconds: int) -> dict[str, Any]:
    """The default ``json`` shape: text, language, duration and usage."""
    return {
        "text": transcript.text,
        "language": transcript.language,
        "duration": round(transcript.duration, 3),
        "usage": usage(usage_seconds),
    }


def as_verbose_json(
    transcript: Transcript, usage_seconds: int, granularities: Collection[Granularity]
) -> dict[str, Any]:
    """``verbose_json``: segments always (as OpenAI), words when asked for."""
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": LANGUAGE_NAMES.get(transcript.language, transcript.language),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "segments": [_segment_json(segment) for segment in transcript.segments],
    }
    if "word" in granularities:
        body["words"] = [
            {"word": word.word.strip(), "start": round(word.start, 2), "end": round(word.end, 2)}
            for segment in transcript.segments
            for word in segment.words
        ]
    body["usage"] = usage(usage_seconds)
    return body


def _segment_json(segment: Segment) -> dict[str, Any]:
    return {
        "id": segment.id,
        "seek": segment.seek,
        "start": round(segment.start, 2),
        "end": round(segment.end, 2),
        "text": segment.text,
        "tokens": segment.tokens,
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }


def format_timestamp(seconds: float, decimal_marker: str) -> str:
    """``HH:MM:SS,mmm`` (SRT) or ``HH:MM:SS.mmm`` (VTT), computed from whole milliseconds."""
    milliseconds = max(0, round(seconds * 1000))
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{milliseconds:03d}"


def as_srt(transcript: Transcript) -> str:
    """SubRip: numbered cues from 1, comma before milliseconds."""
    cues = [
        f"{number}\n{format_timestamp(s.start, ',')} --> {format_timestamp(s.end, ',')}\n"
        f"{s.text.strip()}\n"
        for number, s in enumerate(transcript.segments, start=1)
    ]
    return "\n".join(cues)


def as_vtt(transcript: Transcript) -> str:
    """WebVTT: a header, then cues with a dot before milliseconds."""
    cues = [
        f"{format_timestamp(s.start, '.')} --> {format_timestamp(s.end, '.')}\n{s.text.strip()}\n"
        for s in transcript.segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def render(
    transcript: Transcript,
    response_format: ResponseFormat,
    usage_seconds: int,
    granularities: Collection[Granularity] = SEGMENT_TIMES,
) -> Rendered:
    """The body and media type for ``response_format``."""
    if response_format == "json":
        return Rendered(_dumps(as_json(transcript, usage_seconds)), "application/json")
    if response_format == "verbose_json":
        body = as_verbose_json(transcript, usage_seconds, granularities)
        return Rendered(_dumps(body), "application/json")
    if response_format == "text":
        return Rendered(transcript.text + "\n", "text/plain; charset=utf-8")
    if response_format == "srt":
        return Rendered(as_srt(transcript), "application/x-subrip; charset=utf-8")
    return Rendered(as_vtt(transcript), "text/vtt; charset=utf-8")


def render_translation(transcript: Transcript, response_format: ResponseFormat) -> Rendered:
    """The body and media type of ``POST /v1/audio/translations`` (OpenAI's
    ``CreateTranslationResponseJson`` / ``...VerboseJson``): ``json`` is ``{"text"}``;
    ``verbose_json`` has ``task: "translate"``, ``language: "english"`` (the output's language),
    ``duration``, ``text`` and ``segments``, without words or usage; text, srt and vtt are the
    transcription's."""
    if response_format == "json":
        return Rendered(_dumps({"text": transcript.text}), "application/json")
    if response_format == "verbose_json":
        body = {
            "task": "translate",
            "language": LANGUAGE_NAMES["en"],
            "duration": round(transcript.duration, 3),
            "text": transcript.text,
            "segments": [_segment_json(segment) for segment in transcript.segments],
        }
        return Rendered(_dumps(body), "application/json")
    return render(transcript, response_format, usage_seconds=0)


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False)
