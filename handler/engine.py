"""The Whisper model: loaded lazily, once per process, and shared by every request.

faster-whisper is imported on first use, not at import time, so routes that do not
transcribe (health, models, wallet) start fast and Lambda's init phase stays short.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from handler.audio import SAMPLE_RATE
from handler.config import Settings, get_settings
from handler.observability import logger, tracer
from handler.transcript import ChunkingStrategy, Segment, TranscribeOptions, Transcript, Word

if TYPE_CHECKING:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

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
        self._batched: BatchedInferencePipeline | None = None
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

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

    def _batched_pipeline(self) -> BatchedInferencePipeline:
        if self._batched is None:
            from faster_whisper import BatchedInferencePipeline

            self._batched = BatchedInferencePipeline(model=self.model())
        return self._batched

    def stream(self, samples: np.ndarray, options: TranscribeOptions) -> Iterator[Segment]:
        """Transcribe 16 kHz mono float32 samples, yielding each segment (ids from 0, in time
        order) as soon as the model has decoded it: faster-whisper's segments are a lazy
        generator, iterated here rather than materialised. Long audio wanted without segment
        times goes through the batched pipeline, which yields a whole batch at a time.

        Nothing runs until the first segment is asked for (loading the model included, which
        raises :class:`ModelUnavailable`). Not traced: a generator resumed on other threads
        would carry its X-Ray subsegment across them; :meth:`transcribe` is traced."""
        duration = len(samples) / SAMPLE_RATE
        kwargs = decode_options(self.settings, options)
        if uses_batched_pipeline(self.settings, duration, options):
            segments, _info = self._batched_pipeline().transcribe(
                samples, **kwargs, **batched_options(self.settings)
            )
        else:
            segments, _info = self.model().transcribe(samples, **kwargs)
        for index, segment in enumerate(segments):
            yield _segment(index, segment)

    @tracer.capture_method(capture_response=False)  # a transcript never goes to X-Ray
    def transcribe(self, samples: np.ndarray, options: TranscribeOptions) -> Transcript:
        """The whole transcript of :meth:`stream`, every segment materialised."""
        return Transcript(len(samples) / SAMPLE_RATE, list(self.stream(samples, options)))


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


def decode_options(settings: Settings, options: TranscribeOptions) -> dict[str, Any]:
    """faster-whisper's ``transcribe`` arguments for a request (the benchmark uses them too)."""
    return {
        "language": "en",
        "task": "transcribe",
        "beam_size": settings.beam_size,
        "initial_prompt": options.initial_prompt or None,
        "word_timestamps": options.word_timestamps,
        "temperature": temperature_schedule(options.temperature),
        **vad_options(options.chunking),
    }


def vad_options(chunking: ChunkingStrategy | None) -> dict[str, Any]:
    """faster-whisper's VAD arguments for OpenAI's ``chunking_strategy`` (none when absent).

    ``"auto"`` turns the Silero VAD on with faster-whisper's defaults for the path taken
    (``VadOptions()`` sequentially; the batched pipeline sizes its own chunks). A ``server_vad``
    object sets the threshold, the silence that ends a chunk and the padding; it is passed as a
    dict because the batched pipeline only adds its ``max_speech_duration_s`` to a dict.
    """
    if chunking is None:
        return {}
    if chunking == "auto":
        return {"vad_filter": True}
    return {
        "vad_filter": True,
        "vad_parameters": {
            "threshold": chunking.threshold,
            "min_silence_duration_ms": chunking.silence_duration_ms,
            "speech_pad_ms": chunking.prefix_padding_ms,
        },
    }


def uses_batched_pipeline(settings: Settings, duration: float, options: TranscribeOptions) -> bool:
    """Long audio wanted as text only is batched; timed formats always decode sequentially.

    The batched pipeline cannot give good segments: without timestamps a segment is a whole
    chunk, and with them the words after the last timestamp of a chunk are dropped (faster-
    whisper only recovers them in sequential decoding, by seeking back), which lost whole
    sentences on the benchmark's files.
    """
    return duration >= settings.batched_min_seconds and not options.segment_timestamps


def batched_options(settings: Settings) -> dict[str, Any]:
    """What the batched pipeline takes on top of :func:`decode_options`."""
    return {
        "batch_size": settings.batch_size,
        "without_timestamps": True,
        "chunk_length": settings.batched_chunk_seconds,
    }


def temperature_schedule(temperature: float | None) -> tuple[float, ...]:
    """Whisper's fallback temperatures starting from the client's (0 when absent)."""
    start = temperature or 0.0
    steps = round((1.0 - start) / TEMPERATURE_STEP)
    return tuple(round(start + i * TEMPERATURE_STEP, 2) for i in range(steps + 1))


def _segment(index: int, raw: Any) -> Segment:
    """faster-whisper's segment as OpenAI numbers it (ids from 0)."""
    words = [Word(w.start, w.end, w.word, w.probability) for w in raw.words or []]
    return Segment(
        id=index,
        seek=raw.seek,
        start=raw.start,
        end=raw.end,
        text=raw.text,
        tokens=list(raw.tokens),
        temperature=raw.temperature if raw.temperature is not None else 0.0,
        avg_logprob=raw.avg_logprob,
        compression_ratio=raw.compression_ratio,
        no_speech_prob=raw.no_speech_prob,
        words=words,
    )


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine (the model itself still loads on first transcription)."""
    return Engine(get_settings())
