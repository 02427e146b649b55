"""``make bench``: raw engine vs the full service, side by side, and long-audio accuracy.

Three long-lived processes each hold the model, as a warm Lambda would: the raw engine
(``handler.engine.Engine`` alone, with the service's settings), the Lambda entry point fed
API Gateway v2 events, and ``tinyscribe serve`` over HTTP against DynamoDB Local with a real
key. Jobs are interleaved (the order of the modes rotates every repetition) so a noisy
neighbour slows all of them alike. Then the same at one thread on one core (Lambda <=
1,769 MB), every response format on the long files (speed, and accuracy against
faster-whisper's sequential beam search of the same file), and cold starts. Writes
``docs/bench/results.json``, ``docs/bench/RESULTS.md`` and ``docs/bench/throughput.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import longaudio, markdown, report
from bench.corpus import BenchFile, bench_files, reference_clips
from bench.metrics import corpus_wer, median
from bench.processes import (
    BENCH_PYTHON,
    LocalStack,
    Server,
    Worker,
    bench_env,
    local_stack,
    measuring_python,
)
from bench.worker import PREFIX
from handler.config import REPO_ROOT, Settings

Row = dict[str, Any]
MODES = ("engine", "lambda", "http")
# Repetitions per file, as multiples of --reps: short files are cheap and noisier.
REPS_FACTOR = {"2s": 4, "11s": 2, "60s": 1, "5min": 1}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the long files")
    parser.add_argument("--reps-1thread", type=int, default=1, help="repetitions at 1 thread")
    parser.add_argument("--cold-reps", type=int, default=3)
    parser.add_argument("--long-seconds", type=float, default=290.0, help="the '5 min' file")
    parser.add_argument(
        "--long-files",
        help="comma-separated names: only these long files in the accuracy runs (development)",
    )
    parser.add_argument(
        "--no-accuracy",
        action="store_true",
        help="skip the long-audio accuracy and per-format runs (about 5 minutes)",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "bench")
    parser.add_argument(
        "--runtime-python",
        help="interpreter for the measured processes (make bench: the runtime-only venv)",
    )
    return parser.parse_args(argv)


def service_env(long_seconds: float) -> dict[str, str]:
    """Raise the synchronous limits only when the long file would not fit them."""
    if long_seconds <= Settings().max_sync_audio_seconds - 5:
        return {}
    return {
        "TINYSCRIBE_MAX_SYNC_AUDIO_SECONDS": str(long_seconds + 10),
        "TINYSCRIBE_MAX_UPLOAD_BYTES": str(64 * 1024 * 1024),
    }


class Runners:
    """One measuring process per mode, all with the same threads and CPUs."""

    def __init__(
        self, modes: Sequence[str], threads: int, cpus: str | None, secret: str, env: dict[str, str]
    ) -> None:
        self.settings = Settings(cpu_threads=threads)
        self.secret = secret
        self.runners: dict[str, Any] = {}
        for mode in modes:
            if mode == "http":
                self.runners[mode] = Server(threads, secret, cpus, **env)
            else:
                self.runners[mode] = Worker(mode, threads, cpus, **env)

    def run(self, mode: str, bench_file: BenchFile) -> Row:
        """Transcribe ``bench_file`` once through ``mode``."""
        runner = self.runners[mode]
        if mode == "http":
            return dict(runner.transcribe(bench_file.path))
        if mode == "lambda":
            return dict(runner.run(path=str(bench_file.path), secret=self.secret))
        return dict(runner.run(path=str(bench_file.path)))

    def close(self) -> None:
        for runner in self.runners.values():
            runner.close()


def side_by_side(
    files: list[BenchFile],
    stack: LocalStack,
    *,
    threads: int,
    cpus: str | None,
    modes: Sequence[str],
    reps: int,
    env: dict[str, str],
    extra: Callable[[Runners], Row] | None = None,
) -> tuple[list[Row], Row]:
    """Every file through every mode, interleaved; returns the raw runs (and ``extra``)."""
    runners = Runners(modes, threads, cpus, stack.secret, env)
    rows: list[Row] = []
    extra_result: Row = {}
    try:
        for mode in modes:  # warm-up: first request of a process is not a warm request
            runners.run(mode, files[0])
        for rep in range(reps * max(REPS_FACTOR.values())):
            order = list(modes[rep % len(modes) :]) + list(modes[: rep % len(modes)])
            for bench_file in files:
                if rep >= reps * REPS_FACTOR.get(bench_file.name, 1):
                    continue
                for mode in order:
                    run = runners.run(mode, bench_file)
                    run["load1"] = os.getloadavg()[0]  # neighbours' load, for the record
                    rows.append({"file": bench_file.name, "mode": mode, "rep": rep, **run})
                    _progress(threads, bench_file.name, mode, run)
        if extra is not None:
            extra_result = extra(runners)
    finally:
        runners.close()
    return rows, extra_result


def _progress(threads: int, name: str, mode: str, run: Row) -> None:
    print(
        f"  [{threads} thr] {name:>5} {mode:<6} {run['seconds']:7.3f} s "
        f"peak {run['peak_rss_mb']:5.0f} MB",
        flush=True,
    )


def summarise(rows: list[Row], files: list[BenchFile], threads: int) -> list[Row]:
    """Per file and mode: medians, real-time factor, peak RSS, WER; and the paired
    service/engine ratio and overhead (each service run against the engine run of the
    same repetition, which ran next to it)."""
    summary = []
    for bench_file in files:
        engine_by_rep = {
            r["rep"]: r for r in rows if r["file"] == bench_file.name and r["mode"] == "engine"
        }
        for mode in MODES:
            runs = [r for r in rows if r["file"] == bench_file.name and r["mode"] == mode]
            if not runs:
                continue
            seconds = [r["seconds"] for r in runs]
            row: Row = {
                "threads": threads,
                "file": bench_file.name,
                "mode": mode,
                "audio_seconds": bench_file.seconds,
                "runs": len(runs),
                "median_seconds": median(seconds),
                "min_seconds": min(seconds),
                "rtf": bench_file.seconds / median(seconds),
                "cpu_seconds": median([r["cpu_seconds"] for r in runs]),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "wer": corpus_wer([bench_file.reference], [runs[0]["text"]])
                if bench_file.reference
                else None,
            }
            paired = [
                (r["seconds"], engine_by_rep[r["rep"]]["seconds"])
                for r in runs
                if r["rep"] in engine_by_rep
            ]
            if mode != "engine" and paired:
                row["ratio"] = median([s / e for s, e in paired])
                row["overhead_ms"] = median([(s - e) * 1000 for s, e in paired])
            if "processing_ms" in runs[0]:
                row["processing_ms"] = median([r["processing_ms"] for r in runs])
            summary.append(row)
    return summary


def lambda_like(threads: int = 2) -> dict[str, str]:
    """What Lambda's runtime sets that the service reacts to (the model starts loading in
    the init phase); tracing off (no X-Ray daemon here) and the local model layer."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": "tinyscribe-bench",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "TINYSCRIBE_MODEL_DIR": str(Settings().model_dir),
        "TINYSCRIBE_CPU_THREADS": str(threads),
    }


def cold_starts(bench_file: BenchFile, secret: str, reps: int, env: dict[str, str]) -> Row:
    """New process to first transcript, engine and service alternating, both with Lambda's
    environment."""
    runs: dict[str, list[Row]] = {"engine": [], "lambda": []}
    for _ in range(reps):
        for kind in runs:
            started = time.perf_counter()
            done = subprocess.run(
                [measuring_python(), "-m", "bench.cold", kind, str(bench_file.path), secret],
                cwd=REPO_ROOT,
                env=bench_env(threads=None, **env, **lambda_like()),
                capture_output=True,
                text=True,
                check=True,
            )
            line = next(x for x in done.stdout.splitlines() if x.startswith(PREFIX))
            result = json.loads(line[len(PREFIX) :])
            result["process_seconds"] = time.perf_counter() - started
            runs[kind].append(result)
            print(f"  cold {kind:<6} {result['total']:.3f} s", flush=True)
    phases = ("import", "load", "first_request", "total", "process_seconds", "peak_rss_mb")
    summary: Row = {
        kind: {phase: median([r[phase] for r in results]) for phase in phases}
        for kind, results in runs.items()
    }
    summary["ratio"] = summary["lambda"]["total"] / summary["engine"]["total"]
    summary["reps"] = reps
    return summary


def attribution(bench_file: BenchFile) -> Callable[[Runners], Row]:
    """Where the service's own milliseconds go, measured in the warm Lambda worker."""

    def measure(runners: Runners) -> Row:
        worker = runners.runners["lambda"]
        return dict(worker.run(op="attribute", path=str(bench_file.path), secret=runners.secret))

    return measure


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.runtime_python:
        os.environ[BENCH_PYTHON] = str(Path(args.runtime_python).absolute())
    env = service_env(args.long_seconds)
    with tempfile.TemporaryDirectory(prefix="tinyscribe-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        files = bench_files(scratch, args.long_seconds)
        long_files = longaudio.long_files(scratch, files) if not args.no_accuracy else []
        if args.long_files:
            wanted = set(args.long_files.split(","))
            long_files = [f for f in long_files if f.name in wanted]
        clips = [clip for clip in reference_clips(scratch) if clip.reference]
        print("files: " + ", ".join(f"{f.name}={f.seconds:.1f}s" for f in files), flush=True)
        references = {}
        if long_files:
            print("reference decodings (sequential beam 5, cached)", flush=True)
            paths = [f.path for f in long_files] + [clip.path for clip in clips]
            references = longaudio.reference_texts(paths, threads=1)
        accuracy: Row = {}
        formats1: list[Row] = []
        with local_stack() as stack:
            print("2 threads, engine / lambda / http", flush=True)
            rows2, attributed = side_by_side(
                files,
                stack,
                threads=2,
                cpus=None,
                modes=MODES,
                reps=args.reps,
                env=env,
                extra=attribution(files[0]),
            )
            print("1 thread on CPU 0 (Lambda <= 1769 MB), engine / lambda", flush=True)
            rows1, _ = side_by_side(
                files,
                stack,
                threads=1,
                cpus="0",
                modes=("engine", "lambda"),
                reps=args.reps_1thread,
                env=env,
            )
            if long_files:
                print("long audio, every format, 2 threads (HTTP)", flush=True)
                accuracy = longaudio.accuracy(stack, long_files, clips, references, threads=2)
                print("every format, 1 thread on CPU 0 (Lambda entry point)", flush=True)
                timed = [f for f in files if f.name in ("60s", "5min")]
                formats1 = longaudio.formats_one_thread(stack, timed, env)
            print("cold starts", flush=True)
            cold = cold_starts(files[0], stack.secret, args.cold_reps, env)
    results = report.assemble(
        files=files,
        summary=summarise(rows2, files, 2) + summarise(rows1, files, 1),
        runs=rows2 + rows1,
        attribution=attributed,
        cold=cold,
        accuracy=accuracy,
        formats_one_thread=formats1,
        settings=Settings(),
        bench_seconds=time.perf_counter() - started,
    )
    report.write(results, args.out)
    print()
    print(markdown.targets_section(results))
    print()
    print(markdown.warm_section(results))
    print()
    print(markdown.long_audio_section(results))
    print()
    print(
        f"wrote {args.out}/results.json, RESULTS.md, throughput.png "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
