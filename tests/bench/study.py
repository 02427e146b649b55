"""Throughput study behind the engine's defaults: beam size, batched vs sequential
decoding, batch size, and weights stored as int8 instead of quantized at load."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from handler.config import Settings
from layers.quantize import quantize_model_dir
from tests.bench.corpus import BenchFile, Clip
from tests.bench.metrics import corpus_wer, median
from tests.bench.processes import Worker

Row = dict[str, Any]
# (label, batched, batch_size, beam_size) for the long files.
DECODING_CONFIGS = (
    ("sequential beam 5", False, 1, 5),
    ("sequential beam 1", False, 1, 1),
    ("batched 4 beam 5", True, 4, 5),
    ("batched 8 beam 5", True, 8, 5),
    ("batched 4 beam 1", True, 4, 1),
    ("batched 8 beam 1", True, 8, 1),
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
            for label, batched, batch_size, beam in DECODING_CONFIGS:
                run = worker.run(
                    path=str(bench_file.path),
                    beam_size=beam,
                    batched=batched,
                    batch_size=batch_size,
                )
                rows.append(
                    {
                        "file": bench_file.name,
                        "config": label,
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
        for label, *_ in DECODING_CONFIGS:
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


def int8_study(clips: list[Clip], threads: int, reps: int = 3) -> Row:
    """Load time, size and accuracy of weights stored int8 vs float16 quantized at load."""
    source = Path(Settings().model_dir)
    with tempfile.TemporaryDirectory(prefix="tinyscribe-int8-") as scratch:
        target = quantize_model_dir(source, Path(scratch) / "whisper-tiny-en-int8")
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


def _clips_wer(worker: Worker, clips: list[Clip]) -> float:
    texts = [
        worker.run(path=str(c.path), beam_size=5, batched=False, batch_size=1)["text"]
        for c in clips
    ]
    return corpus_wer([clip.reference or "" for clip in clips], texts)
