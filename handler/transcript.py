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
class TranscribeOptions:
    """What the client asked of the model."""

    initial_prompt: str | None = None
    temperature: float | None = None
    word_timestamps: bool = False
    segment_timestamps: bool = True
    """False when only the text is returned (json, text): long audio may then be batched."""


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
