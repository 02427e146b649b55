"""Plain data passed between the engine, the renderers and the billing: no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

ResponseFormat = Literal["json", "verbose_json", "text", "srt", "vtt"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json", "verbose_json", "text", "srt", "vtt")
TIMED_FORMATS: frozenset[ResponseFormat] = frozenset({"verbose_json", "srt", "vtt"})
"""Formats that show segment start and end times."""
Granularity = Literal["segment", "word"]
Task = Literal["transcribe", "translate"]
"""Whisper's name for what a request asks: the transcript, or its English translation."""
# Whisper reads at most 224 prompt tokens; 4,000 characters is ample and bounds the work.
MAX_PROMPT_CHARS = 4000


# OpenAI documents no bounds for the two durations; ten seconds is far beyond any useful pause.
MAX_VAD_MS = 10_000


@dataclass(frozen=True)
class VadParameters:
    """OpenAI's ``chunking_strategy`` ``{"type": "server_vad", ...}`` object: voice activity
    detection cuts the audio into speech chunks before decoding (faster-whisper's Silero VAD,
    ``VadOptions``), and only the speech is decoded.

    Defaults are OpenAI's (``VadConfig`` in its OpenAPI spec). The ranges are OpenAI's for
    ``threshold`` (0.0 to 1.0) and this service's for the durations (0 to 10,000 ms, integers),
    where OpenAI states none. The ``Field`` bounds are checked when a request is validated.
    """

    prefix_padding_ms: Annotated[int, Field(ge=0, le=MAX_VAD_MS)] = 300
    """Audio kept before detected speech, in ms (faster-whisper's ``speech_pad_ms``, which
    pads both ends of each chunk)."""
    silence_duration_ms: Annotated[int, Field(ge=0, le=MAX_VAD_MS)] = 200
    """Silence that ends a speech chunk, in ms (faster-whisper's ``min_silence_duration_ms``)."""
    threshold: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.5
    """Speech probability above which a 32 ms frame counts as speech (``threshold``)."""


ChunkingStrategy = Literal["auto"] | VadParameters
"""``"auto"``: the VAD with the engine's own settings for the path the audio takes; a
:class:`VadParameters`: the client's settings. Absent (``None``): no VAD beyond what the
engine does by itself (the batched pipeline always cuts long audio at speech pauses)."""


@dataclass(frozen=True)
class TranscribeOptions:
    """What the client asked of the model."""

    initial_prompt: str | None = None
    temperature: float | None = None
    word_timestamps: bool = False
    segment_timestamps: bool = True
    """False when only the text is returned (json, text): long audio may then be batched."""
    chunking: ChunkingStrategy | None = None
    """OpenAI's ``chunking_strategy``, mapped onto the VAD by ``engine.vad_options``."""


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
