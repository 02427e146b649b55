"""Engines for fault injection and observation: the real model behind a wrapper that fails,
waits or takes notes on demand (the real engine cannot be made to fail at a chosen moment).

Each wrapper offers the engine's two entry points, ``transcribe`` (materialised) and
``stream`` (segments as they are decoded), and hands both to the real engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from handler.engine import Engine
from handler.transcript import Segment, TranscribeOptions


class FailingEngine(Engine):
    """Fails the first ``failures`` transcriptions (all of them with ``None``) before any
    segment, then runs the real model."""

    def __init__(self, real: Engine, failures: int | None = 1) -> None:
        self.real = real
        self.failures = failures
        self.calls = 0

    def _fails(self) -> bool:
        self.calls += 1
        return self.failures is None or self.calls <= self.failures

    def transcribe(self, samples: Any, options: Any) -> Any:
        if self._fails():
            raise RuntimeError("worker lost (simulated)")
        return self.real.transcribe(samples, options)

    def stream(self, samples: Any, options: Any) -> Iterator[Segment]:
        if self._fails():
            raise RuntimeError("worker lost (simulated)")
        yield from self.real.stream(samples, options)


class MidStreamFailingEngine(Engine):
    """The first ``failures`` streams (all of them with ``None``) yield the real model's first
    ``after`` segments, then fail: a worker lost while the response is already being sent.
    Later streams run the real model."""

    def __init__(self, real: Engine, after: int = 1, failures: int | None = None) -> None:
        self.real = real
        self.after = after
        self.failures = failures
        self.calls = 0

    def stream(self, samples: Any, options: Any) -> Iterator[Segment]:
        self.calls += 1
        if self.failures is not None and self.calls > self.failures:
            yield from self.real.stream(samples, options)
            return
        segments = self.real.stream(samples, options)
        for _ in range(self.after):
            yield next(segments)
        raise RuntimeError("worker lost mid-stream (simulated)")


class GatedEngine(Engine):
    """The first transcription waits until the test opens the gate, so a request is truly in
    flight while the test sends others; later ones run at once."""

    def __init__(self, real: Engine) -> None:
        self.real = real
        self.entered = threading.Event()
        self.open = threading.Event()
        self.calls = 0

    def _wait_if_first(self) -> None:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.open.wait(120), "the test never opened the gate"

    def transcribe(self, samples: Any, options: Any) -> Any:
        self._wait_if_first()
        return self.real.transcribe(samples, options)

    def stream(self, samples: Any, options: Any) -> Iterator[Segment]:
        self._wait_if_first()
        yield from self.real.stream(samples, options)


class PausingEngine(Engine):
    """Streams the real model's first ``after`` segments, then waits (``paused`` is set) until
    the test sets ``resume``, then carries on: a response caught mid-stream on demand."""

    def __init__(self, real: Engine, after: int = 1) -> None:
        self.real = real
        self.after = after
        self.paused = threading.Event()
        self.resume = threading.Event()

    def stream(self, samples: Any, options: Any) -> Iterator[Segment]:
        for index, segment in enumerate(self.real.stream(samples, options)):
            if index == self.after:
                self.paused.set()
                assert self.resume.wait(120), "the test never resumed the engine"
            yield segment


class RecordingEngine(Engine):
    """The real engine, noting the options of each call (what a request's fields became),
    and for each stream when (``time.monotonic()``) it yielded each segment and where that
    segment ends in the audio: the engine's own progress, to compare with what a client saw."""

    def __init__(self, real: Engine) -> None:
        self.real = real
        self.options: list[TranscribeOptions] = []
        self.yielded: list[list[tuple[float, float]]] = []

    def stream(self, samples: Any, options: TranscribeOptions) -> Iterator[Segment]:
        self.options.append(options)
        progress: list[tuple[float, float]] = []
        self.yielded.append(progress)
        for segment in self.real.stream(samples, options):
            progress.append((time.monotonic(), segment.end))
            yield segment
