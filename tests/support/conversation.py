"""Test audio for the long-audio path, made on the spot: an espeak-ng conversation whose
every sentence's place is known, and signals without speech.

The conversation has four voices, pauses of 0.3-3 s, one-word turns, a turn that runs across
20 s and 30 s (where a fixed 20 s or 30 s cut would fall), 10 s of silence in the middle, and
a one-word turn at the very end.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handler.audio import SAMPLE_RATE, decode_audio
from tests.support.audio import write_wav

VOICES = ("en-us", "en-gb+f3", "en-us+m3", "en-029")
LONG_TURN_STARTS_AT = 18.0
"""Seconds: the long turn starts here and lasts past 30 s."""
SILENCE_SECONDS = 10.0
# (voice index, text, pause before in seconds); None as the pause places the long turn.
SCRIPT: tuple[tuple[int, str, float | None], ...] = (
    (0, "Good morning everyone, thank you for joining the planning meeting today.", 0.5),
    (1, "Thanks. I have the budget numbers ready for the second quarter.", 0.8),
    (2, "Great.", 0.4),
    (3, "Before we start, could someone share the agenda with the whole team?", 1.2),
    (0, "Yes.", 0.3),
    (
        1,
        "The new office opens in March, and every team will move there over two weekends, "
        "starting with engineering on the first Saturday and finishing with the sales and "
        "support groups on the Sunday after that, so please pack your desks on Friday.",
        None,
    ),
    (2, "That sounds like a sensible plan to me.", 2.0),
    (3, "Sorry, I was on mute. Can everybody hear me now?", SILENCE_SECONDS),
    (0, "Perfectly.", 0.6),
    (1, "Then let us review the hiring plan for the autumn and close the meeting.", 3.0),
    (2, "Sure.", 0.9),
    (3, "Thank you all, see you next week.", 1.5),
    (0, "Goodbye.", 0.7),
)


@dataclass(frozen=True)
class Sentence:
    text: str
    start: float
    """Seconds where its voice starts (leading silence of the synthesis excluded)."""
    end: float


@dataclass(frozen=True)
class Conversation:
    path: Path
    seconds: float
    sentences: tuple[Sentence, ...]


def synthesize(text: str, voice: str, workdir: Path) -> np.ndarray:
    """espeak-ng speech as 16 kHz float32, trimmed to where the voice is."""
    target = workdir / f"tts-{abs(hash((text, voice)))}.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "160", "-w", str(target), text],
        check=True,
        capture_output=True,
    )
    samples = decode_audio(str(target), max_seconds=120).samples
    voiced = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[voiced[0] : voiced[-1] + 1]


def conversation(workdir: Path) -> Conversation:
    """The scripted conversation as a 16 kHz WAV, with where each sentence was placed."""
    parts: list[np.ndarray] = []
    sentences: list[Sentence] = []
    position = 0
    for voice, text, pause in SCRIPT:
        speech = synthesize(text, VOICES[voice], workdir)
        if pause is None:
            pause = LONG_TURN_STARTS_AT - position / SAMPLE_RATE
            if pause < 0.3 or len(speech) / SAMPLE_RATE < 30 - LONG_TURN_STARTS_AT + 1:
                raise AssertionError("the script no longer puts a turn across 20 s and 30 s")
        parts.append(np.zeros(round(pause * SAMPLE_RATE), dtype=np.float32))
        position += len(parts[-1])
        sentences.append(
            Sentence(text, position / SAMPLE_RATE, (position + len(speech)) / SAMPLE_RATE)
        )
        parts.append(speech)
        position += len(speech)
    parts.append(np.zeros(SAMPLE_RATE // 2, dtype=np.float32))
    samples = np.concatenate(parts)
    path = write_wav(workdir / "conversation.wav", samples)
    return Conversation(path, len(samples) / SAMPLE_RATE, tuple(sentences))


# -- signals without speech ---------------------------------------------------------------

Signal = Callable[[int, np.random.Generator], np.ndarray]


def at_level(samples: np.ndarray, dbfs: float) -> np.ndarray:
    """``samples`` scaled to an RMS of ``dbfs`` dB below full scale."""
    rms = float(np.sqrt(np.mean(samples**2))) or 1.0
    return (samples * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def white(dbfs: float) -> Signal:
    return lambda n, rng: at_level(rng.standard_normal(n), dbfs)


def pink(dbfs: float) -> Signal:
    """1/f noise (room and line noise), by shaping white noise's spectrum."""

    def make(n: int, rng: np.random.Generator) -> np.ndarray:
        spectrum = np.fft.rfft(rng.standard_normal(n))
        spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
        return at_level(np.fft.irfft(spectrum, n), dbfs)

    return make


def tone(hz: float, amplitude: float) -> Signal:
    return lambda n, rng: (amplitude * np.sin(2 * np.pi * hz * np.arange(n) / SAMPLE_RATE)).astype(
        np.float32
    )


def beeps(low: float, high: float) -> Signal:
    """Two-tone beeps, a quarter second on and off (a dial pad, an alarm)."""

    def make(n: int, rng: np.random.Generator) -> np.ndarray:
        t = np.arange(n) / SAMPLE_RATE
        on = (t % 0.5) < 0.25
        tones = np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)
        beeping: np.ndarray = (0.2 * on * tones).astype(
            np.float32
        )  # numpy types bool * float as Any
        return beeping

    return make


def hum(mains_hz: float, dbfs: float) -> Signal:
    """Mains hum: the fundamental and its harmonics."""

    def make(n: int, rng: np.random.Generator) -> np.ndarray:
        t = np.arange(n) / SAMPLE_RATE
        wave = sum(np.sin(2 * np.pi * mains_hz * k * t) / k for k in range(1, 9))
        return at_level(np.asarray(wave), dbfs)

    return make


def music(dbfs: float, tempo_seconds: float = 0.25) -> Signal:
    """Wordless music: plucked notes with harmonics over a chord progression, and a
    noise-burst drum on the beat."""
    notes = (261.6, 329.6, 392.0, 523.3, 440.0, 349.2, 293.7, 246.9)

    def make(n: int, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros(n)
        step = round(tempo_seconds * SAMPLE_RATE)
        length = 2 * step
        t = np.arange(length) / SAMPLE_RATE
        envelope = np.exp(-t * 4)
        for index, start in enumerate(range(0, n, step)):
            pitch = notes[index % len(notes)]
            note = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6)) * envelope
            end = min(start + length, n)
            out[start:end] += note[: end - start]
            if index % 2 == 0:
                drum = (
                    rng.standard_normal(min(800, n - start))
                    * np.exp(-np.arange(800) / 150)[: min(800, n - start)]
                )
                out[start : start + len(drum)] += drum
        return at_level(out, dbfs)

    return make


def mixed(*signals: Signal) -> Signal:
    return lambda n, rng: np.sum([signal(n, rng) for signal in signals], axis=0).astype(np.float32)


NON_SPEECH: dict[str, tuple[Signal, float]] = {
    # name: (signal, seconds)
    "silence-1s": (lambda n, rng: np.zeros(n, np.float32), 1.0),
    "silence-8s": (lambda n, rng: np.zeros(n, np.float32), 8.0),
    "silence-30s": (lambda n, rng: np.zeros(n, np.float32), 30.0),
    "silence-75s": (lambda n, rng: np.zeros(n, np.float32), 75.0),
    "dither-90dBFS": (white(-90), 20.0),
    "white-noise-20dBFS": (white(-20), 10.0),
    "white-noise-40dBFS": (white(-40), 30.0),
    "white-noise-60dBFS": (white(-60), 12.0),
    "pink-noise-25dBFS": (pink(-25), 15.0),
    "pink-noise-50dBFS": (pink(-50), 40.0),
    "tone-440Hz": (tone(440, 0.3), 10.0),
    "tone-1kHz-quiet": (tone(1000, 0.02), 6.0),
    "tone-100Hz": (tone(100, 0.5), 8.0),
    "beeps": (beeps(697, 1209), 12.0),
    "hum-50Hz": (hum(50, -25), 20.0),
    "hum-60Hz-loud": (hum(60, -12), 10.0),
    "hum-and-room-noise": (mixed(hum(50, -30), pink(-40)), 35.0),
    "music-fast": (music(-18, 0.2), 20.0),
    "music-slow-quiet": (music(-35, 0.6), 30.0),
}


def non_speech(name: str, workdir: Path, seed: int = 11) -> Path:
    """One of :data:`NON_SPEECH` as a 16 kHz WAV."""
    signal, seconds = NON_SPEECH[name]
    samples = signal(round(seconds * SAMPLE_RATE), np.random.default_rng(seed))
    return write_wav(workdir / f"{name}.wav", samples)
