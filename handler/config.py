"""Settings read from the environment (prefix ``TINYSCRIBE_``), validated once per process."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from handler.transcript import ResponseFormat

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_MODEL_DIR = Path("/opt/models/whisper-tiny-en")
LOCAL_MODEL_DIR = REPO_ROOT / "layers" / "build" / "opt" / "models" / "whisper-tiny-en"

ComputeType = Literal[
    "default",
    "auto",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
]
"""CTranslate2's compute types (its "Quantization" documentation); on CPU the float16 kinds
fall back to what the CPU supports."""

# Lambda gives a function one vCPU of CPU time per 1,769 MB of configured memory.
LAMBDA_MB_PER_VCPU = 1769


def running_in_lambda() -> bool:
    """True inside the Lambda runtime (real or emulated by ``sam local``)."""
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def default_model_dir() -> Path:
    """The model layer in ``/opt`` on Lambda, the locally built layer everywhere else."""
    return LAMBDA_MODEL_DIR if running_in_lambda() else LOCAL_MODEL_DIR


def default_cpu_threads() -> int:
    """vCPUs this process can really use.

    On Lambda ``os.cpu_count()`` reports the host's cores whatever the memory size, while
    CPU time is granted in proportion to memory, so size from the configured memory.
    """
    visible = os.cpu_count() or 1
    memory_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    if memory_mb and memory_mb.isdigit():
        return max(1, min(visible, round(int(memory_mb) / LAMBDA_MB_PER_VCPU)))
    return visible


class Settings(BaseSettings):
    """Everything an operator can tune, with defaults that work locally and on Lambda."""

    model_config = SettingsConfigDict(env_prefix="TINYSCRIBE_", extra="ignore")

    model_dir: Path = Field(default_factory=default_model_dir)
    """Directory holding the CTranslate2 export of Whisper tiny.en (model.bin, ...)."""
    cpu_threads: int = Field(default_factory=default_cpu_threads, ge=1, le=64)
    """Intra-op threads for CTranslate2."""
    compute_type: ComputeType = "int8"
    """CTranslate2 compute type; int8 is the fastest on CPU at no accuracy cost for tiny.en."""
    beam_size: int = Field(default=5, ge=1, le=10)
    """Beam width for decoding (1 is greedy)."""
    batch_size: int = Field(default=4, ge=1, le=32)
    """Windows decoded together. Memory grows with batch x beam (the decoder keeps the
    encoder's keys and values for every beam)."""
    window_seconds: float = Field(default=24.0, ge=5, le=28)
    """Most audio in one window. Long speech is cut at its quietest frame between
    ``min_cut_seconds`` and this; Whisper reads 30 s at most."""
    min_cut_seconds: float = Field(default=10.0, ge=1, le=25)
    """Least audio before a cut inside continuous speech (see ``window_seconds``)."""
    context_max_pause_seconds: float = Field(default=0.45, ge=0)
    """A window is decoded with the previous window's text as context (Whisper's
    ``condition_on_previous_text``) when the pause between them is shorter than this, as
    inside one speaker's turn; after a longer pause, it starts afresh."""
    lookahead_seconds: float = Field(default=1.5, ge=0, le=5)
    """Audio after a window's end that the model also reads, for context (the next window
    decodes it): a word right before a cut is then not taken for a truncated one."""
    max_concurrent_transcriptions: int = Field(default=2, ge=1)
    """Transcriptions running at once in one process; more waiting gives 503."""
    transcription_queue_seconds: float = Field(default=20.0, ge=0)
    """How long a request may wait for a free transcription slot before a 503."""

    max_upload_bytes: int = Field(default=4 * 1024 * 1024, ge=1)
    """Largest synchronous upload. Base64 makes 4 MiB about 5.6 MB: inside Lambda's 6 MB."""
    max_sync_audio_seconds: float = Field(default=300.0, gt=0)
    """Longest audio accepted synchronously (API Gateway gives up after 30 s)."""
    max_job_audio_seconds: float = Field(default=2 * 3600.0, gt=0)
    """Longest audio accepted by the asynchronous (S3) path (2 h decode to ~460 MB)."""
    max_job_upload_bytes: int = Field(default=500 * 1024 * 1024, ge=1)
    """Largest file accepted by the asynchronous path (it is staged in /tmp)."""

    price_micro_usd_per_minute: int = Field(default=4000, ge=0)
    """Price of one audio minute in micro-USD ($0.004 = 4000)."""
    billing_increment_seconds: int = Field(default=1, ge=1)
    """Audio is billed in whole increments of this many seconds, rounded up."""
    fee_basis_points: int = Field(default=500, ge=0, le=10_000)
    """Platform fee kept from each top-up, in hundredths of a percent (500 = 5%)."""

    keys_table: str = "tinyscribe-keys"
    wallets_table: str = "tinyscribe-wallets"
    ledger_table: str = "tinyscribe-ledger"
    rate_limits_table: str = "tinyscribe-rate-limits"
    jobs_table: str = "tinyscribe-jobs"
    idempotency_table: str = "tinyscribe-idempotency"
    """Powertools' records of the S3 object versions already processed."""
    idempotency_keys_table: str = "tinyscribe-idempotency-keys"
    """Responses stored under clients' ``Idempotency-Key`` headers."""
    idempotency_key_seconds: int = Field(default=24 * 3600, ge=60)
    """How long a response stays replayable under its Idempotency-Key (Stripe keeps 24 h)."""
    idempotency_lock_seconds: int = Field(default=120, ge=5)
    """How long a request holds its Idempotency-Key: duplicates meanwhile get 409. It outlives
    any request (the API function times out at 29 s, a queued local request at about a
    minute), so only a process that died gives its key up to a retry, after this long."""

    bucket: str = "tinyscribe-local"
    """Bucket for the asynchronous path: batch inputs and outputs, job uploads and results."""
    input_prefix: str = "input/"
    output_prefix: str = "output/"
    uploads_prefix: str = "uploads/"
    results_prefix: str = "results/"
    batch_formats: list[ResponseFormat] = ["json", "verbose_json", "srt", "vtt", "text"]
    """Formats written for every operator batch input."""
    presign_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    """Lifetime of presigned upload and download URLs."""

    default_rpm: int = Field(default=60, ge=1)
    """Per-minute request limit of keys created without one."""
    cors_origins: list[str] = []
    """Origins allowed by CORS; empty means CORS is off."""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests clear the cache after changing the environment."""
    return Settings()
