"""Engines for fault injection: the real model behind a wrapper that fails or waits on
demand (the real engine cannot be made to fail at a chosen moment)."""

from __future__ import annotations

import threading
from typing import Any

from handler.engine import Engine


class FailingEngine(Engine):
    """Fails the first ``failures`` transcriptions (all of them with ``None``), then runs
    the real model."""

    def __init__(self, real: Engine, failures: int | None = 1) -> None:
        self.real = real
        self.failures = failures
        self.calls = 0

    def transcribe(self, samples: Any, options: Any) -> Any:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise RuntimeError("worker lost (simulated)")
        return self.real.transcribe(samples, options)


class GatedEngine(Engine):
    """The first transcription waits until the test opens the gate, so a request is truly in
    flight while the test sends others; later ones run at once."""

    def __init__(self, real: Engine) -> None:
        self.real = real
        self.entered = threading.Event()
        self.open = threading.Event()
        self.calls = 0

    def transcribe(self, samples: Any, options: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.open.wait(120), "the test never opened the gate"
        return self.real.transcribe(samples, options)
