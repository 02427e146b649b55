"""The Whisper model, loaded lazily once per process, and the long-audio path around it.

``Engine.stream`` finds the speech (:mod:`handler.segmentation`: Silero VAD), packs it into
windows of at most 30 s cut only in pauses, decodes the windows in batches with timestamps
(:mod:`handler.decoding`), and puts every segment and word back on the original timeline,
yielding segments in time order as each batch finishes. Audio without speech never reaches
the model, so it comes back empty. Every response format goes this one way.

faster-whisper is imported on first use, not at import time, so routes that do not
transcribe (health, models, wallet) start fast and Lambda's init phase stays short.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from handler.audio import SAMPLE_RATE
from handler.config import Settings, get_settings
from handler.observability import logger, tracer
from handler.transcript import Segment, TranscribeOptions, Transcript, Word

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

    from handler.decoding import Decoded, RawSegment, WindowDecoder
    from handler.segmentation import Window

MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
T = TypeVar("T")
# Whisper's own fallback schedule: retry a failed window at a higher temperature.
TEMPERATURE_STEP = 0.2
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


class ModelUnavailable(RuntimeError):
    """The model directory is missing, incomplete or unreadable."""


class Engine:
    """Whisper tiny.en with the operator's settings; thread-safe, loads on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._model: WhisperModel | None = None
        self._decoder: WindowDecoder | None = None
        self._loading: threading.Thread | None = None
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def start_loading(self) -> None:
        """Load the model, its decoder and the VAD on a thread of their own, now.

        For a cold start: CTranslate2 builds the model without holding the GIL, so the
        load overlaps with what the first request does before it needs the model (routing,
        authentication, DynamoDB, decoding the audio). :meth:`model` waits for it; a load
        that fails is tried again, and reported, by the request that needs the model.
        """
        with self._lock:
            if self._model is not None or self._loading is not None:
                return
            self._loading = threading.Thread(target=self._preload, name="preload", daemon=True)
        self._loading.start()

    def _preload(self) -> None:
        from contextlib import suppress

        with suppress(Exception):  # model() raises it again where a request can answer it
            self.decoder()
            from faster_whisper.vad import get_vad_model

            get_vad_model()

    def model(self) -> WhisperModel:
        """The process-wide model, loading it the first time."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> WhisperModel:
        model_dir = Path(self.settings.model_dir)
        missing = [name for name in MODEL_FILES if not (model_dir / name).is_file()]
        if missing:
            raise ModelUnavailable(
                f"Whisper model not found in {model_dir} (missing {', '.join(missing)}). "
                "Build the model layer with `make layer` or set TINYSCRIBE_MODEL_DIR."
            )
        started = time.perf_counter()
        from faster_whisper import WhisperModel

        try:
            model = on_short_lived_thread(
                lambda: WhisperModel(
                    str(model_dir),
                    device="cpu",
                    compute_type=self.settings.compute_type,
                    cpu_threads=self.settings.cpu_threads,
                    local_files_only=True,
                )
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelUnavailable(
                f"Whisper model in {model_dir} could not be loaded: {exc}"
            ) from exc
        self.load_seconds = time.perf_counter() - started
        logger.info(
            "model loaded",
            extra={
                "load_ms": round(self.load_seconds * 1000),
                "threads": self.settings.cpu_threads,
            },
        )
        return model

    def decoder(self) -> WindowDecoder:
        """The batched decoder over the process-wide model."""
        if self._decoder is None:
            from handler.decoding import WindowDecoder

            decoder = WindowDecoder(self.model())
            with self._lock:
                self._decoder = self._decoder or decoder
        return self._decoder

    @tracer.capture_method(capture_response=False)  # a transcript never goes to X-Ray
    def transcribe(self, samples: np.ndarray, options: TranscribeOptions) -> Transcript:
        """Transcribe 16 kHz mono float32 samples: every segment of :meth:`stream`."""
        return Transcript(len(samples) / SAMPLE_RATE, list(self.stream(samples, options)))

    def stream(self, samples: np.ndarray, options: TranscribeOptions) -> Iterator[Segment]:
        """Segments of 16 kHz mono float32 ``samples`` in time order, each as soon as it is
        decoded (the first after one batch of windows, not at the end of the file); ids
        count from 0. Times are seconds on the samples' timeline, inside their duration;
        words are filled in when ``options.word_timestamps``. No speech: no segment."""
        from handler.decoding import DecodeOptions
        from handler.segmentation import plan_windows, speech_probabilities, speech_spans

        decoder = self.decoder()  # loads the model before anything else is paid for
        settings = self.settings
        probabilities = speech_probabilities(samples)
        spans = speech_spans(probabilities, len(samples), options.vad)
        decode_options = DecodeOptions(
            beam_size=settings.beam_size,
            temperatures=temperature_schedule(options.temperature),
            initial_prompt=options.initial_prompt,
        )
        timeline = _Timeline(len(samples) / SAMPLE_RATE, options.word_timestamps)
        windows = plan_windows(
            spans,
            probabilities,
            settings.window_seconds,
            settings.min_cut_seconds,
            options.vad.threshold,
            settings.lookahead_seconds,
        )
        # The first window alone, so the first segment comes out soon; then strided batches:
        # window i in round i % rounds, so that (but for the first window of each stride)
        # the window before it is done and its text can be its context.
        rounds = max(1, -(-(len(windows) - 1) // settings.batch_size))
        later = sorted(range(1, len(windows)), key=lambda i: (i % rounds, i))
        todo = deque([0, *later] if windows else [])
        size = 1  # of the first batch
        texts: dict[int, str | None] = {}
        follow_ups: list[tuple[int, int, Window]] = []  # stretches to decode again
        ready: list[tuple[float, int, _Placed]] = []  # decoded, waiting for earlier windows
        counter = itertools.count()
        while todo or follow_ups:
            batch: list[tuple[Window, int | None]] = []
            while follow_ups and len(batch) < size:
                batch.append((heapq.heappop(follow_ups)[2], None))
            while todo and len(batch) < size:
                index = todo.popleft()
                batch.append((windows[index], index))
            size = settings.batch_size
            contexts = [
                self._context(windows, texts, index, probabilities, options.vad.threshold)
                for _, index in batch
            ]
            results = decoder.decode(
                [window.audio(samples) for window, _ in batch], decode_options, contexts
            )
            for (window, index), result in zip(batch, results, strict=True):
                coverage = _coverage(window, result, probabilities, options.vad.threshold)
                for part in coverage.redo:
                    heapq.heappush(follow_ups, (part.first_sample, next(counter), part))
                kept = _own(window, result, coverage.keep_from, coverage.keep_until)
                for placed in _place(window, result, kept, decoder.tokenizer.encode):
                    heapq.heappush(ready, (placed.start, next(counter), placed))
                if index is not None:
                    texts[index] = _context_text(kept, result)
            # A window still to decode can only add segments after its first sample.
            waiting = [windows[i].first_sample for i in todo] + [w[0] for w in follow_ups]
            horizon = min(waiting, default=len(samples) + 1) / SAMPLE_RATE
            while ready and ready[0][0] < horizon:
                yield timeline.number(heapq.heappop(ready)[2])

    def _context(
        self,
        windows: list[Window],
        texts: dict[int, str | None],
        index: int | None,
        probabilities: np.ndarray,
        threshold: float,
    ) -> str | None:
        """The previous window's text, when it is decoded and the pause between the two is
        short enough to be the same speaker going on."""
        from handler.segmentation import pause_seconds

        if not index or texts.get(index - 1) is None:
            return None
        pause = pause_seconds(probabilities, windows[index].first_sample, threshold)
        return texts[index - 1] if pause < self.settings.context_max_pause_seconds else None


def _context_text(own: list[RawSegment], result: Decoded) -> str | None:
    """What a window said, as context for the next one; None after a hot (sampled)
    decoding, as Whisper resets its prompt above temperature 0.5."""
    if result.no_speech or result.temperature > CONTEXT_MAX_TEMPERATURE:
        return None
    text = "".join(w.word for s in own for w in s.words) or "".join(s.text for s in own)
    return text.strip() or None


@dataclass
class _Placed:
    """A decoded segment on the original timeline, before it is numbered."""

    start: float
    end: float
    text: str
    tokens: list[int]
    words: list[Word]
    seek: int
    result: Decoded


def _place(
    window: Window,
    result: Decoded,
    segments: list[RawSegment],
    encode: Callable[[str], list[int]],
) -> Iterator[_Placed]:
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
            yield _Placed(start, end, raw.text, raw.tokens, [], seek, result)
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
            yield _Placed(part[0].start, part[-1].end, text, tokens, part, seek, result)


def _own(
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
class _Coverage:
    """What of a decoded window to keep, and what to decode again (seconds from the
    window's start)."""

    keep_from: float
    keep_until: float
    redo: list[Window]


def _coverage(
    window: Window, result: Decoded, probabilities: np.ndarray, threshold: float
) -> _Coverage:
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
    from handler.segmentation import speech_mask

    everything = _Coverage(0.0, window.seconds, [])
    words = [(w.start, w.end) for segment in _own(window, result) for w in segment.words]
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
            return _Coverage(keep_from, window.seconds, redo)
        start, end = runs[0]
    anchor = max(word_end for _, word_end in words if word_end <= start)
    rest = window.part(anchor)
    return _Coverage(keep_from, anchor, [*redo, rest] if rest else redo)


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


class _Timeline:
    """Numbers placed segments in order, each starting no earlier than the previous one
    ends, all inside the duration; keeps words only when they were asked for."""

    def __init__(self, duration: float, keep_words: bool) -> None:
        self.duration = duration
        self.keep_words = keep_words
        self.next_id = 0
        self.last_end = 0.0

    def number(self, placed: _Placed) -> Segment:
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


def on_short_lived_thread(factory: Callable[[], T]) -> T:
    """Call ``factory`` on a new thread that ends when it returns; re-raise what it raises.

    Models are constructed this way because the thread that loads a CTranslate2 model keeps
    an idle OpenMP (libgomp) team for as long as it lives. While that thread stays alive (the
    main thread, or a server's worker thread), every later transcription took 1.3-1.7x as
    long on 2 cores (``make bench ARGS=--study``), most likely because libgomp stops
    spin-waiting once it manages more threads than there are cores. A thread that ends takes
    its team with it.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load") as pool:
        return pool.submit(factory).result()


def temperature_schedule(temperature: float | None) -> tuple[float, ...]:
    """Whisper's fallback temperatures starting from the client's (0 when absent)."""
    start = temperature or 0.0
    steps = round((1.0 - start) / TEMPERATURE_STEP)
    return tuple(round(start + i * TEMPERATURE_STEP, 2) for i in range(steps + 1))


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine (the model itself still loads on first transcription)."""
    return Engine(get_settings())
