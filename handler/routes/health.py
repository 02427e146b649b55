"""``GET /health``: liveness, without authentication."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import handler
from handler.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(services: ServicesDep) -> dict[str, Any]:
    """The service is up; says whether this process has loaded the model yet."""
    return {
        "status": "ok",
        "version": handler.__version__,
        "model_loaded": services.engine.loaded,
    }
