"""The benchmark's audio: real speech from ``../shared/speech`` when present, else espeak-ng.

The shared clips are read in place and every derived file (concatenations, re-encodings)
is written to a temporary directory outside the repository, never into the project.
"""

from __future__ import annotations

import csv
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from handler.config import REPO_ROOT
from tests.support.audio import speak


def _shared_speech() -> Path:
    """``$TINYSCRIBE_SHARED_SPEECH``, else ``shared/speech`` next to the checkout or next to
    the folder holding it (a worktree)."""
    if os.environ.get("TINYSCRIBE_SHARED_SPEECH"):
        return Path(os.environ["TINYSCRIBE_SHARED_SPEECH"])
    candidates = [folder / "shared" / "speech" for folder in REPO_ROOT.parents]
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED_SPEECH = _shared_speech()
REFERENCES = SHARED_SPEECH / "references.tsv"
SHORT_CLIP = "common_voice_en_651325.mp3"  # ~2.4 s, MP3, no reference
MEDIUM_CLIP = "jfk.flac"  # 11 s
GAP_SECONDS = 0.4
FALLBACK_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack "
    "for her brother Bob.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "She can scoop these things into three red bags, and we will go meet her Wednesday "
    "at the train station.",
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow.",
)


@dataclass(frozen=True)
class Clip:
    """One recording and what was said in it (``None`` when there is no reference)."""

    path: Path
    reference: str | None
    seconds: float


@dataclass(frozen=True)
class BenchFile:
    """A file the benchmark transcribes, with what was said in it when that is known."""

    name: str
    path: Path
    seconds: float
    reference: str | None
    utterances: tuple[str, ...] = ()
    """The reference clip by clip (long files), for per-utterance recall."""


def probe_seconds(path: Path) -> float:
    """Duration from ffprobe."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def shared_speech_available() -> bool:
    """True when the real speech clips and their references are next to the project."""
    return REFERENCES.is_file()


def reference_clips(workdir: Path) -> list[Clip]:
    """Clips with a reference transcript: the shared ones, or espeak-ng sentences."""
    if shared_speech_available():
        with REFERENCES.open(newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        paths = [(SHARED_SPEECH / row["file"], row["reference"]) for row in rows]
        return [Clip(p, ref, probe_seconds(p)) for p, ref in paths if p.is_file()]
    clips = []
    for index, sentence in enumerate(FALLBACK_SENTENCES):
        path = speak(sentence, workdir / f"sentence-{index}.wav")
        clips.append(Clip(path, sentence, probe_seconds(path)))
    return clips


def _encode(inputs: list[Path], target: Path, seconds: float | None = None) -> Path:
    """Concatenate ``inputs`` with short gaps into one 16 kHz mono MP3 (64 kbit/s)."""
    graph = []
    for index in range(len(inputs)):
        graph.append(
            f"[{index}:a]aformat=sample_rates=16000:channel_layouts=mono,"
            f"apad=pad_dur={GAP_SECONDS}[a{index}]"
        )
    joined = "".join(f"[a{i}]" for i in range(len(inputs)))
    graph.append(f"{joined}concat=n={len(inputs)}:v=0:a=1[out]")
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    for path in inputs:
        command += ["-i", str(path)]
    command += ["-filter_complex", ";".join(graph), "-map", "[out]"]
    if seconds is not None:
        command += ["-t", f"{seconds}"]
    command += ["-ac", "1", "-ar", "16000", "-c:a", "libmp3lame", "-b:a", "64k", str(target)]
    subprocess.run(command, check=True)
    return target


def _concatenation(
    clips: list[Clip], target_seconds: float, max_seconds: float
) -> tuple[list[Clip], float]:
    """Whole clips, cycled, until the total (with gaps) reaches ``target_seconds``; clips
    that would pass ``max_seconds`` are skipped."""
    chosen: list[Clip] = []
    total = 0.0
    index = misses = 0
    while total < target_seconds and misses < len(clips):
        clip = clips[index % len(clips)]
        index += 1
        longer = total + clip.seconds + GAP_SECONDS
        if longer > max_seconds:
            misses += 1
            continue
        chosen.append(clip)
        total, misses = longer, 0
    return chosen, total


def long_file(
    name: str, clips: list[Clip], target_seconds: float, workdir: Path, max_seconds: float
) -> BenchFile:
    """About ``target_seconds`` of speech built from whole reference clips (so WER is known)."""
    chosen, _total = _concatenation(clips, target_seconds, max_seconds)
    path = _encode([clip.path for clip in chosen], workdir / f"{name}.mp3")
    utterances = tuple(clip.reference or "" for clip in chosen)
    return BenchFile(name, path, probe_seconds(path), " ".join(utterances), utterances)


def short_file(name: str, path: Path, reference: str | None) -> BenchFile:
    """A single clip used as it is."""
    return BenchFile(name, path, probe_seconds(path), reference)


def bench_files(workdir: Path, long_seconds: float = 290.0) -> list[BenchFile]:
    """The four files of the benchmark: ~2 s, ~11 s, ~60 s and ``long_seconds``."""
    workdir.mkdir(parents=True, exist_ok=True)
    clips = reference_clips(workdir)
    with_reference = [clip for clip in clips if clip.reference]
    if shared_speech_available():
        short = short_file("2s", SHARED_SPEECH / SHORT_CLIP, None)
        medium_clip = next(c for c in clips if c.path.name == MEDIUM_CLIP)
        medium = short_file("11s", medium_clip.path, medium_clip.reference)
    else:
        short_path = speak(FALLBACK_SENTENCES[0], workdir / "short.wav")
        short = short_file("2s", short_path, FALLBACK_SENTENCES[0])
        medium = long_file("11s", with_reference, 10.0, workdir, 13.0)
    minute = long_file("60s", with_reference, 60.0, workdir, 62.0)
    five = long_file("5min", with_reference, long_seconds - 5, workdir, long_seconds)
    return [short, medium, minute, five]
