"""Plain data passed between the engine, the renderers and the billing: no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ResponseFormat = Literal["json", "verbose_json", "text", "srt", "vtt"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json", "verbose_json", "text", "srt", "vtt")
TIMED_FORMATS: frozenset[ResponseFormat] = frozenset({"verbose_json", "srt", "vtt"})
"""Formats that show segment start and end times."""
Granularity = Literal["segment", "word"]
# Whisper reads at most 224 prompt tokens; 4,000 characters is ample and bounds the work.
MAX_PROMPT_CHARS = 4000


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


@dataclass(frozen=True)
class TranscribeOptions:
    """What the client asked of the model."""

    initial_prompt: str | None = None
    temperature: float | None = None
    word_timestamps: bool = False
    segment_timestamps: bool = True
    """False when only the text is returned (json, text). Every format is decoded the same
    way (with timestamps, which find where each window's text ends); kept for callers."""
    vad: VadOptions = field(default_factory=VadOptions)
    """Speech detection and cutting (``chunking_strategy``)."""


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
