"""Cold start: a fresh process from nothing to its first transcript, phase by phase.

``python -m bench.cold engine FILE`` imports faster-whisper, loads the model and
transcribes FILE; ``python -m bench.cold lambda FILE SECRET`` imports
``handler.app`` (Lambda's init phase) and sends FILE through ``lambda_handler`` in an
API Gateway v2 event (the first invocation, which loads the model lazily). Prints one
``@@ {json}`` line with the phases in seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import procstats
from bench.worker import PREFIX


def cold_engine(path: Path) -> dict[str, Any]:
    """Import, load and first transcript of faster-whisper alone (its own sequential
    decoding, the service's model, threads and beam): the floor the service's cold start
    is measured against."""
    started = time.perf_counter()
    from faster_whisper import WhisperModel

    imported = time.perf_counter()
    from bench.reference import sequential_options
    from handler.config import Settings
    from handler.engine import on_short_lived_thread

    settings = Settings()
    settings_seconds = time.perf_counter() - imported
    loading = time.perf_counter()
    model = on_short_lived_thread(
        lambda: WhisperModel(
            str(settings.model_dir),
            device="cpu",
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads,
            local_files_only=True,
        )
    )
    loaded = time.perf_counter()
    segments, _ = model.transcribe(str(path), **sequential_options(settings))
    text = "".join(segment.text for segment in segments).strip()
    done = time.perf_counter()
    return {
        "import": imported - started,
        "load": loaded - loading,
        "first_request": done - loaded,
        "total": done - started - settings_seconds,
        "text": text,
    }


def cold_lambda(path: Path, secret: str) -> dict[str, Any]:
    """Lambda init (import ``handler.app``) then the first invocation, split by the engine's
    own load timer (faster-whisper import + model load happen lazily inside it)."""
    from bench.events import LambdaContext, transcription_event

    event = transcription_event(path, secret)
    started = time.perf_counter()
    from handler.app import engine as process_engine
    from handler.app import lambda_handler

    imported = time.perf_counter()
    response = lambda_handler(event, LambdaContext())
    done = time.perf_counter()
    if response["statusCode"] != 200:
        raise RuntimeError(f"first invocation answered {response['statusCode']}")
    engine = process_engine()  # the one the handler's services hold
    load = float(engine.load_seconds or 0.0)
    first = done - imported
    return {
        "import": imported - started,
        "load": load,
        "first_request": first - load,
        "total": done - started,
        "text": json.loads(response["body"])["text"],
    }


def main(argv: list[str]) -> None:
    kind, path = argv[0], Path(argv[1])
    result = cold_engine(path) if kind == "engine" else cold_lambda(path, argv[2])
    result["peak_rss_mb"] = procstats.peak_rss_mb()
    sys.stdout.write(PREFIX + json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
