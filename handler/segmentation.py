"""Where the speech is: Silero VAD probabilities -> speech spans -> decoding windows.

Whisper reads 30 s at a time. Long audio is cut only where nobody speaks, so no window
splits a word, and each window packs as many speech spans as fit, with the silence between
them shortened to the spans' padding. Stretches without speech (silence, noise, tones, hum,
music) never reach the model, which is what keeps Whisper from inventing text for them.

The probabilities come from the Silero VAD model that faster-whisper ships
(``faster_whisper/assets/silero_vad_v6.onnx``, run by ``faster_whisper.vad``); the
hysteresis that turns them into spans is Silero's own (``get_speech_timestamps``), written
here over precomputed probabilities so that a span longer than a window can be cut at its
quietest moment instead of at a fixed length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handler.audio import SAMPLE_RATE
from handler.transcript import VadOptions

FRAME_SAMPLES = 512
"""Silero VAD scores 32 ms frames of 16 kHz audio."""
CONTEXT_SAMPLES = 64
"""Silero v5/v6 prepends the last 64 samples of the previous frame to each frame."""
FRAMES_PER_RUN = 1024
"""Frames scored per ONNX call (33 s of audio): bounds the VAD's memory whatever the length
(one call over 5 minutes held 120 MB more at its peak)."""
WINDOW_SECONDS = 30.0
"""What Whisper reads at once."""
NEG_THRESHOLD_GAP = 0.15
"""Silero's hysteresis: speech ends below ``threshold - 0.15``."""


@dataclass(frozen=True)
class Span:
    """Samples ``[start, end)`` of the original audio."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Window:
    """What the model reads at once: spans of the original audio joined end to end, then
    ``lookahead``, at most one model window (30 s) in all.

    The lookahead is the audio that follows the last span, for context only: the next
    window decodes it. Cut right after its last word, a window lost or garbled that word
    (tiny.en takes a word at the very end of its audio for a truncated one).
    """

    spans: tuple[Span, ...]
    lookahead: Span | None = None

    @property
    def samples(self) -> int:
        """Samples of the window's own audio (without the lookahead)."""
        return sum(span.length for span in self.spans)

    def audio(self, samples: np.ndarray) -> np.ndarray:
        """The window's samples, spans joined, then the lookahead (float32, mono, 16 kHz)."""
        parts = [*self.spans, self.lookahead] if self.lookahead else self.spans
        return np.concatenate([samples[span.start : span.end] for span in parts])

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def first_sample(self) -> int:
        return self.spans[0].start

    def span_at(self, seconds: float, *, end: bool = False) -> int:
        """Index of the span that a time in the window (seconds from its start) falls in;
        a time exactly at a joint belongs to the earlier span when ``end`` (where something
        stops), to the later one otherwise."""
        offset = round(seconds * SAMPLE_RATE)
        for index, span in enumerate(self.spans):
            if offset < span.length or (end and offset == span.length):
                return index
            offset -= span.length
        return len(self.spans) - 1

    def to_original(self, seconds: float, span_index: int) -> float:
        """A time in the window, known to fall in span ``span_index``, on the original
        timeline (seconds), kept inside that span."""
        before = sum(span.length for span in self.spans[:span_index])
        span = self.spans[span_index]
        offset = min(max(round(seconds * SAMPLE_RATE) - before, 0), span.length)
        return (span.start + offset) / SAMPLE_RATE

    def part(self, start: float, end: float | None = None) -> Window | None:
        """The audio between two times of the window (seconds from its start; ``end``
        None: to the window's end, lookahead included), or None when that is empty."""
        begin = round(start * SAMPLE_RATE)
        stop = self.samples if end is None else round(end * SAMPLE_RATE)
        kept: list[Span] = []
        offset = 0
        for span in self.spans:
            low, high = max(begin - offset, 0), min(stop - offset, span.length)
            if low < high:
                kept.append(Span(span.start + low, span.start + high))
            offset += span.length
        if not kept:
            return None
        return Window(tuple(kept), self.lookahead if end is None else None)


def speech_probabilities(samples: np.ndarray) -> np.ndarray:
    """Silero's speech probability for every 32 ms frame of ``samples`` (16 kHz float32).

    Same numbers as ``faster_whisper.vad.SileroVADModel.__call__`` (which this follows: each
    frame carries the last 64 samples of the previous one; the LSTM state runs on), but
    computed :data:`FRAMES_PER_RUN` frames at a time.
    """
    from faster_whisper.vad import get_vad_model

    session = get_vad_model().session
    frames = -(-len(samples) // FRAME_SAMPLES)
    padded = np.zeros(frames * FRAME_SAMPLES, dtype=np.float32)
    padded[: len(samples)] = samples
    windows = padded.reshape(frames, FRAME_SAMPLES)
    state_h = np.zeros((1, 1, 128), dtype=np.float32)
    state_c = np.zeros((1, 1, 128), dtype=np.float32)
    probabilities = np.empty(frames, dtype=np.float32)
    for first in range(0, frames, FRAMES_PER_RUN):
        batch = windows[first : first + FRAMES_PER_RUN]
        context = np.zeros((len(batch), CONTEXT_SAMPLES), dtype=np.float32)
        context[1:] = batch[:-1, -CONTEXT_SAMPLES:]
        if first:
            context[0] = windows[first - 1, -CONTEXT_SAMPLES:]
        output, state_h, state_c = session.run(
            None, {"input": np.concatenate([context, batch], axis=1), "h": state_h, "c": state_c}
        )
        probabilities[first : first + len(batch)] = np.asarray(output).reshape(-1)
    return probabilities


def speech_spans(probabilities: np.ndarray, total_samples: int, options: VadOptions) -> list[Span]:
    """Speech as Silero's hysteresis finds it, padded, in samples of the original audio.

    Speech starts at a frame scoring ``>= threshold`` and ends once the score has stayed
    under ``threshold - 0.15`` for ``silence_duration_ms``; stretches shorter than
    ``min_speech_duration_ms`` are dropped (a cough, a click); each span is then widened by
    ``prefix_padding_ms`` on both sides, or up to the middle of a shorter gap.
    """
    threshold = options.threshold
    neg_threshold = max(threshold - NEG_THRESHOLD_GAP, 0.01)
    min_silence = options.silence_duration_ms * SAMPLE_RATE / 1000
    min_speech = options.min_speech_duration_ms * SAMPLE_RATE / 1000
    raw: list[Span] = []
    start: int | None = None
    silence_from: int | None = None
    for index, probability in enumerate(probabilities.tolist()):
        position = index * FRAME_SAMPLES
        if start is None:
            if probability >= threshold:
                start, silence_from = position, None
            continue
        if probability >= threshold:
            silence_from = None
        elif probability < neg_threshold:
            silence_from = position if silence_from is None else silence_from
            if position - silence_from >= min_silence:
                if silence_from - start >= min_speech:
                    raw.append(Span(start, silence_from))
                start, silence_from = None, None
    if start is not None and total_samples - start >= min_speech:
        raw.append(Span(start, total_samples))
    return _padded(raw, total_samples, round(options.prefix_padding_ms * SAMPLE_RATE / 1000))


def _padded(spans: list[Span], total_samples: int, pad: int) -> list[Span]:
    padded: list[Span] = []
    for index, span in enumerate(spans):
        start = max(0, span.start - pad)
        if index:
            gap = span.start - spans[index - 1].end
            start = span.start - min(pad, gap // 2)
        end = min(total_samples, span.end + pad)
        if index + 1 < len(spans):
            gap = spans[index + 1].start - span.end
            end = span.end + min(pad, gap - gap // 2)
        padded.append(Span(start, end))
    return padded


def split_long(
    span: Span, probabilities: np.ndarray, max_samples: int, min_samples: int, threshold: float
) -> list[Span]:
    """Cut a span longer than ``max_samples`` in its longest pause.

    Each cut falls in the middle of the longest run of frames scoring under
    ``threshold - 0.15`` (a pause between phrases rather than between two words) between
    ``min_samples`` and ``max_samples`` from the piece's start; without such a frame, at the
    frame of lowest probability. So no piece exceeds a window and no word is split unless
    someone speaks for the whole window without one frame of pause.
    """
    quiet_below = max(threshold - NEG_THRESHOLD_GAP, 0.01)
    pieces = []
    start = span.start
    while span.end - start > max_samples:
        first = -(-(start + min_samples) // FRAME_SAMPLES)
        last = (start + max_samples) // FRAME_SAMPLES
        scores = probabilities[first:last]
        pieces.append(Span(start, (first + _pause_middle(scores, quiet_below)) * FRAME_SAMPLES))
        start = pieces[-1].end
    pieces.append(Span(start, span.end))
    return pieces


def _pause_middle(scores: np.ndarray, quiet_below: float) -> int:
    """Index of the middle of the longest run of quiet frames (the latest among equals),
    else of the least probable frame."""
    best_length, best_middle = 0, int(np.argmin(scores)) if len(scores) else 0
    run = 0
    for index, quiet in enumerate((scores < quiet_below).tolist()):
        run = run + 1 if quiet else 0
        if run and run >= best_length:
            best_length, best_middle = run, index - run // 2
    return best_middle


def plan_windows(
    spans: list[Span],
    probabilities: np.ndarray,
    max_seconds: float,
    min_cut_seconds: float,
    threshold: float,
    lookahead_seconds: float = 0.0,
) -> list[Window]:
    """Pack speech spans, in order, into windows of at most ``max_seconds`` of audio.

    A span too long for one window is first cut with :func:`split_long`; a window then takes
    spans while they fit, so the silence between two spans shrinks to their padding. Every
    window but the last sees up to ``lookahead_seconds`` of the audio after it.
    """
    max_samples = round(max_seconds * SAMPLE_RATE)
    min_samples = round(min_cut_seconds * SAMPLE_RATE)
    pieces = [
        piece
        for span in spans
        for piece in split_long(span, probabilities, max_samples, min_samples, threshold)
    ]
    windows: list[Window] = []
    current: list[Span] = []
    for piece in pieces:
        if current and sum(s.length for s in current) + piece.length > max_samples:
            windows.append(Window(tuple(current)))
            current = []
        current.append(piece)
    if current:
        windows.append(Window(tuple(current)))
    total = len(probabilities) * FRAME_SAMPLES
    room = round(WINDOW_SECONDS * SAMPLE_RATE)
    for index, window in enumerate(windows[:-1]):
        end = window.spans[-1].end
        length = min(round(lookahead_seconds * SAMPLE_RATE), room - window.samples, total - end)
        if length > 0:
            windows[index] = Window(window.spans, Span(end, end + length))
    return windows


def speech_mask(window: Window, probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """For every 10 ms of the window, whether Silero scored it as speech (``>= threshold``)."""
    step = SAMPLE_RATE // 100
    marks = [
        probabilities[
            np.minimum(
                np.arange(span.start, span.end, step) // FRAME_SAMPLES, len(probabilities) - 1
            )
        ]
        >= threshold
        for span in window.spans
    ]
    return np.concatenate(marks) if marks else np.zeros(0, dtype=bool)


def pause_seconds(probabilities: np.ndarray, sample: int, threshold: float) -> float:
    """Length of the pause (frames under ``threshold - 0.15``) around ``sample``."""
    quiet = probabilities < max(threshold - NEG_THRESHOLD_GAP, 0.01)
    frame = min(sample // FRAME_SAMPLES, len(quiet) - 1)
    low = high = frame
    while low > 0 and quiet[low - 1]:
        low -= 1
    while high < len(quiet) and quiet[high]:
        high += 1
    return (high - low) * FRAME_SAMPLES / SAMPLE_RATE
