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
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from handler.audio import SAMPLE_RATE
from handler.config import Settings, get_settings
from handler.observability import logger, tracer
from handler.transcript import Segment, TranscribeOptions, Transcript

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

    from handler.decoding import WindowDecoder
    from handler.segmentation import Window
    from handler.stitching import Placed

MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
T = TypeVar("T")
# Whisper's own fallback schedule: retry a failed window at a higher temperature.
TEMPERATURE_STEP = 0.2


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
        from handler.stitching import (
            Timeline,
            check_coverage,
            context_text,
            kept_segments,
            place,
        )

        decoder = self.decoder()  # loads the model before anything else is paid for
        settings = self.settings
        probabilities = speech_probabilities(samples)
        spans = speech_spans(probabilities, len(samples), options.vad)
        decode_options = DecodeOptions(
            beam_size=settings.beam_size,
            temperatures=temperature_schedule(options.temperature),
            initial_prompt=options.initial_prompt,
        )
        timeline = Timeline(len(samples) / SAMPLE_RATE, options.word_timestamps)
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
        ready: list[tuple[float, int, Placed]] = []  # decoded, waiting for earlier windows
        counter = itertools.count()
        while todo or follow_ups:
            batch: list[tuple[Window, int | None]] = []
            while follow_ups and len(batch) < size:
                batch.append((heapq.heappop(follow_ups)[2], None))
            while todo and len(batch) < size:
                next_index = todo.popleft()
                batch.append((windows[next_index], next_index))
            size = settings.batch_size
            contexts = [
                self._context(windows, texts, index, probabilities, options.vad.threshold)
                for _, index in batch
            ]
            results = decoder.decode(
                [window.audio(samples) for window, _ in batch], decode_options, contexts
            )
            for (window, index), result in zip(batch, results, strict=True):
                coverage = check_coverage(window, result, probabilities, options.vad.threshold)
                for part in coverage.redo:
                    heapq.heappush(follow_ups, (part.first_sample, next(counter), part))
                kept = kept_segments(window, result, coverage.keep_from, coverage.keep_until)
                for placed in place(window, result, kept, decoder.tokenizer.encode):
                    heapq.heappush(ready, (placed.start, next(counter), placed))
                if index is not None:
                    texts[index] = context_text(kept, result)
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
