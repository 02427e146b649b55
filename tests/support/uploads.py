"""One way the integration tests upload audio to the API: a multipart ``POST`` of a file with
``model=whisper-1`` and the given fields, as the SDKs and curl send it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from tests.support.http import Response

TRANSCRIPTIONS = "/v1/audio/transcriptions"
TRANSLATIONS = "/v1/audio/translations"


def post_audio(
    client: TestClient | httpx.Client,
    headers: Mapping[str, str],
    audio: Path,
    fields: Mapping[str, object] | Iterable[tuple[str, str]] = (),
    *,
    path: str = TRANSCRIPTIONS,
) -> Response:
    """POST ``audio`` as the ``file`` part to ``path`` with ``headers`` (a caller's
    ``Authorization``, an ``Idempotency-Key``...) and ``fields`` after ``model=whisper-1``;
    a list of pairs may repeat a name (``timestamp_granularities[]``) or ``model`` itself."""
    data: dict[str, list[object]] = {"model": ["whisper-1"]}
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    for name, value in pairs:
        if name == "model" and data["model"] == ["whisper-1"]:
            data["model"] = []
        data.setdefault(name, []).append(value)
    with audio.open("rb") as handle:
        return client.post(
            path,
            headers=dict(headers),
            files={"file": (audio.name, handle)},
            data={name: values[0] if len(values) == 1 else values for name, values in data.items()},
        )
