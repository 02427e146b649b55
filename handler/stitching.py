"""Decoded windows back on the original timeline: what to keep, what to decode again,
where every segment and word goes, and their numbering.

A window's times are seconds from its start, across spans of the original audio joined end
to end (see :class:`handler.segmentation.Window`); the words' alignment puts each word in
the span that holds its middle, so nothing lands in removed silence. The same alignment
says which speech the text covers (:func:`check_coverage`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from handler.audio import SAMPLE_RATE
from handler.decoding import Decoded, RawSegment
from handler.segmentation import Window, speech_mask
from handler.transcript import Segment, Word

FRAMES_PER_SECOND = 100
"""Whisper's mel frames per second: a segment's ``seek`` counts them."""
REDECODE_MIN_SPEECH_SECONDS = 0.3
"""Speech that no decoded word covers, from which a stretch is decoded again."""
WORD_COVERS_SECONDS = 0.6
"""A word is taken to cover at most this much audio at each of its ends."""
WORD_MARGIN_SECONDS = 0.3
"""How far around its aligned timing a word is taken to cover speech (the alignment of
tiny.en's cross-attention is about this precise)."""
SEGMENT_MAX_PAUSE_SECONDS = 1.0
"""A segment is split where its words pause longer than this."""
CONTEXT_MAX_TEMPERATURE = 0.5
"""Text decoded hotter than this is not given as context (Whisper's
``prompt_reset_on_temperature``)."""
MASK_STEP = 0.01
"""Resolution of the speech and coverage masks, seconds."""


def context_text(own: list[RawSegment], result: Decoded) -> str | None:
    """What a window said, as context for the next one; None after a hot (sampled)
    decoding, as Whisper resets its prompt above temperature 0.5."""
    if result.no_speech or result.temperature > CONTEXT_MAX_TEMPERATURE:
        return None
    text = "".join(w.word for s in own for w in s.words) or "".join(s.text for s in own)
    return text.strip() or None


@dataclass
class Placed:
    """A decoded segment on the original timeline, before it is numbered."""

    start: float
    end: float
    text: str
    tokens: list[int]
    words: list[Word]
    seek: int
    result: Decoded


def place(
    window: Window,
    result: Decoded,
    segments: list[RawSegment],
    encode: Callable[[str], list[int]],
) -> Iterator[Placed]:
    """The window's segments on the original timeline. Words are placed through the span
    holding their middle, so a word never straddles removed silence; a segment is split
    where its words pause (see :func:`_split_at_pauses`)."""
    if result.no_speech:
        return
    seek = round(window.first_sample / SAMPLE_RATE * FRAMES_PER_SECOND)
    for raw in segments:
        if not raw.words:
            start = window.to_original(raw.start, window.span_at(raw.start))
            end = window.to_original(raw.end, window.span_at(raw.end, end=True))
            yield Placed(start, end, raw.text, raw.tokens, [], seek, result)
            continue
        words = []
        for word in raw.words:
            span = window.span_at((word.start + word.end) / 2)
            start = window.to_original(word.start, span)
            words.append(
                Word(start, window.to_original(word.end, span), word.word, word.probability)
            )
        for part in _split_at_pauses(words):
            text = "".join(word.word for word in part)
            tokens = raw.tokens if text == raw.text else encode(text)
            yield Placed(part[0].start, part[-1].end, text, tokens, part, seek, result)


def kept_segments(
    window: Window, result: Decoded, since: float = 0.0, until: float | None = None
) -> list[RawSegment]:
    """The decoded segments without what lies in the window's lookahead (the next window
    decodes it) or outside ``since``-``until`` (seconds from the window's start; decoded
    again): words whose middle is outside, segments left without words."""
    end = window.seconds if until is None else min(until, window.seconds)
    own = []
    for raw in result.segments:
        if raw.words:
            words = [w for w in raw.words if since <= (w.start + w.end) / 2 < end]
            if words:
                own.append(replace(raw, words=words))
        elif since <= raw.start < end:
            own.append(replace(raw, end=min(raw.end, end)))
    return own


def _split_at_pauses(words: list[Word]) -> list[list[Word]]:
    """Words in runs, a new run after a pause of :data:`SEGMENT_MAX_PAUSE_SECONDS`: a window
    joins speech across removed silence, and a subtitle should not span it."""
    parts: list[list[Word]] = [[words[0]]]
    for previous, word in itertools.pairwise(words):
        if word.start - previous.end > SEGMENT_MAX_PAUSE_SECONDS:
            parts.append([])
        parts[-1].append(word)
    return parts


@dataclass(frozen=True)
class Coverage:
    """What of a decoded window to keep, and what to decode again (seconds from the
    window's start)."""

    keep_from: float
    keep_until: float
    redo: list[Window]


def check_coverage(
    window: Window, result: Decoded, probabilities: np.ndarray, threshold: float
) -> Coverage:
    """Check that the window's words cover its speech; say what to keep and what to decode
    again.

    tiny.en sometimes skips a short turn inside a window, or stops before its end;
    faster-whisper's sequential loop recovers only the second (it seeks to the last
    timestamp), its batched pipeline neither. The words' alignment says which audio the
    text covers: a word covers its first and last :data:`WORD_COVERS_SECONDS` (the
    alignment stretches a word over audio it did not hear, up to seconds). At the first
    stretch of speech left uncovered, the window's text is kept up to the last word before
    it and the rest of the window is decoded again, starting with what was skipped (the
    words after a skip are often aligned onto the skipped audio, so they are not trusted
    either). Speech skipped before the first word is decoded again up to the first word
    after it. A window without words (no speech, by Whisper's verdict or an empty text) is
    left alone.
    """
    everything = Coverage(0.0, window.seconds, [])
    words = [(w.start, w.end) for segment in kept_segments(window, result) for w in segment.words]
    if result.no_speech or not words:
        return everything
    speech = speech_mask(window, probabilities, threshold)
    covered = np.zeros_like(speech)
    for start, end in words:
        for low, high in (
            (start, min(end, start + WORD_COVERS_SECONDS)),
            (max(start, end - WORD_COVERS_SECONDS), end),
        ):
            covered[_step(low - WORD_MARGIN_SECONDS) : _step(high + WORD_MARGIN_SECONDS)] = True
    runs = _runs(speech & ~covered)
    if not runs:
        return everything
    keep_from, redo = 0.0, []
    start, end = runs[0]
    if not any(word_end <= start for _, word_end in words):  # skipped at the head
        after = [word_start for word_start, _ in words if word_start >= end]
        if not after or (head := window.part(0.0, after[0])) is None:
            return everything  # nothing decoded can be trusted to anchor a new window
        keep_from, redo = after[0], [head]
        runs = [run for run in runs if run[0] >= keep_from]
        if not runs:
            return Coverage(keep_from, window.seconds, redo)
        start, end = runs[0]
    anchor = max(word_end for _, word_end in words if word_end <= start)
    rest = window.part(anchor)
    return Coverage(keep_from, anchor, [*redo, rest] if rest else redo)


def _runs(missing: np.ndarray) -> list[tuple[float, float]]:
    """Stretches (seconds) of uncovered speech holding :data:`REDECODE_MIN_SPEECH_SECONDS`;
    gaps under :data:`WORD_MARGIN_SECONDS` inside one stretch do not split it."""
    indices = np.flatnonzero(missing)
    if not len(indices):
        return []
    breaks = np.flatnonzero(np.diff(indices) > _step(WORD_MARGIN_SECONDS)) + 1
    runs = []
    for group in np.split(indices, breaks):
        if len(group) * MASK_STEP >= REDECODE_MIN_SPEECH_SECONDS:
            runs.append((group[0] * MASK_STEP, (group[-1] + 1) * MASK_STEP))
    return runs


def _step(seconds: float) -> int:
    return max(0, round(seconds / MASK_STEP))


class Timeline:
    """Numbers placed segments in order, each starting no earlier than the previous one
    ends, all inside the duration; keeps words only when they were asked for."""

    def __init__(self, duration: float, keep_words: bool) -> None:
        self.duration = duration
        self.keep_words = keep_words
        self.next_id = 0
        self.last_end = 0.0

    def number(self, placed: Placed) -> Segment:
        start = self._clamp(placed.start, self.last_end)
        words = []
        floor = start
        for word in placed.words:
            word_start = self._clamp(word.start, floor)
            word_end = self._clamp(word.end, word_start)
            words.append(Word(word_start, word_end, word.word, word.probability))
            floor = word_end
        end = self._clamp(max(placed.end, floor), start)
        result = placed.result
        segment = Segment(
            id=self.next_id,
            seek=placed.seek,
            start=start,
            end=end,
            text=placed.text,
            tokens=placed.tokens,
            temperature=result.temperature,
            avg_logprob=result.avg_logprob,
            compression_ratio=result.compression_ratio,
            no_speech_prob=result.no_speech_prob,
            words=words if self.keep_words else [],
        )
        self.next_id += 1
        self.last_end = end
        return segment

    def _clamp(self, seconds: float, floor: float) -> float:
        return round(min(max(seconds, floor), self.duration), 3)
