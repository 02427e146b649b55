"""S3 ObjectCreated events: operator batch files and customer job uploads.

- ``input/...``: transcribed into every batch format under ``output/...`` next to a
  ``.status.json``; never billed.
- ``uploads/<job id>``: the job's audio; transcribed, billed to the job's wallet, result
  written under ``results/`` and recorded on the job.

S3 delivers events at least once, so each object version is processed under Powertools'
idempotency guard: a duplicate gets the first run's summary back, and a concurrent
duplicate raises ``IdempotencyAlreadyInProgressError`` so Lambda retries it later. Bad
objects end in a *failed* status, not an exception, so they are not retried.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from handler.errors import ApiError, ServerError, ServiceUnavailable
from handler.formats import render
from handler.observability import emit_metrics, logger
from handler.pipeline import Outcome, Payer, TranscriptionRequest, transcribe
from handler.services import Services
from handler.stores.dynamo import CLIENT_CONFIG
from handler.stores.jobs import Job
from handler.transcript import ResponseFormat, TranscribeOptions
from handler.validation import check_file_size, transcription_request

IDEMPOTENCY_SECONDS = 7 * 24 * 3600
FORMAT_SUFFIXES: dict[str, str] = {
    "json": ".json",
    "verbose_json": ".verbose.json",
    "text": ".txt",
    "srt": ".srt",
    "vtt": ".vtt",
}


@dataclass(frozen=True)
class ObjectRef:
    """One object version named by an S3 event (the key already URL-decoded)."""

    bucket: str
    key: str
    version: str
    size: int


def handle_s3_event(services: Services, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process every record of the event, each at most once."""
    config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_SECONDS)
    if context is not None:
        config.register_lambda_context(context)
    persistence = _persistence_layer(services.settings.idempotency_table)
    process_once = idempotent_function(
        data_keyword_argument="ref",
        persistence_store=persistence,
        config=config,
        key_prefix="tinyscribe#s3-object",
    )(_process)
    results = []
    for record in S3Event(event).records:
        s3 = record.s3
        ref = ObjectRef(
            bucket=s3.bucket.name,
            key=unquote_plus(s3.get_object.key),  # S3 sends keys URL-encoded
            version=s3.get_object.version_id or s3.get_object.etag or "",
            size=int(s3.get_object.size or 0),
        )
        results.append(process_once(services, ref=asdict(ref)))
    return {"results": results}


@lru_cache
def _persistence_layer(table: str) -> DynamoDBPersistenceLayer:
    # Powertools needs a low-level client (typed attributes), not our resource client.
    return DynamoDBPersistenceLayer(table_name=table, boto_config=CLIENT_CONFIG)


def reset_idempotency() -> None:
    """Forget the cached persistence layer (its client follows the environment)."""
    _persistence_layer.cache_clear()


def _process(services: Services, ref: dict[str, Any]) -> dict[str, Any]:
    obj = ObjectRef(**ref)
    settings = services.settings
    if obj.bucket != settings.bucket:
        return {"key": obj.key, "outcome": "ignored", "reason": "another bucket"}
    if obj.key.startswith(settings.input_prefix):
        return _run_batch(services, obj)
    if obj.key.startswith(settings.uploads_prefix):
        return _run_job(services, obj)
    return {"key": obj.key, "outcome": "ignored", "reason": "outside the watched prefixes"}


# -- operator batch ---------------------------------------------------------------------
def _run_batch(services: Services, obj: ObjectRef) -> dict[str, Any]:
    settings = services.settings
    relative = obj.key[len(settings.input_prefix) :]
    base = settings.output_prefix + posixpath.splitext(relative)[0]
    status: dict[str, Any] = {"source": obj.key, "version": obj.version}
    try:
        outcome = _transcribe_object(
            services,
            obj,
            TranscriptionRequest(TranscribeOptions(word_timestamps=True)),
            payer=None,
            request_id=f"batch:{obj.key}",
        )
    except ApiError as exc:
        status |= {"status": "failed", "error": exc.envelope()["error"]}
        logger.warning("batch object failed", extra={"key": obj.key, "error": exc.code})
    else:
        outputs = []
        for name in settings.batch_formats:
            response_format: ResponseFormat = name  # type: ignore[assignment]
            rendered = render(
                outcome.transcript,
                response_format,
                outcome.billed_seconds,
                ("segment", "word"),
            )
            target = base + FORMAT_SUFFIXES[name]
            services.objects.put_text(target, rendered.body, rendered.media_type)
            outputs.append(target)
        status |= {"status": "completed", "duration": outcome.duration, "outputs": outputs}
    services.objects.put_text(base + ".status.json", _json(status), "application/json")
    if status["status"] == "completed":
        emit_metrics({"BatchCompleted": 1, "AudioSeconds": outcome.duration})
    else:
        emit_metrics({"BatchFailed": 1})
    logger.info("batch object", extra={"key": obj.key, "outcome": status["status"]})
    return {"key": obj.key, "outcome": status["status"]}


# -- customer jobs ----------------------------------------------------------------------
def _run_job(services: Services, obj: ObjectRef) -> dict[str, Any]:
    job_id = obj.key[len(services.settings.uploads_prefix) :].split("/")[0]
    job = services.jobs.start(job_id)
    if job is None:
        return {"key": obj.key, "outcome": "ignored", "reason": "unknown or finished job"}
    try:
        request = transcription_request(**job.request)
        outcome = _transcribe_object(
            services,
            obj,
            request,
            payer=Payer(job.key_id, job.wallet_id, job.metered),
            request_id=job.job_id,
        )
        result_key = _result_key(services, job, request.response_format)
        services.objects.put_text(result_key, outcome.rendered.body, outcome.rendered.media_type)
    except Exception as exc:
        if isinstance(exc, ServiceUnavailable):
            raise  # DynamoDB is down: let Lambda retry the event later
        failure = exc if isinstance(exc, ApiError) else None
        if failure is None:
            # Storage or engine failure after retries: the pipeline already refunded.
            logger.exception("job failed", extra={"job_id": job.job_id})
            failure = ServerError("The job failed on the server. Create a new job to retry.")
        services.jobs.fail(job, failure.envelope()["error"])
        emit_metrics({"JobsFailed": 1})
        emit_metrics({"Errors": 1}, {"ErrorType": failure.type})
        logger.info("job", extra={"job_id": job.job_id, "outcome": failure.type})
        return {"key": obj.key, "job_id": job.job_id, "outcome": "failed", "error": failure.code}
    services.jobs.complete(
        job,
        result_key=result_key,
        media_type=outcome.rendered.media_type,
        duration=round(outcome.duration, 3),
        billed_seconds=outcome.billed_seconds,
        cost=outcome.cost,
    )
    emit_metrics(
        {
            "JobsCompleted": 1,
            "AudioSeconds": outcome.duration,
            "BilledMicroUsd": outcome.cost,
            "EngineLatency": outcome.engine_ms,
        }
    )
    logger.info(
        "job",
        extra={
            "job_id": job.job_id,
            "key_id": job.key_id,
            "outcome": "completed",
            "audio_seconds": round(outcome.duration, 3),
            "billed_micro_usd": outcome.cost,
        },
    )
    return {"key": obj.key, "job_id": job.job_id, "outcome": "completed"}


def _result_key(services: Services, job: Job, response_format: ResponseFormat) -> str:
    return services.settings.results_prefix + job.job_id + FORMAT_SUFFIXES[response_format]


def _transcribe_object(
    services: Services,
    obj: ObjectRef,
    request: TranscriptionRequest,
    *,
    payer: Payer | None,
    request_id: str,
) -> Outcome:
    check_file_size(
        obj.size, services.settings.max_job_upload_bytes, param="file", path="asynchronous jobs"
    )
    with services.objects.download(obj.key) as audio:
        return transcribe(
            services,
            audio,
            request,
            payer=payer,
            request_id=request_id,
            max_seconds=services.settings.max_job_audio_seconds,
        )


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2)
