"""Turn the measurements into ``results.json``, ``RESULTS.md`` and ``throughput.png``."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypedDict

from bench.corpus import BenchFile, shared_speech_available
from bench.metrics import (
    MEMORY_CANDIDATES_MB,
    REFERENCE_PRICE_PER_MINUTE,
    SYNC_BUDGET_SECONDS,
    Timing,
    cheapest_memory,
    cost_per_audio_minute,
    lambda_seconds,
    memory_table,
)
from handler.config import REPO_ROOT, Settings

Row = dict[str, Any]
DEFAULT_MEMORY_MB = 2048
# "Well under" the 30 s synchronous budget for the 60 s file: at most half of it.
SIXTY_SECOND_BUDGET = SYNC_BUDGET_SECONDS / 2
TARGET_COST_PER_MINUTE = 0.0001


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def template_memory_mb(template: Path = REPO_ROOT / "template.yaml") -> int:
    """``Parameters.MemorySize.Default`` of the SAM template, else 2048."""
    if not template.is_file():
        return DEFAULT_MEMORY_MB
    found = re.search(
        r"^  MemorySize:\s*\n(?:^    (?:\w+:|#).*\n)*?^    Default:\s*(\d+)",
        template.read_text(),
        flags=re.MULTILINE,
    )
    return int(found.group(1)) if found else DEFAULT_MEMORY_MB


def _row(summary: list[Row], threads: int, file: str, mode: str) -> Row:
    return next(
        r for r in summary if r["threads"] == threads and r["file"] == file and r["mode"] == mode
    )


class FileCost(TypedDict):
    """One file's Lambda cost: its timings, every memory's row, the template's memory."""

    timing: dict[str, float]
    table: list[dict[str, float]]
    template: dict[str, float]


def cost_section(summary: list[Row], files: list[BenchFile]) -> Row:
    """Lambda cost per audio minute of the service (Lambda entry point) at every memory."""
    memory = template_memory_mb()
    per_file: dict[str, FileCost] = {}
    for bench_file in files:
        two = _row(summary, 2, bench_file.name, "lambda")
        one = _row(summary, 1, bench_file.name, "lambda")
        timing = Timing(
            bench_file.seconds, one["median_seconds"], two["median_seconds"], two["cpu_seconds"]
        )
        seconds = lambda_seconds(timing, memory)
        per_file[bench_file.name] = {
            "timing": timing.__dict__,
            "table": memory_table(timing),
            "template": {
                "memory_mb": memory,
                "seconds": seconds,
                "x86_64": cost_per_audio_minute(seconds, bench_file.seconds, memory, "x86_64"),
                "arm64": cost_per_audio_minute(seconds, bench_file.seconds, memory, "arm64"),
            },
        }
    best = cheapest_memory(per_file["60s"]["table"], SIXTY_SECOND_BUDGET)
    long_at_best = next(r for r in per_file["5min"]["table"] if r["memory_mb"] == best["memory_mb"])
    return {
        "template_memory_mb": memory,
        "reference_price_per_minute": REFERENCE_PRICE_PER_MINUTE,
        "files": per_file,
        "recommended": {**best, "five_minute_seconds": long_at_best["seconds"]},
    }


def targets(summary: list[Row], cold: Row, cost: Row, accuracy: Row) -> list[Row]:
    """The issues' targets, each with the measured value and whether it is met."""
    http60, lambda60 = _row(summary, 2, "60s", "http"), _row(summary, 2, "60s", "lambda")
    http2, lambda2 = _row(summary, 2, "2s", "http"), _row(summary, 2, "2s", "lambda")
    long_rows = [_row(summary, 2, "5min", mode) for mode in ("engine", "lambda", "http")]
    template = cost["files"]["60s"]["template"]
    recommended = cost["recommended"]
    checks: list[tuple[str, float, str, float]] = [
        ("60 s file end-to-end / raw engine (HTTP)", http60["ratio"], "<= 1.10", 1.10),
        ("60 s file end-to-end / raw engine (Lambda)", lambda60["ratio"], "<= 1.10", 1.10),
        ("2 s clip overhead, ms (HTTP)", http2["overhead_ms"], "< 50", 50),
        ("2 s clip overhead, ms (Lambda)", lambda2["overhead_ms"], "< 50", 50),
        ("cold start / raw import+load+first transcript", cold["ratio"], "<= 1.3", 1.3),
        ("5 min file, x real time (raw engine, 2 threads, json)", long_rows[0]["rtf"], ">= 30", 30),
        ("5 min file peak RSS, MB (Lambda process)", long_rows[1]["peak_rss_mb"], "< 700", 700),
        ("5 min file peak RSS, MB (HTTP server)", long_rows[2]["peak_rss_mb"], "< 700", 700),
        (
            f"$/audio min x86 at the template's {template['memory_mb']} MB (60 s file)",
            template["x86_64"],
            "<= 0.0001",
            TARGET_COST_PER_MINUTE,
        ),
        (
            "template MemorySize, MB: the cheapest with the 60 s file under "
            f"{SIXTY_SECOND_BUDGET:g} s",
            template["memory_mb"],
            f"== {recommended['memory_mb']}",
            recommended["memory_mb"],
        ),
    ]
    rows = accuracy.get("rows", [])
    if rows:
        five = [r for r in rows if r["file"] == "5min"]
        meetings = [r for r in rows if r["kind"] == "meeting"]
        checks += [
            (
                "5 min file, x real time, slowest format (HTTP, 2 threads)",
                min(r["rtf"] for r in five),
                ">= 30",
                30,
            ),
            (
                "long files: worst WER - sequential beam 5's, any file and format",
                max(r["wer"] - r["reference_wer"] for r in rows),
                "<= 0.005",
                0.005,
            ),
            (
                "meetings: lowest per-utterance recall, any format",
                min(r["recall"] for r in meetings),
                ">= 1.0",
                1.0,
            ),
            (
                "long files: worst recall - sequential beam 5's, any file and format",
                min(r["recall"] - r["reference_recall"] for r in rows),
                ">= 0",
                0,
            ),
            (
                "reference clips: WER - sequential beam 5's",
                accuracy["clips"]["wer"] - accuracy["clips"]["reference_wer"],
                "<= 0",
                0,
            ),
        ]
    return [
        {"target": name, "value": value, "threshold": text, "met": _met(text, value, limit)}
        for name, value, text, limit in checks
    ]


def _met(text: str, value: float, limit: float) -> bool:
    if text.startswith("=="):
        return value == limit
    if text.startswith(">="):
        return value >= limit
    if text.startswith("<="):
        return value <= limit
    return value < limit


def measured_with() -> str:
    """Which environment the measured processes ran in."""
    from bench.processes import measuring_python

    python = measuring_python()
    if python == sys.executable:
        return "the development venv (dev tools installed)"
    return f"{python}: the Lambda image's dependencies only"


def assemble(
    *,
    files: list[BenchFile],
    summary: list[Row],
    runs: list[Row],
    attribution: Row,
    cold: Row,
    accuracy: Row,
    formats_one_thread: list[Row],
    settings: Settings,
    bench_seconds: float,
) -> Row:
    """Everything measured, in one JSON-ready document."""
    cost = cost_section(summary, files)
    return {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "measured_with": measured_with(),
            "faster_whisper": version("faster-whisper"),
            "ctranslate2": version("ctranslate2"),
            "speech": "../shared/speech" if shared_speech_available() else "espeak-ng",
            "bench_seconds": bench_seconds,
            "settings": {
                "beam_size": settings.beam_size,
                "batch_size": settings.batch_size,
                "window_seconds": settings.window_seconds,
                "lookahead_seconds": settings.lookahead_seconds,
                "context_max_pause_seconds": settings.context_max_pause_seconds,
                "compute_type": settings.compute_type,
            },
        },
        "files": [
            {
                "name": f.name,
                "seconds": f.seconds,
                "source": f.path.name,
                "reference": bool(f.reference),
            }
            for f in files
        ],
        "summary": summary,
        "attribution_ms": attribution,
        "cold_start": cold,
        "cost": cost,
        "targets": targets(summary, cold, cost, accuracy),
        "accuracy": accuracy,
        "formats_one_thread": formats_one_thread,
        "runs": [{k: v for k, v in run.items() if k != "text"} for run in runs],
    }


def write(results: Row, out: Path) -> None:
    """``results.json``, ``RESULTS.md`` and ``throughput.png`` in ``out``."""
    from bench.markdown import render
    from bench.plot import plot

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "RESULTS.md").write_text(render(results))
    plot(results, out / "throughput.png")


__all__ = ["MEMORY_CANDIDATES_MB", "assemble", "write"]
