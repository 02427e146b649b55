"""``GET /v1/models`` and ``GET /v1/models/{id}`` in OpenAI's shapes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from handler.deps import CallerDep
from handler.models import model_object, resolve_model

router = APIRouter(tags=["models"])


@router.get("/v1/models")
def list_models(caller: CallerDep) -> dict[str, Any]:
    """The models this server serves."""
    return {"object": "list", "data": [model_object()]}


@router.get("/v1/models/{model_id:path}")
def retrieve_model(model_id: str, caller: CallerDep) -> dict[str, Any]:
    """One model, by its id or an alias."""
    resolve_model(model_id)
    return model_object()
