"""Hostile request material for the hardening tests: raw multipart bodies and odd media.

Everything is generated on the spot (numpy, ffmpeg, espeak-ng through
:mod:`tests.support.audio`); nothing is read from outside the test's temporary directory.
"""

from __future__ import annotations

import struct
import subprocess
import wave
from functools import cached_property
from pathlib import Path

import numpy as np

from tests.support.audio import silence, speak, tone, white_noise, write_wav

BOUNDARY = "tinyscribe-hostile-boundary"


def part(
    name: bytes | None,
    value: bytes,
    *,
    filename: bytes | None = None,
    content_type: bytes | None = None,
) -> bytes:
    """One multipart part, byte for byte as given (no escaping, no encoding)."""
    disposition = b"Content-Disposition: form-data"
    if name is not None:
        disposition += b'; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    headers = [disposition]
    if content_type is not None:
        headers.append(b"Content-Type: " + content_type)
    return b"\r\n".join(headers) + b"\r\n\r\n" + value


def multipart_body(parts: list[bytes], boundary: str = BOUNDARY, *, close: bool = True) -> bytes:
    """A multipart/form-data body made of ``parts``; ``close=False`` leaves it unterminated."""
    delimiter = b"--" + boundary.encode()
    body = b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts)
    return body + (delimiter + b"--\r\n" if close else b"")


def multipart_content_type(boundary: str = BOUNDARY) -> str:
    return f"multipart/form-data; boundary={boundary}"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def wav_frames(path: Path) -> tuple[np.ndarray, int]:
    """The int16 mono samples and rate of a 16-bit PCM WAV."""
    with wave.open(str(path), "rb") as source:
        assert source.getsampwidth() == 2 and source.getnchannels() == 1
        rate = source.getframerate()
        samples = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    return samples, rate


def patch_wav_header(data: bytes, **fields: int) -> bytes:
    """A canonical 44-byte-header WAV with fields of its ``fmt``/``data`` chunks rewritten.

    Fields: ``riff_size``, ``channels``, ``rate``, ``bits``, ``data_size``.
    """
    assert data[:4] == b"RIFF" and data[12:16] == b"fmt " and data[36:40] == b"data"
    out = bytearray(data)
    offsets = {
        "riff_size": (4, "<I"),
        "channels": (22, "<H"),
        "rate": (24, "<I"),
        "bits": (34, "<H"),
        "data_size": (40, "<I"),
    }
    for name, value in fields.items():
        offset, fmt = offsets[name]
        struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def patch_flac_total_samples(data: bytes, total_samples: int) -> bytes:
    """Rewrite the 36-bit total-samples field of a FLAC file's STREAMINFO block."""
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # first metadata block is STREAMINFO
    out = bytearray(data)
    # STREAMINFO starts at byte 8; total samples are the low 4 bits of byte 8+13 and 4 bytes.
    start = 8 + 13
    out[start] = (out[start] & 0xF0) | ((total_samples >> 32) & 0x0F)
    struct.pack_into(">I", out, start + 1, total_samples & 0xFFFFFFFF)
    return bytes(out)


class HostileMedia:
    """Lazily generated files, one per property, cached for the session."""

    SPEECH_TEXT = "Thank you very much."
    SPEECH_SECONDS = 1.75
    """A short sentence padded to a length well away from a whole second (cheap to transcribe)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.dir / name

    @cached_property
    def speech(self) -> Path:
        """Speech at espeak's rate, padded with silence to exactly :attr:`SPEECH_SECONDS`."""
        samples, rate = wav_frames(speak(self.SPEECH_TEXT, self.path("spoken.wav")))
        target = int(self.SPEECH_SECONDS * rate)
        assert len(samples) < target, "the sample sentence got longer than the padding"
        padded = np.zeros(target, dtype=np.float64)
        padded[: len(samples)] = samples / 32768.0
        return write_wav(self.path("speech.wav"), padded, rate)

    @cached_property
    def speech_bytes(self) -> bytes:
        return self.speech.read_bytes()

    def converted(self, name: str, *extra: str) -> bytes:
        target = self.path(name)
        if not target.exists():
            ffmpeg("-i", str(self.speech), *extra, str(target))
        return target.read_bytes()

    @cached_property
    def mp3(self) -> bytes:
        return self.converted("speech.mp3")

    @cached_property
    def flac(self) -> bytes:
        return self.converted("speech.flac")

    @cached_property
    def tenth_of_a_second(self) -> bytes:
        return tone(self.path("tenth.wav"), 0.1).read_bytes()

    @cached_property
    def silence(self) -> bytes:
        return silence(self.path("silence.wav"), 2.5).read_bytes()

    @cached_property
    def white_noise(self) -> bytes:
        return white_noise(self.path("noise.wav"), 2.5).read_bytes()

    @cached_property
    def header_only_wav(self) -> bytes:
        return write_wav(self.path("header-only.wav"), np.zeros(0)).read_bytes()

    @cached_property
    def two_second_tone(self) -> bytes:
        return tone(self.path("tone2.wav"), 2.0).read_bytes()

    @cached_property
    def video_only_mp4(self) -> bytes:
        target = self.path("video-only.mp4")
        ffmpeg(
            "-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=10",
            "-an", "-c:v", "mpeg4", str(target),
        )  # fmt: skip
        return target.read_bytes()

    @cached_property
    def png(self) -> bytes:
        target = self.path("image.png")
        ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1", str(target))
        return target.read_bytes()

    @cached_property
    def flac_bomb(self) -> bytes:
        """Two hours of silence: about 1.3 MB of FLAC, 115 million samples decoded."""
        target = self.path("bomb-2h.flac")
        ffmpeg(
            "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "7200",
            "-c:a", "flac", str(target),
        )  # fmt: skip
        return target.read_bytes()

    @cached_property
    def opus_bomb(self) -> bytes:
        """Two hours of silence in Ogg Opus (10 s encoded once, then stream-copied 720x)."""
        ten = self.path("silence-10s.opus")
        target = self.path("bomb-2h.opus")
        ffmpeg(
            "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "10",
            "-c:a", "libopus", "-b:a", "6k", "-frame_duration", "120", str(ten),
        )  # fmt: skip
        ffmpeg("-stream_loop", "719", "-i", str(ten), "-c", "copy", str(target))
        return target.read_bytes()
