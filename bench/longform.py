"""Long audio with known utterances: meetings built from ``../shared/speech`` and the
recordings of ``../shared/speech-long``.

A meeting is a random sequence of turns by the clips' four speakers (JFK, a LibriSpeech
reader, the LJ Speech reader, an AMI participant): a turn is one or two different clips of
the same speaker, turns are separated by 0.3-3 s of silence, so there are short turns
(1.5 s) and long ones (22 s). A turn never says the same clip twice in a row (nobody does,
and Whisper merges verbatim repeats). Every clip transcribes correctly on its own (WER 0
to 0.05 with beam 5), so a sentence missing from a meeting's transcript is the long-audio
path's loss. Files are written to a scratch directory, never into the project.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.corpus import SHARED_SPEECH
from handler.audio import SAMPLE_RATE, decode_audio

SHARED_LONG = SHARED_SPEECH.parent / "speech-long"
PAUSE_SECONDS = (0.3, 3.0)
CLIPS_PER_TURN = (1, 2)
GAP_INSIDE_TURN_SECONDS = (0.15, 0.5)
"""Between two clips of one turn: the speaker draws breath."""
SPEAKERS = {
    "jfk.flac": "jfk",
    "2412-153948-0000.flac": "libri-2412",
    "2412-153948-0001.flac": "libri-2412",
    "LJ002-0020.wav": "lj",
    "LJ002-0035.wav": "lj",
    "ES2011a.Headset-0-40s-46s.wav": "ami",
}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Utterance:
    """A sentence (or clip) of the reference, and where it lies in the file when known."""

    text: str
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class LongFile:
    """A long file and what was said in it, utterance by utterance."""

    name: str
    path: Path
    seconds: float
    utterances: tuple[Utterance, ...]
    kind: str
    """``meeting`` (built from clips that each transcribe correctly alone) or ``recording``."""

    @property
    def reference(self) -> str:
        return " ".join(u.text for u in self.utterances)


def _references(folder: Path) -> dict[str, str]:
    with (folder / "references.tsv").open(newline="") as handle:
        return {row["file"]: row["reference"] for row in csv.DictReader(handle, delimiter="\t")}


def available() -> bool:
    """True when the shared clips are next to the project."""
    return (SHARED_SPEECH / "references.tsv").is_file()


def meeting(name: str, minutes: float, seed: int, workdir: Path) -> LongFile:
    """About ``minutes`` of a meeting (see the module's docstring), written as FLAC."""
    rng = random.Random(seed)
    references = _references(SHARED_SPEECH)
    clips = {
        file: decode_audio(str(SHARED_SPEECH / file), max_seconds=60).samples
        for file in SPEAKERS
        if file in references
    }
    by_speaker: dict[str, list[str]] = {}
    for file in clips:
        by_speaker.setdefault(SPEAKERS[file], []).append(file)
    parts: list[np.ndarray] = []
    utterances: list[Utterance] = []
    position = 0
    previous = None
    while position < minutes * 60 * SAMPLE_RATE:
        speaker = rng.choice([s for s in by_speaker if s != previous])
        previous = speaker
        count = min(rng.randint(*CLIPS_PER_TURN), len(by_speaker[speaker]))
        for index, file in enumerate(rng.sample(by_speaker[speaker], count)):
            gap = rng.uniform(*(GAP_INSIDE_TURN_SECONDS if index else PAUSE_SECONDS))
            if parts or index:
                parts.append(np.zeros(round(gap * SAMPLE_RATE), dtype=np.float32))
                position += len(parts[-1])
            parts.append(clips[file])
            start = position / SAMPLE_RATE
            position += len(clips[file])
            utterances.append(Utterance(references[file], start, position / SAMPLE_RATE))
    samples = np.concatenate(parts)
    path = _write_flac(workdir / f"{name}.flac", samples)
    return LongFile(name, path, len(samples) / SAMPLE_RATE, tuple(utterances), "meeting")


def issue_meeting(workdir: Path) -> LongFile:
    """The 90 s meeting of issue 13: four speakers, each clip twice, 1.5 s between turns."""
    references = _references(SHARED_SPEECH)
    order = ["jfk.flac", "2412-153948-0000.flac", "ES2011a.Headset-0-40s-46s.wav"]
    order += ["LJ002-0020.wav"]
    order = order + order
    parts: list[np.ndarray] = []
    utterances: list[Utterance] = []
    position = 0
    for file in order:
        if parts:
            parts.append(np.zeros(round(1.5 * SAMPLE_RATE), dtype=np.float32))
            position += len(parts[-1])
        clip = decode_audio(str(SHARED_SPEECH / file), max_seconds=60).samples
        parts.append(clip)
        utterances.append(
            Utterance(
                references[file], position / SAMPLE_RATE, (position + len(clip)) / SAMPLE_RATE
            )
        )
        position += len(clip)
    samples = np.concatenate(parts)
    path = _write_flac(workdir / "meeting-issue13.flac", samples)
    return LongFile(
        "meeting-issue13", path, len(samples) / SAMPLE_RATE, tuple(utterances), "meeting"
    )


def recordings() -> list[LongFile]:
    """``../shared/speech-long``: sentences of the published texts (clips for LJ Speech,
    from its ``.segments.tsv``)."""
    if not (SHARED_LONG / "references.tsv").is_file():
        return []
    files = []
    for file, reference in _references(SHARED_LONG).items():
        path = SHARED_LONG / file
        segments = path.with_name(path.name + ".segments.tsv")
        if segments.is_file():
            with segments.open(newline="") as handle:
                rows = list(csv.DictReader(handle, delimiter="\t"))
            utterances = tuple(
                Utterance(row["text"], float(row["start"]), float(row["end"])) for row in rows
            )
        else:
            utterances = tuple(Utterance(s) for s in SENTENCE_END.split(reference) if s.strip())
        seconds = len(decode_audio(str(path), max_seconds=3600).samples) / SAMPLE_RATE
        files.append(LongFile(Path(file).stem, path, seconds, utterances, "recording"))
    return files


def _write_flac(path: Path, samples: np.ndarray) -> Path:
    import av

    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
