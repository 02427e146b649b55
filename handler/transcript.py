"""Plain data passed between the engine, the renderers and the billing: no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

ResponseFormat = Literal["json", "verbose_json", "text", "srt", "vtt"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json", "verbose_json", "text", "srt", "vtt")
Granularity = Literal["segment", "word"]
SEGMENT_TIMES: tuple[Granularity, ...] = ("segment",)
"""The timestamps of a transcript when the client asks for none: segments'."""
Task = Literal["transcribe", "translate"]
"""Whisper's name for what a request asks: the transcript, or its English translation."""
# Whisper reads at most 224 prompt tokens; 4,000 characters is ample and bounds the work.
MAX_PROMPT_CHARS = 4000


# OpenAI documents no bounds for the two durations; ten seconds is far beyond any useful pause.
MAX_VAD_MS = 10_000


@dataclass(frozen=True)
class VadParameters:
    """OpenAI's ``chunking_strategy`` ``{"type": "server_vad", ...}`` object: how voice activity
    detection (Silero VAD, ``handler/segmentation.py``) finds the speech that is decoded.

    Defaults are OpenAI's (``VadConfig`` in its OpenAPI spec). The ranges are OpenAI's for
    ``threshold`` (0.0 to 1.0) and this service's for the durations (0 to 10,000 ms, integers),
    where OpenAI states none. The ``Field`` bounds are checked when a request is validated.
    """

    prefix_padding_ms: Annotated[int, Field(ge=0, le=MAX_VAD_MS)] = 300
    """Audio kept around detected speech, in ms (before and after each stretch)."""
    silence_duration_ms: Annotated[int, Field(ge=0, le=MAX_VAD_MS)] = 200
    """Silence that ends a stretch of speech, in ms."""
    threshold: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.5
    """Speech probability above which a 32 ms frame counts as speech (``threshold``)."""


ChunkingStrategy = Literal["auto"] | VadParameters
"""``"auto"``: the engine's own speech detection (:class:`VadOptions`' defaults); a
:class:`VadParameters`: the client's settings. Absent (``None``): the same as ``"auto"``, since
the engine always finds speech before decoding (that is how silence stays empty)."""


@dataclass(frozen=True)
class VadOptions:
    """How speech is found and cut, with OpenAI's ``server_vad`` names
    (``chunking_strategy: {"type": "server_vad", ...}`` maps onto it field by field).

    Defaults: ``threshold`` is Silero's; the others are the benchmark's choice (docs/bench).
    """

    threshold: float = 0.5
    """Silero speech probability (0-1) at which speech starts; it ends below 0.15 less."""
    prefix_padding_ms: int = 400
    """Audio kept around detected speech (before and after), so no word loses its edges."""
    silence_duration_ms: int = 300
    """Silence that ends a stretch of speech; shorter pauses stay inside it."""
    min_speech_duration_ms: int = 150
    """Stretches of speech shorter than this are dropped (a click, a cough): Silero's name."""


def vad_options(chunking: ChunkingStrategy | None) -> VadOptions:
    """The engine's speech detection for OpenAI's ``chunking_strategy``: absent or ``"auto"``
    take :class:`VadOptions`' defaults; a ``server_vad`` object sets its three fields by their
    OpenAI names (the minimum speech length stays the engine's)."""
    if chunking is None or chunking == "auto":
        return VadOptions()
    return VadOptions(
        threshold=chunking.threshold,
        prefix_padding_ms=chunking.prefix_padding_ms,
        silence_duration_ms=chunking.silence_duration_ms,
    )


@dataclass(frozen=True)
class TranscribeOptions:
    """What the client asked of the model."""

    initial_prompt: str | None = None
    temperature: float | None = None
    word_timestamps: bool = False
    vad: VadOptions = field(default_factory=VadOptions)
    """Speech detection and cutting (OpenAI's ``chunking_strategy``, see :func:`vad_options`)."""


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class Transcript:
    """A finished transcription, every segment materialised."""

    duration: float
    segments: list[Segment]
    language: str = "en"

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments).strip()
