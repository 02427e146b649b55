"""Statistics, accuracy and the Lambda cost model used by the benchmark report."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from tests.support.text import normalize

LAMBDA_MB_PER_VCPU = 1769
PRICE_PER_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICE_PER_REQUEST = 0.20 / 1_000_000
REFERENCE_PRICE_PER_MINUTE = 0.004
MEMORY_CANDIDATES_MB = (512, 768, 1024, 1280, 1536, 1769, 2048, 3008, 3538, 4096)
SYNC_BUDGET_SECONDS = 30.0


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate over several utterances (errors / reference words), normalised with
    Whisper's English normalizer."""
    pairs = [(normalize(r), normalize(h)) for r, h in zip(references, hypotheses, strict=True)]
    kept = [(r, h) for r, h in pairs if r.strip()]
    return float(jiwer.wer([r for r, _ in kept], [h for _, h in kept]))


@dataclass(frozen=True)
class Timing:
    """What one configuration took on one file, at 1 thread on 1 core and at 2 threads."""

    audio_seconds: float
    wall_1thread: float
    wall_2threads: float
    cpu_2threads: float


def lambda_seconds(timing: Timing, memory_mb: int) -> float:
    """Predicted wall time at ``memory_mb``: Lambda grants CPU time in proportion to memory
    (1 vCPU per 1,769 MB) and the service uses round(memory / 1769) threads (>= 1)."""
    vcpus = memory_mb / LAMBDA_MB_PER_VCPU
    if round(vcpus) <= 1:
        return max(timing.wall_1thread, timing.wall_1thread / vcpus)
    return max(timing.wall_2threads, timing.cpu_2threads / vcpus)


def cost_per_audio_minute(seconds: float, audio_seconds: float, memory_mb: int, arch: str) -> float:
    """USD per audio minute: duration x GB x price, plus the request price."""
    per_request = seconds * memory_mb / 1024 * PRICE_PER_GB_SECOND[arch] + PRICE_PER_REQUEST
    return per_request / (audio_seconds / 60)


def memory_table(timing: Timing) -> list[dict[str, float]]:
    """Latency and cost per audio minute at every candidate memory size."""
    rows = []
    for memory in MEMORY_CANDIDATES_MB:
        seconds = lambda_seconds(timing, memory)
        rows.append(
            {
                "memory_mb": memory,
                "seconds": seconds,
                "x86_64": cost_per_audio_minute(seconds, timing.audio_seconds, memory, "x86_64"),
                "arm64": cost_per_audio_minute(seconds, timing.audio_seconds, memory, "arm64"),
            }
        )
    return rows


def cheapest_memory(rows: list[dict[str, float]], max_seconds: float) -> dict[str, float]:
    """The cheapest row (x86) within ``max_seconds``; among rows within 1 % of that cost,
    the fastest."""
    fitting = [row for row in rows if row["seconds"] <= max_seconds] or rows
    lowest = min(row["x86_64"] for row in fitting)
    near = [row for row in fitting if row["x86_64"] <= lowest * 1.01]
    return min(near, key=lambda row: row["seconds"])
