"""Audio as it arrives from the field, rebuilt at test time with espeak-ng and ffmpeg.

Recorders that resume at another rate, clips spliced byte-wise, Ogg chains from stream
recordings, uploads cut short or damaged in transit, and lossy encodes whose containers mark
priming and padding. Each :class:`FieldCase` says what a user must get back: the spoken
sentences of every part (a different sentence per part, so a lost part shows), the exact
length that plays, or a refusal. Nothing is read from outside the given directory.

Reuse: ``FieldAudio(tmp_dir)`` builds the files (kept in ``tmp_dir`` and reused);
:data:`JOINED`, :data:`DAMAGED`, :data:`PADDED` and :data:`REFUSED` list the cases, each
built by ``case.build(field_audio)``; :data:`PADDING_MATRIX` lists tone encodes of every
padded codec family; :func:`sample_count` and :func:`probed_seconds` ask ffmpeg and ffprobe.
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.text import normalize

SENTENCES = (
    "Good morning everyone.",
    "We will meet again tomorrow.",
    "Thank you very much.",
)
"""Sentence ``i`` is spoken in part ``i`` of a joined file."""


@dataclass(frozen=True)
class Encoding:
    """One ffmpeg encode: codec, rate, channels, container suffix and extra options."""

    codec: str
    rate: int
    channels: int
    suffix: str
    extra: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.codec}-{self.rate}-{self.channels}ch{self.suffix}"


class FieldAudio:
    """Builds field inputs in ``directory``: spoken parts, encodes, joins, damage."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.parts: dict[Path, list[Path]] = {}
        """The separate files each joined file was made of."""

    def spoken(self, sentence: int, seconds: float | None = None) -> Path:
        """espeak-ng saying ``SENTENCES[sentence]`` (22.05 kHz mono WAV), padded with
        silence to exactly ``seconds`` when given."""
        name = f"said-{sentence}" + (f"-{seconds:g}s" if seconds else "") + ".wav"
        target = self.dir / name
        if not target.exists():
            raw = self.dir / f"said-{sentence}.raw.wav"
            subprocess.run(
                ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), SENTENCES[sentence]],
                check=True,
                capture_output=True,
            )
            if seconds is None:
                raw.rename(target)
            else:
                ffmpeg("-i", str(raw), "-af", f"apad=whole_dur={seconds}", "-t", str(seconds),
                       str(target))  # fmt: skip
        return target

    def tone(self, encoding: Encoding, seconds: float) -> Path:
        """``seconds`` of a 440 Hz tone generated at the encoding's rate, encoded."""
        target = self.dir / f"tone-{seconds:g}s.{encoding}"
        if not target.exists():
            ffmpeg(
                "-f", "lavfi", "-i", f"sine=f=440:r={encoding.rate}:d={seconds}",
                "-ac", str(encoding.channels), "-c:a", encoding.codec, *encoding.extra,
                str(target),
            )  # fmt: skip
        return target

    def recording(self, sentences: int) -> Path:
        """The first ``sentences`` sentences said one after the other, in one WAV."""
        target = self.dir / f"said-0-to-{sentences - 1}.wav"
        if not target.exists():
            parts = [self.spoken(i) for i in range(sentences)]
            inputs = [arg for part in parts for arg in ("-i", str(part))]
            ffmpeg(*inputs, "-filter_complex", f"concat=n={sentences}:v=0:a=1", str(target))
        return target

    def encode(self, source: Path, encoding: Encoding) -> Path:
        """``source`` re-encoded as ``encoding``."""
        target = self.dir / f"{source.stem}.{encoding}"
        if not target.exists():
            ffmpeg(
                "-i", str(source), "-ar", str(encoding.rate), "-ac", str(encoding.channels),
                "-c:a", encoding.codec, *encoding.extra, str(target),
            )  # fmt: skip
        return target

    def joined(self, name: str, encodings: Sequence[Encoding]) -> Path:
        """Sentence ``i`` encoded as ``encodings[i]``, the files concatenated byte-wise."""
        parts = [self.encode(self.spoken(i), e) for i, e in enumerate(encodings)]
        target = self.write(name, b"".join(part.read_bytes() for part in parts))
        self.parts[target] = parts
        return target

    def write(self, name: str, data: bytes) -> Path:
        target = self.dir / name
        target.write_bytes(data)
        return target


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def noise(size: int, seed: str) -> bytes:
    """``size`` reproducible random bytes."""
    return random.Random(hashlib.sha256(seed.encode()).digest()).randbytes(size)


def sample_count(path: Path, rate: int = 16_000) -> int:
    """Mono samples at ``rate`` that ffmpeg's command line decodes from ``path``'s bytes.

    Read from a copy without a file name extension: the service never sees one (it is
    the client's to choose), and ffmpeg would otherwise pick the demuxer from it.
    """
    with tempfile.TemporaryDirectory() as directory:
        copy = Path(directory) / "upload"
        shutil.copyfile(path, copy)
        pcm = subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "quiet", "-i", str(copy), "-ar", str(rate),
             "-ac", "1", "-f", "s16le", "-"],
            capture_output=True,
        ).stdout  # fmt: skip
    return len(pcm) // 2


def probed_seconds(path: Path) -> float:
    """The audio's duration as ffprobe reads it from the container (the stream's, or the
    file's where the stream has none, as in Matroska)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=duration:format=duration", "-of", "default=nw=1:nk=1", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return next(float(line) for line in out.split() if line != "N/A")


def missing_sentences(text: str, sentences: Sequence[int], recall: float = 0.75) -> list[str]:
    """The sentences of :data:`SENTENCES` (by index) of which ``text`` lacks more than a
    quarter of the words (after Whisper's normalizer)."""
    heard = set(normalize(text).split())
    missing = []
    for index in sentences:
        words = normalize(SENTENCES[index]).split()
        if sum(word in heard for word in words) < recall * len(words):
            missing.append(SENTENCES[index])
    return missing


@dataclass(frozen=True)
class FieldCase:
    id: str
    build: Callable[[FieldAudio], Path]
    sentences: tuple[int, ...] = ()
    """Indexes into :data:`SENTENCES` that the transcript must contain, in order."""
    seconds: float | None = None
    """The exact length that plays, for padded codecs: duration and bill follow it."""
    refused: bool = False
    """A 400 on ``file``: ffmpeg's command line decodes nothing from it either."""

    @property
    def billed_seconds(self) -> int | None:
        return None if self.seconds is None else math.ceil(self.seconds)


MP3 = "libmp3lame"
NO_XING = ("-write_xing", "0")


def _joined(*encodings: Encoding) -> Callable[[FieldAudio], Path]:
    name = "joined-" + "+".join(str(e) for e in encodings)
    return lambda audio: audio.joined(name + encodings[0].suffix, encodings)


JOINED: list[FieldCase] = [
    FieldCase(
        "mp3-44.1k-then-48k",  # the example: a recorder resuming at another rate
        _joined(
            Encoding(MP3, 44_100, 1, ".mp3", NO_XING), Encoding(MP3, 48_000, 1, ".mp3", NO_XING)
        ),
        (0, 1),
    ),
    FieldCase(
        "mp3-mono-then-stereo",
        _joined(
            Encoding(MP3, 44_100, 1, ".mp3", NO_XING), Encoding(MP3, 44_100, 2, ".mp3", NO_XING)
        ),
        (0, 1),
    ),
    FieldCase(
        "mp3-lame-tags-22k-stereo-then-16k-mono-then-32k",
        _joined(
            Encoding(MP3, 22_050, 2, ".mp3"),
            Encoding(MP3, 16_000, 1, ".mp3"),
            Encoding(MP3, 32_000, 2, ".mp3"),
        ),
        (0, 1, 2),
    ),
    FieldCase(
        "adts-aac-44.1k-mono-then-48k-stereo",
        _joined(Encoding("aac", 44_100, 1, ".aac"), Encoding("aac", 48_000, 2, ".aac")),
        (0, 1),
    ),
    FieldCase(
        "mpeg-ts-aac-22k-then-48k-stereo",
        _joined(Encoding("aac", 22_050, 1, ".ts"), Encoding("aac", 48_000, 2, ".ts")),
        (0, 1),
    ),
    FieldCase(
        "mp2-32k-stereo-then-48k-mono",
        _joined(Encoding("mp2", 32_000, 2, ".mp2"), Encoding("mp2", 48_000, 1, ".mp2")),
        (0, 1),
    ),
    FieldCase(
        "ac3-48k-stereo-then-44.1k-mono",
        _joined(Encoding("ac3", 48_000, 2, ".ac3"), Encoding("ac3", 44_100, 1, ".ac3")),
        (0, 1),
    ),
    FieldCase(
        "flac-44.1k-mono-then-48k-stereo",
        _joined(Encoding("flac", 44_100, 1, ".flac"), Encoding("flac", 48_000, 2, ".flac")),
        (0, 1),
    ),
    FieldCase(
        "ogg-vorbis-chain-44.1k-mono-then-48k-stereo",
        _joined(Encoding("libvorbis", 44_100, 1, ".ogg"), Encoding("libvorbis", 48_000, 2, ".ogg")),
        (0, 1),
    ),
    FieldCase(
        "ogg-opus-chain-mono-then-stereo-then-mono",
        _joined(
            Encoding("libopus", 48_000, 1, ".opus"),
            Encoding("libopus", 48_000, 2, ".opus"),
            Encoding("libopus", 16_000, 1, ".opus"),
        ),
        (0, 1, 2),
    ),
    FieldCase(
        # the codec and the sample format change: float Vorbis, then 16-bit FLAC
        "ogg-chain-vorbis-then-flac-s16",
        _joined(Encoding("libvorbis", 22_050, 2, ".ogg"), Encoding("flac", 48_000, 1, ".oga")),
        (0, 1),
    ),
    FieldCase(
        "ogg-chain-flac-s16-then-opus",
        _joined(Encoding("flac", 44_100, 1, ".oga"), Encoding("libopus", 48_000, 2, ".opus")),
        (0, 1),
    ),
]


def _damaged(
    name: str, encoding: Encoding, damage: Callable[[bytes], bytes], sentences: int = 2
) -> Callable[[FieldAudio], Path]:
    """One recording of the first ``sentences`` sentences in ``encoding``, then damaged."""

    def build(audio: FieldAudio) -> Path:
        whole = audio.encode(audio.recording(sentences), encoding)
        return audio.write(f"{name}-{whole.name}", damage(whole.read_bytes()))

    return build


def _garbage_between(encoding: Encoding, size: int) -> Callable[[FieldAudio], Path]:
    def build(audio: FieldAudio) -> Path:
        first, second = (audio.encode(audio.spoken(i), encoding) for i in range(2))
        junk = noise(size, f"{encoding}-{size}")
        return audio.write(
            f"garbage-{size}-{encoding}", first.read_bytes() + junk + second.read_bytes()
        )

    return build


def _keep(fraction: float) -> Callable[[bytes], bytes]:
    return lambda data: data[: int(len(data) * fraction)]


def _drop_first(count: int) -> Callable[[bytes], bytes]:
    return lambda data: data[count:]


def _patch_after(data: bytes, marker: bytes, skip: int, patch: bytes) -> bytes:
    """``data`` with ``patch`` written ``skip`` bytes after the end of ``marker``."""
    at = data.index(marker) + len(marker) + skip
    return data[:at] + patch + data[at + len(patch) :]


def _patch_stsz_middle(data: bytes, size: int) -> bytes:
    """An MP4 whose middle sample's size (in the ``stsz`` table) is ``size``."""
    table = data.index(b"stsz") + 4 + 8  # version/flags, then the uniform size (0)
    count = int.from_bytes(data[table : table + 4], "big")
    entry = table + 4 + 4 * (count // 2)
    return data[:entry] + size.to_bytes(4, "big") + data[entry + 4 :]


def _overwrite_middle(size: int) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        at = len(data) // 2
        return data[:at] + noise(size, f"middle-{len(data)}") + data[at + size :]

    return damage


DAMAGED: list[FieldCase] = [
    # A tail cut off in transit: the first sentence survives whole.
    FieldCase(
        "mp3-cut-mid-frame", _damaged("cut", Encoding(MP3, 44_100, 2, ".mp3"), _keep(0.7)), (0,)
    ),
    FieldCase(
        "m4a-faststart-cut-mid-frame",
        _damaged(
            "cut", Encoding("aac", 48_000, 1, ".m4a", ("-movflags", "+faststart")), _keep(0.7)
        ),
        (0,),
    ),
    FieldCase(
        "ogg-vorbis-cut-mid-page",
        _damaged("cut", Encoding("libvorbis", 44_100, 1, ".ogg"), _keep(0.7)),
        (0,),
    ),
    FieldCase(
        "flac-cut-mid-frame",
        _damaged("cut", Encoding("flac", 22_050, 1, ".flac"), _keep(0.7)),
        (0,),
    ),
    FieldCase(
        "wav-cut-mid-sample",
        _damaged(
            "cut", Encoding("pcm_s16le", 44_100, 2, ".wav"), lambda d: d[: len(d) * 7 // 10 | 1]
        ),
        (0,),
    ),
    # Garbage in the middle: both sentences survive.
    FieldCase(
        "mp3-garbage-between-parts",
        _garbage_between(Encoding(MP3, 44_100, 1, ".mp3"), 4096),
        (0, 1),
    ),
    FieldCase(
        "adts-garbage-between-parts",
        _garbage_between(Encoding("aac", 48_000, 2, ".aac"), 777),
        (0, 1),
    ),
    FieldCase(
        "ogg-opus-garbage-between-links",
        _garbage_between(Encoding("libopus", 48_000, 1, ".opus"), 3000),
        (0, 1),
    ),
    FieldCase(
        "mp3-noise-over-the-middle",
        _damaged("noisy", Encoding(MP3, 48_000, 1, ".mp3"), _overwrite_middle(600), 3),
        (0, 2),
    ),
    FieldCase(
        # the demuxer gives up on the sample (ENOMEM); ffmpeg stops there too
        "m4a-with-a-sample-claiming-a-gigabyte",
        _damaged(
            "huge-sample",
            Encoding("aac", 44_100, 1, ".m4a"),
            lambda d: _patch_stsz_middle(d, 0x3FFFFFFF),
        ),
        (0,),
    ),
    FieldCase(
        # the MPEG-TS demuxer answers EAGAIN while it resyncs on the junk
        "mpeg-ts-with-junk-after-the-end",
        _damaged("junk", Encoding("aac", 44_100, 1, ".ts"), lambda d: d + noise(2000, "ts-tail-4")),
        (0, 1),
    ),
    # A stream picked up part-way, as a stream recorder that joins late does.
    FieldCase(
        "mp3-starting-mid-frame",
        _damaged("late", Encoding(MP3, 44_100, 1, ".mp3"), _drop_first(1001)),
        (0, 1),
    ),
    FieldCase(
        "adts-starting-mid-frame",
        _damaged("late", Encoding("aac", 44_100, 2, ".aac"), _drop_first(333)),
        (0, 1),
    ),
    FieldCase(
        "mpeg-ts-starting-mid-packet",
        _damaged("late", Encoding("mp2", 48_000, 2, ".ts"), _drop_first(1000)),
        (0, 1),
    ),
]
"""Damaged uploads ffmpeg still plays: what survives is transcribed and billed."""


def _padded(encoding: Encoding, seconds: float) -> Callable[[FieldAudio], Path]:
    return lambda audio: audio.encode(audio.spoken(0, seconds), encoding)


PADDED: list[FieldCase] = [
    FieldCase(f"{encoding}-{seconds:g}s", _padded(encoding, seconds), (0,), seconds)
    for encoding, seconds in [
        (Encoding("aac", 48_000, 1, ".m4a"), 10.0),  # the example: was billed 11 s
        (Encoding("aac", 22_050, 1, ".mov"), 3.999),
        (Encoding("aac", 16_000, 2, ".mp4"), 5.0),
        (Encoding(MP3, 44_100, 2, ".mp4"), 4.0),
        (Encoding("libopus", 16_000, 1, ".webm"), 5.0),
        (Encoding("libopus", 8_000, 2, ".mka"), 4.0),
        (Encoding(MP3, 48_000, 2, ".mp3"), 3.999),
        (Encoding("libvorbis", 16_000, 1, ".ogg"), 6.0),
    ]
]
"""Lossy encodes whose containers mark the priming and end padding, with speech: the
bill and the duration are the length that plays."""


def _padding_matrix() -> list[tuple[Encoding, float]]:
    families = [
        ("aac", ".m4a", (8_000, 22_050, 44_100, 48_000)),
        ("aac", ".mov", (22_050, 48_000)),
        ("aac", ".3gp", (8_000,)),
        ("aac", ".mp4", (16_000, 44_100)),
        (MP3, ".mp4", (22_050, 44_100, 48_000)),
        (MP3, ".mp3", (16_000, 22_050, 44_100, 48_000)),  # the LAME header's delay/padding
        ("libopus", ".mp4", (8_000, 16_000, 48_000)),
        ("libopus", ".webm", (8_000, 24_000, 48_000)),
        ("libopus", ".mka", (12_000, 48_000)),
        ("libopus", ".opus", (8_000, 16_000, 48_000)),
        ("libvorbis", ".ogg", (16_000, 22_050, 44_100, 48_000)),
    ]
    matrix = []
    for codec, suffix, rates in families:
        # Vorbis under one Ogg page (about a second) is cut 128 samples short by FFmpeg's
        # Ogg demuxer, on the command line too: see test_audio.py.
        lengths = (2.5, 7.3) if codec == "libvorbis" else (1.001, 7.3)
        for index, rate in enumerate(rates):
            for seconds in lengths:
                channels = 1 + (index + round(seconds)) % 2
                matrix.append((Encoding(codec, rate, channels, suffix), seconds))
    return matrix


PADDING_MATRIX = _padding_matrix()
"""Every codec family with priming and padding, at several rates, channel counts and
lengths: decoded to the length that plays."""


REFUSED: list[FieldCase] = [
    FieldCase(
        "m4a-cut-before-its-index",  # moov at the end, and the end is gone
        _damaged("cut", Encoding("aac", 44_100, 1, ".m4a"), _keep(0.8), 1),
        refused=True,
    ),
    FieldCase(
        "ogg-without-its-headers",
        _damaged("late", Encoding("libvorbis", 44_100, 1, ".ogg"), _drop_first(5000), 1),
        refused=True,
    ),
    FieldCase(
        "opus-header-with-zero-channels",
        _damaged(
            "zero",
            Encoding("libopus", 48_000, 1, ".opus"),
            lambda d: _patch_after(d, b"OpusHead", 1, b"\0"),
            1,
        ),
        refused=True,
    ),
    FieldCase(
        "vorbis-with-a-corrupt-setup-header",
        _damaged(
            "corrupt",
            Encoding("libvorbis", 44_100, 1, ".ogg"),
            lambda d: _patch_after(d, b"\x05vorbis", 0, noise(200, "setup")),
            1,
        ),
        refused=True,
    ),
    FieldCase(
        # ffmpeg decodes it only when told it is FLAC by a ".flac" name; bytes alone say nothing
        "flac-without-its-marker",
        _damaged("late", Encoding("flac", 44_100, 1, ".flac"), _drop_first(4), 1),
        refused=True,
    ),
    FieldCase(
        "wav-of-an-unknown-codec",
        _damaged(
            "unknown",
            Encoding("pcm_s16le", 16_000, 1, ".wav"),
            lambda d: d[:20] + (0x1234).to_bytes(2, "little") + d[22:],
        ),
        refused=True,
    ),
]
"""Damage ffmpeg's command line cannot play either: a 400 on ``file``, nothing billed."""


ALL: list[FieldCase] = JOINED + DAMAGED + PADDED + REFUSED


def ids(cases: Sequence[FieldCase]) -> list[str]:
    return [case.id for case in cases]
