"""The accuracy reference: faster-whisper's own sequential decoding, beam 5, of each file.

``WhisperModel.transcribe`` with its defaults (``condition_on_previous_text``, the
temperature fallback) at the service's beam size: what the service did for timed formats
before the long-audio path was rebuilt. Each file is decoded once and kept in
``.data/bench-cache`` under a hash of its bytes, the model and the options, so a second
``make bench`` reuses it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from handler.config import REPO_ROOT, Settings
from handler.engine import temperature_schedule

CACHE = REPO_ROOT / ".data" / "bench-cache"


def sequential_options(settings: Settings) -> dict[str, Any]:
    """``WhisperModel.transcribe`` arguments of the reference decoding."""
    return {
        "language": "en",
        "task": "transcribe",
        "beam_size": settings.beam_size,
        "temperature": temperature_schedule(None),
    }


def cache_key(path: Path, settings: Settings) -> str:
    digest = hashlib.sha256(path.read_bytes())
    digest.update((Path(settings.model_dir) / "model.bin").read_bytes()[: 1 << 20])
    digest.update(json.dumps(sequential_options(settings), sort_keys=True).encode())
    return digest.hexdigest()[:24]


def cached(path: Path, settings: Settings) -> str | None:
    """The reference text of ``path`` if it was decoded before."""
    entry = CACHE / f"{cache_key(path, settings)}.json"
    return str(json.loads(entry.read_text())["text"]) if entry.is_file() else None


def store(path: Path, settings: Settings, text: str, seconds: float) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    entry = CACHE / f"{cache_key(path, settings)}.json"
    entry.write_text(json.dumps({"file": path.name, "text": text, "seconds": seconds}))
