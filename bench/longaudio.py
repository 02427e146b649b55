"""Long audio in every response format: accuracy against faster-whisper's sequential beam
search on the same file, and speed per format.

Every long file (the 60 s and 5 min concatenations, the meetings, the recordings of
``../shared/speech-long``) goes through ``tinyscribe serve`` once per format; the text of
each response is scored against the file's utterances (WER, per-utterance recall), beside
the reference decoding of the same file (computed once, see :mod:`bench.reference`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import reference
from bench.accuracy import score
from bench.corpus import BenchFile, Clip
from bench.longform import LongFile, Utterance, available, issue_meeting, meeting, recordings
from bench.metrics import corpus_wer
from bench.processes import LocalStack, Server, Worker
from handler.config import Settings

Row = dict[str, Any]
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MEETINGS = ((1, 1), (3, 2), (5, 3), (10, 4))
"""(minutes, seed) of the meetings, besides issue 13's."""
LIMITS = {
    "TINYSCRIBE_MAX_SYNC_AUDIO_SECONDS": "3600",
    "TINYSCRIBE_MAX_UPLOAD_BYTES": str(64 * 1024 * 1024),
}
"""The 10 minute meeting is over the synchronous limits; the server measured here has them
raised (the decoding does not depend on them)."""


def long_files(scratch: Path, files: list[BenchFile]) -> list[LongFile]:
    """The 60 s and 5 min files, the meetings and the recordings (when the shared speech is
    there; else only the two concatenations of espeak-ng sentences)."""
    found = [
        LongFile(f.name, f.path, f.seconds, tuple(Utterance(u) for u in f.utterances), "clips")
        for f in files
        if f.utterances
    ]
    if available():
        found.append(issue_meeting(scratch))
        found += [meeting(f"meeting-{m}min", m, seed, scratch) for m, seed in MEETINGS]
        found += recordings()
    return found


def reference_texts(paths: list[Path], threads: int) -> dict[Path, str]:
    """The sequential beam-5 decoding of each file, from the cache or decoded now."""
    settings = Settings(cpu_threads=threads)
    texts = {path: reference.cached(path, settings) for path in paths}
    missing = [path for path, text in texts.items() if text is None]
    if missing:
        worker = Worker("engine", threads)
        try:
            for path in missing:
                run = worker.run(op="reference", path=str(path))
                reference.store(path, settings, run["text"], run["seconds"])
                texts[path] = run["text"]
                print(f"  reference {path.name}: {run['seconds']:.1f} s", flush=True)
        finally:
            worker.close()
    return {path: text or "" for path, text in texts.items()}


def accuracy(
    stack: LocalStack,
    files: list[LongFile],
    clips: list[Clip],
    references: dict[Path, str],
    threads: int,
) -> Row:
    """Every long file in every format through ``tinyscribe serve``, scored; and the
    reference clips one by one (json), against the reference decoding of each."""
    server = Server(threads, stack.secret, **LIMITS)
    rows: list[Row] = []
    try:
        server.transcribe(files[0].path)  # warm-up
        for long_file in files:
            utterances = [u.text for u in long_file.utterances]
            baseline = score(utterances, references[long_file.path])
            for response_format in FORMATS:
                run = server.transcribe(long_file.path, response_format)
                measured = score(utterances, run["text"])
                rows.append(
                    {
                        "file": long_file.name,
                        "kind": long_file.kind,
                        "audio_seconds": long_file.seconds,
                        "utterances": measured.utterances,
                        "format": response_format,
                        "seconds": run["seconds"],
                        "rtf": long_file.seconds / run["seconds"],
                        "peak_rss_mb": run["peak_rss_mb"],
                        "wer": measured.wer,
                        "recall": measured.recall,
                        "missing": list(measured.missing),
                        "reference_wer": baseline.wer,
                        "reference_recall": baseline.recall,
                        "reference_missing": list(baseline.missing),
                    }
                )
                print(
                    f"  {long_file.name:>16} {response_format:<12} WER {measured.wer:.3f} "
                    f"(sequential {baseline.wer:.3f}) recall {measured.recall:.3f} "
                    f"({baseline.recall:.3f}) {rows[-1]['rtf']:5.1f}x",
                    flush=True,
                )
        streaming = [streamed(server, f) for f in files if f.name in ("60s", "5min")]
        texts = [server.transcribe(clip.path)["text"] for clip in clips]
    finally:
        server.close()
    truth = [clip.reference or "" for clip in clips]
    return {
        "rows": rows,
        "streaming": streaming,
        "clips": {
            "count": len(clips),
            "wer": corpus_wer(truth, texts),
            "reference_wer": corpus_wer(truth, [references[clip.path] for clip in clips]),
        },
    }


def streamed(server: Server, long_file: LongFile) -> Row:
    """The file streamed (json, ``stream=true``) beside the same request not streamed, on the
    same server one after the other: when the first words reach the client, and the cost of
    streaming in total time."""
    plain = server.transcribe(long_file.path)
    run = server.stream(long_file.path)
    row = {
        "file": long_file.name,
        "audio_seconds": long_file.seconds,
        "first_delta_seconds": run["first_delta_seconds"],
        "seconds": run["seconds"],
        "plain_seconds": plain["seconds"],
    }
    print(
        f"  {long_file.name:>16} stream: first delta {run['first_delta_seconds']:.2f} s, "
        f"done {run['seconds']:.2f} s (not streamed {plain['seconds']:.2f} s)",
        flush=True,
    )
    return row


def formats_one_thread(stack: LocalStack, files: list[BenchFile], env: dict[str, str]) -> list[Row]:
    """The 60 s and 5 min files in every format through the Lambda entry point, one thread
    pinned to one core (Lambda at 1,769 MB)."""
    worker = Worker("lambda", 1, "0", **env)
    rows = []
    try:
        worker.run(path=str(files[0].path), secret=stack.secret)  # warm-up
        for bench_file in files:
            for response_format in FORMATS:
                started = time.perf_counter()
                run = worker.run(
                    path=str(bench_file.path),
                    secret=stack.secret,
                    response_format=response_format,
                )
                rows.append(
                    {
                        "file": bench_file.name,
                        "format": response_format,
                        "seconds": run.get("seconds", time.perf_counter() - started),
                        "rtf": bench_file.seconds / run["seconds"],
                        "peak_rss_mb": run["peak_rss_mb"],
                    }
                )
                print(
                    f"  [1 thr] {bench_file.name:>5} {response_format:<12} {rows[-1]['rtf']:5.1f}x",
                    flush=True,
                )
    finally:
        worker.close()
    return rows
