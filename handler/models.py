"""The one model this service serves, and the names clients may call it by."""

from __future__ import annotations

from handler.errors import NotFound, shown

MODEL_ID = "openai/whisper-tiny-en"
MODEL_ALIASES = frozenset({MODEL_ID, "whisper-tiny-en", "tiny.en", "whisper-1"})
# A fixed creation time keeps the model object stable across deployments.
MODEL_CREATED = 1_695_168_000


def resolve_model(name: str) -> str:
    """The canonical model id for ``name``, or 404 ``not_found`` with ``param: model``."""
    if name in MODEL_ALIASES:
        return MODEL_ID
    raise NotFound(
        f"The model '{shown(name)}' does not exist. Available: {', '.join(sorted(MODEL_ALIASES))}.",
        param="model",
        code="model_not_found",
    )


def model_object() -> dict[str, str | int]:
    """OpenAI's model object."""
    return {"id": MODEL_ID, "object": "model", "created": MODEL_CREATED, "owned_by": "tinyscribe"}
