"""The one model this service serves, and the names clients may call it by."""

from __future__ import annotations

from handler.errors import NotFound, shown

MODEL_ID = "openai/whisper-tiny-en"
MODEL_IDS = (MODEL_ID, "whisper-tiny-en", "tiny.en", "whisper-1")
"""Every id a request may name, canonical first. ``GET /v1/models`` lists each as its own
model object, so a client that fills a model picker from the list can offer ``whisper-1``."""
# A fixed creation time keeps the model objects stable across deployments.
MODEL_CREATED = 1_695_168_000


def resolve_model(name: str) -> str:
    """The canonical model id for ``name``, or 404 ``not_found`` with ``param: model``."""
    if name in MODEL_IDS:
        return MODEL_ID
    raise NotFound(
        f"The model '{shown(name)}' does not exist. Available: {', '.join(MODEL_IDS)}.",
        param="model",
        code="model_not_found",
    )


def model_object(model_id: str = MODEL_ID) -> dict[str, str | int]:
    """OpenAI's model object for ``model_id`` (one of :data:`MODEL_IDS`), under the id the
    client used: OpenAI answers a retrieve with the id asked for."""
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "tinyscribe"}
