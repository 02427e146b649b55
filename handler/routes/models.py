"""``GET /v1/models`` and ``GET /v1/models/{id}`` in OpenAI's shapes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from handler.deps import CallerDep
from handler.models import MODEL_IDS, model_object, resolve_model

router = APIRouter(tags=["models"])


@router.get("/v1/models")
def list_models(caller: CallerDep) -> dict[str, Any]:
    """Every model id this server accepts (one model, Whisper tiny.en, under four names)."""
    return {"object": "list", "data": [model_object(model_id) for model_id in MODEL_IDS]}


@router.get("/v1/models/{model_id:path}")
def retrieve_model(model_id: str, caller: CallerDep) -> dict[str, Any]:
    """One model by any accepted id, answered under the id asked for; others are 404."""
    resolve_model(model_id)
    return model_object(model_id)
