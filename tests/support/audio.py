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


HARVARD_SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
)
"""The first 25 of the IEEE's Harvard sentences (1969), phonetically balanced and unrelated to
each other: about 70 s of espeak-ng speech, which Whisper decodes in three 30 s windows."""


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
