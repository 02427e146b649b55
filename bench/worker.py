"""A long-lived measuring process: the raw engine or the Lambda entry point.

``python -m bench.worker engine|lambda`` reads one JSON job per line on stdin and
answers each with one line ``@@ {json}`` on stdout (anything else on stdout is noise from
libraries). Each job resets the process's peak RSS first, so ``peak_rss_mb`` is the peak
of that job alone. The model is loaded once, as in a warm Lambda.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import procstats
from handler.config import Settings

PREFIX = "@@ "
Job = dict[str, Any]
MAX_SECONDS = 3600.0
"""Longest file a worker decodes (the bench's longest is the 10 minute meeting)."""


class RawEngine:
    """The service's engine (``handler.engine.Engine``: speech windows decoded in batches)
    without the service: no FastAPI, no DynamoDB, no HTTP. Also decodes the accuracy
    reference, faster-whisper's sequential ``transcribe``, with the same loaded model."""

    def __init__(self, settings: Settings) -> None:
        from handler.engine import Engine

        self.settings = settings
        started = time.perf_counter()
        self.engine = Engine(settings)
        self.engine.model()  # built on a short-lived thread, as the service does
        self.load_seconds = time.perf_counter() - started

    def transcribe(self, job: Job) -> Job:
        """Decode the file as the service does and transcribe it for ``response_format``."""
        from handler.audio import decode_audio
        from handler.transcript import TranscribeOptions

        samples = decode_audio(job["path"], max_seconds=MAX_SECONDS).samples
        return {"text": self.engine.transcribe(samples, TranscribeOptions()).text}

    def reference(self, job: Job) -> Job:
        """faster-whisper's sequential beam search over the same samples."""
        from bench.reference import sequential_options
        from handler.audio import decode_audio

        samples = decode_audio(job["path"], max_seconds=MAX_SECONDS).samples
        segments, _ = self.engine.model().transcribe(samples, **sequential_options(self.settings))
        return {"text": "".join(segment.text for segment in segments).strip()}


class LambdaEntry:
    """``handler.app.lambda_handler`` fed API Gateway v2 events, as Lambda would."""

    def __init__(self) -> None:
        started = time.perf_counter()
        from handler.app import lambda_handler

        self.import_seconds = time.perf_counter() - started
        self.handler = lambda_handler

    def invoke(self, event: Job) -> Job:
        from bench.events import LambdaContext

        return dict(self.handler(event, LambdaContext()))

    def transcribe(self, job: Job) -> Job:
        from bench.events import transcription_event
        from bench.texts import transcript_text

        response_format = job.get("response_format", "json")
        fields = {"response_format": response_format}
        event = transcription_event(Path(job["path"]), job["secret"], fields)
        started = time.perf_counter()
        response = self.invoke(event)
        seconds = time.perf_counter() - started
        body = str(response.get("body") or "")
        if response["statusCode"] != 200:
            raise RuntimeError(f"lambda_handler answered {response['statusCode']}: {body[:300]}")
        headers = response.get("headers") or {}
        return {
            "text": transcript_text(response_format, body),
            "seconds": seconds,
            "processing_ms": float(headers.get("openai-processing-ms", "nan")),
        }

    def attribute(self, job: Job) -> Job:
        """Where the service's own time goes: routing, auth, decoding (no model)."""
        from faster_whisper import decode_audio as engine_decode

        from bench.events import http_api_event
        from handler.audio import decode_audio

        auth = {"authorization": f"Bearer {job['secret']}"}
        path = Path(job["path"])
        return {
            "health_ms": _best_ms(lambda: self.invoke(http_api_event("GET", "/health"))),
            "wallet_ms": _best_ms(lambda: self.invoke(http_api_event("GET", "/v1/wallet", auth))),
            "service_decode_ms": _best_ms(lambda: decode_audio(path.open("rb"), max_seconds=3600)),
            "engine_decode_ms": _best_ms(lambda: engine_decode(str(path))),
        }


def _best_ms(action: Callable[[], object], repeat: int = 5) -> float:
    """Fastest of ``repeat`` runs in ms (the least disturbed by a noisy machine)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def measured(run: Callable[[Job], Job], job: Job) -> Job:
    """Run one job with wall, CPU and peak-RSS measurements around it."""
    procstats.reset_peak_rss()
    cpu = procstats.cpu_seconds()
    started = time.perf_counter()
    result = run(job)
    result.setdefault("seconds", time.perf_counter() - started)
    result["cpu_seconds"] = procstats.cpu_seconds() - cpu
    result["peak_rss_mb"] = procstats.peak_rss_mb()
    result["rss_mb"] = procstats.rss_mb()
    return result


def reply(payload: Job) -> None:
    sys.stdout.write(PREFIX + json.dumps(payload) + "\n")
    sys.stdout.flush()


def serve(kind: str) -> None:
    """Answer jobs until stdin closes."""
    from handler.config import Settings

    settings = Settings()
    ready: Job = {"threads": settings.cpu_threads}
    if kind == "engine":
        target: Any = RawEngine(settings)
        ready["load_seconds"] = target.load_seconds
    else:
        target = LambdaEntry()
        ready["import_seconds"] = target.import_seconds
    reply({"ready": True, **ready})
    for line in sys.stdin:
        job = json.loads(line)
        try:
            operation = getattr(target, job.get("op", "transcribe"))
            reply(measured(operation, job))
        except Exception as exc:  # report, keep serving
            reply({"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    serve(sys.argv[1])
