"""Asynchronous jobs for audio too large for a synchronous request.

``POST /v1/audio/transcriptions/jobs`` returns a presigned S3 upload URL; the upload's S3
event runs the job; ``GET /v1/audio/transcriptions/jobs/{id}`` reports it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from handler.deps import CallerDep, LimitedCallerDep, ServicesDep
from handler.errors import NotFound
from handler.idempotency import IdempotencyDep
from handler.services import Services
from handler.stores.jobs import Job, new_job_id
from handler.transcript import MAX_PROMPT_CHARS, Granularity, ResponseFormat
from handler.validation import TranscriptionFields, check_file_size, transcription_request

router = APIRouter(tags=["jobs"])
# Results up to this size are returned inline by GET as well as by URL.
INLINE_RESULT_BYTES = 256 * 1024


class JobCreate(BaseModel):
    """The synchronous route's options, plus what is known of the file to upload. Other
    fields are refused (400 ``unknown_parameter``), not ignored."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(max_length=100)
    file_name: str = Field(default="audio", min_length=1, max_length=255)
    file_size: int | None = Field(default=None, ge=1, description="Bytes, if known")
    language: str | None = Field(default=None, max_length=16)
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    response_format: ResponseFormat = "json"
    temperature: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    timestamp_granularities: list[Granularity] = Field(default_factory=list, max_length=2)


@router.post("/v1/audio/transcriptions/jobs", status_code=201)
def create_job(
    body: JobCreate,
    caller: LimitedCallerDep,
    idempotency: IdempotencyDep,
    services: ServicesDep,
) -> Response:
    """Create a job and return where to PUT the audio (with ``Idempotency-Key``, a retry
    returns the same job)."""
    request_fields = TranscriptionFields(
        model=body.model,
        language=body.language,
        prompt=body.prompt,
        response_format=body.response_format,
        temperature=body.temperature,
        granularities=body.timestamp_granularities,
    )
    transcription_request(**request_fields)  # validate now, not after the upload
    check_file_size(
        body.file_size,
        services.settings.max_job_upload_bytes,
        param="file_size",
        path="asynchronous jobs",
    )
    services.wallets.get(caller.wallet_id)  # a key without wallet: 401 now, not after upload
    job_id = new_job_id()
    job = services.jobs.create(
        Job(
            job_id=job_id,
            key_id=caller.key_id,
            wallet_id=caller.wallet_id,
            metered=caller.metered,
            request=request_fields,
            file_name=body.file_name,
            upload_key=services.settings.uploads_prefix + job_id,
        )
    )
    seconds = services.settings.presign_seconds
    expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
    view = {
        **_job_view(job, services),
        "upload": {
            "url": services.objects.presign_put(job.upload_key, seconds),
            "method": "PUT",
            "expires_at": expires_at.isoformat(timespec="seconds"),
        },
    }
    return idempotency.respond(view, status_code=201)


@router.get("/v1/audio/transcriptions/jobs/{job_id}")
def get_job(
    job_id: Annotated[str, Path(max_length=64)], caller: CallerDep, services: ServicesDep
) -> dict[str, Any]:
    """The job's status, with its result (inline and as a URL) once completed."""
    job = services.jobs.get(job_id)
    if job is None or job.key_id != caller.key_id:
        raise NotFound(f"No job with id '{job_id}'.", param="job_id", code="job_not_found")
    return _job_view(job, services)


def _job_view(job: Job, services: Services) -> dict[str, Any]:
    status = job.status
    if status == "awaiting_upload" and services.objects.size(job.upload_key) is not None:
        status = "queued"  # uploaded; its S3 event has not started the job yet
    view: dict[str, Any] = {
        "id": job.job_id,
        "object": "transcription.job",
        "status": status,
        "created_at": job.created_at,
        "file_name": job.file_name,
        "response_format": job.request["response_format"],
    }
    if job.status == "failed":
        view["error"] = job.error
    if job.status == "completed" and job.result_key:
        seconds = services.settings.presign_seconds
        view |= {
            "duration": job.duration,
            "usage": {"type": "duration", "seconds": job.billed_seconds},
            "cost_micro_usd": job.cost,
            "result_url": services.objects.presign_get(job.result_key, seconds),
        }
        size = services.objects.size(job.result_key) or 0
        if size <= INLINE_RESULT_BYTES:
            body = services.objects.read_text(job.result_key)
            view["result"] = json.loads(body) if job.media_type == "application/json" else body
    return view
