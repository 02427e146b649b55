"""handler.config: settings from the environment, and the threads Lambda's memory buys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from handler.config import (
    LAMBDA_MODEL_DIR,
    LOCAL_MODEL_DIR,
    Settings,
    default_cpu_threads,
    default_model_dir,
)


@pytest.fixture
def eight_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)


@pytest.mark.parametrize(
    ("memory_mb", "threads"),
    [
        (None, 8),  # not on Lambda: every visible core
        ("128", 1),  # never fewer than one
        ("1769", 1),  # one vCPU per 1,769 MB (AWS's figure)
        ("3008", 2),  # 1.70 vCPU rounds to 2
        ("2600", 1),  # 1.47 rounds to 1
        ("10240", 6),  # 5.79: Lambda's largest function
        ("30000", 8),  # never more than the cores visible
        ("lots", 8),  # not a number: ignored
    ],
)
def test_threads_follow_lambda_memory(
    monkeypatch: pytest.MonkeyPatch, eight_cores: None, memory_mb: str | None, threads: int
) -> None:
    if memory_mb is not None:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb)
    assert default_cpu_threads() == threads
    assert Settings().cpu_threads == threads


def test_the_model_is_read_from_the_layer_on_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_model_dir() == LOCAL_MODEL_DIR
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tinyscribe-api")
    assert default_model_dir() == LAMBDA_MODEL_DIR == Path("/opt/models/whisper-tiny-en")
    assert Settings().model_dir == LAMBDA_MODEL_DIR


def test_defaults_are_the_documented_prices_and_limits(eight_cores: None) -> None:
    settings = Settings()
    assert settings.price_micro_usd_per_minute == 4000
    assert settings.billing_increment_seconds == 1
    assert settings.fee_basis_points == 500
    assert settings.max_upload_bytes == 4 * 1024 * 1024
    assert settings.batch_formats == ["json", "verbose_json", "srt", "vtt", "text"]
    assert settings.cors_origins == []
    assert settings.compute_type == "int8" and settings.beam_size == 5


def test_the_environment_sets_each_field_with_its_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYSCRIBE_PRICE_MICRO_USD_PER_MINUTE", "6000")
    monkeypatch.setenv("TINYSCRIBE_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    monkeypatch.setenv("TINYSCRIBE_MODEL_DIR", "/models/tiny")
    monkeypatch.setenv("TINYSCRIBE_TRANSCRIPTION_QUEUE_SECONDS", "2.5")
    monkeypatch.setenv("PRICE_MICRO_USD_PER_MINUTE", "1")  # no prefix: not ours
    monkeypatch.setenv("TINYSCRIBE_NOT_A_SETTING", "x")  # ignored, not fatal
    settings = Settings()
    assert settings.price_micro_usd_per_minute == 6000
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.model_dir == Path("/models/tiny")
    assert settings.transcription_queue_seconds == 2.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TINYSCRIBE_FEE_BASIS_POINTS", "10001"),
        ("TINYSCRIBE_PRICE_MICRO_USD_PER_MINUTE", "-1"),
        ("TINYSCRIBE_BEAM_SIZE", "0"),
        ("TINYSCRIBE_CPU_THREADS", "65"),
        ("TINYSCRIBE_PRESIGN_SECONDS", "30"),
        ("TINYSCRIBE_WINDOW_SECONDS", "29"),
        ("TINYSCRIBE_MAX_CONCURRENT_TRANSCRIPTIONS", "many"),
    ],
)
def test_out_of_range_settings_fail_at_startup(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as failed:
        Settings()
    assert failed.value.errors()[0]["loc"] == (name.removeprefix("TINYSCRIBE_").lower(),)
