"""Test audio generated on the spot: espeak-ng speech, tones, silence, noise, other formats."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np

SPEECH_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
)


def speak(text: str, path: Path, *, words_per_minute: int = 150) -> Path:
    """Synthesise ``text`` with espeak-ng into a WAV file."""
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", str(words_per_minute), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    return path


def convert(source: Path, target: Path, *extra: str) -> Path:
    """Re-encode with ffmpeg; the target's suffix picks the format."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *extra, str(target)],
        check=True,
    )
    return target


def write_wav(path: Path, samples: np.ndarray, rate: int = 16_000, channels: int = 1) -> Path:
    """Write float samples in [-1, 1] as 16-bit PCM."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def silence(path: Path, seconds: float, rate: int = 16_000) -> Path:
    return write_wav(path, np.zeros(int(seconds * rate)), rate)


def white_noise(path: Path, seconds: float, rate: int = 16_000, seed: int = 7) -> Path:
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * rate))
    return write_wav(path, noise, rate)


def tone(path: Path, seconds: float, hz: float = 440.0, rate: int = 16_000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    return write_wav(path, 0.3 * np.sin(2 * np.pi * hz * t), rate)
