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


class RawEngine:
    """faster-whisper's ``WhisperModel`` with the service's model dir, threads and options."""

    def __init__(self, settings: Settings, main_thread_load: bool = False) -> None:
        from faster_whisper import WhisperModel

        from handler.engine import on_short_lived_thread

        self.settings = settings
        model_dir, threads, compute_type = (
            str(settings.model_dir),
            settings.cpu_threads,
            settings.compute_type,
        )

        def load() -> Any:
            return WhisperModel(
                model_dir,
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                local_files_only=True,
            )

        started = time.perf_counter()
        # As the service loads it (see on_short_lived_thread); the study measures the
        # difference against loading on this, the main, thread.
        self.model = load() if main_thread_load else on_short_lived_thread(load)
        self.load_seconds = time.perf_counter() - started
        self._batched: Any = None

    def transcribe(self, job: Job) -> Job:
        """Decode and transcribe as the service would for a ``json`` request: its options,
        its batching rule. For the throughput study, ``batched``, ``batch_size``,
        ``chunk_seconds`` and ``without_timestamps`` in the job override them."""
        from faster_whisper import decode_audio

        from handler.engine import batched_options, decode_options, uses_batched_pipeline
        from handler.transcript import TranscribeOptions

        overrides = {"beam_size": int(job["beam_size"])}
        if "batch_size" in job:
            overrides["batch_size"] = int(job["batch_size"])
        if "chunk_seconds" in job:
            overrides["batched_chunk_seconds"] = int(job["chunk_seconds"])
        settings = self.settings.model_copy(update=overrides)
        options = TranscribeOptions(segment_timestamps=False)
        audio = decode_audio(job["path"])
        kwargs = decode_options(settings, options)
        batched = job.get("batched", uses_batched_pipeline(settings, len(audio) / 16_000, options))
        if batched:
            if self._batched is None:
                from faster_whisper import BatchedInferencePipeline

                self._batched = BatchedInferencePipeline(model=self.model)
            pipeline_options = batched_options(settings)
            if "without_timestamps" in job:
                pipeline_options["without_timestamps"] = bool(job["without_timestamps"])
            segments, _ = self._batched.transcribe(audio, **kwargs, **pipeline_options)
        else:
            segments, _ = self.model.transcribe(audio, **kwargs)
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

        event = transcription_event(Path(job["path"]), job["secret"])
        started = time.perf_counter()
        response = self.invoke(event)
        seconds = time.perf_counter() - started
        body = json.loads(response["body"]) if response.get("body") else {}
        if response["statusCode"] != 200:
            raise RuntimeError(f"lambda_handler answered {response['statusCode']}: {body}")
        headers = response.get("headers") or {}
        return {
            "text": str(body.get("text", "")).strip(),
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
    if kind in ("engine", "engine-main-thread"):
        target: Any = RawEngine(settings, main_thread_load=kind == "engine-main-thread")
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
