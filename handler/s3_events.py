"""S3 ObjectCreated events: operator batch files and customer job uploads.

- ``input/...``: transcribed into every batch format under ``output/...`` next to a
  ``.status.json``; never billed.
- ``uploads/<job id>``: the job's audio; transcribed, billed to the job's wallet, result
  written under ``results/`` and recorded on the job.

What fails decides what happens next:

- **The input** (not audio, empty, truncated to nothing, too long or too large, bad job
  options, a wallet that cannot pay): a ``failed`` status with the 4xx reason in OpenAI's
  error shape (the batch ``.status.json``, the job record). The handler returns normally, so
  Lambda does not retry, and nothing is charged.
- **The infrastructure** (S3 or DynamoDB unreachable, the model missing, anything
  unexpected): the handler raises, Lambda retries the event (twice, then the failed-events
  queue). A job keeps its reservation open meanwhile; the retry finds it (the reservation is
  derived from the job) and carries on. A job's charge is settled in the transaction that
  records its result, after the result object is written; if every retry fails,
  reconciliation refunds it and fails the job in one transaction.

S3 delivers events at least once, so each object version is processed under Powertools'
idempotency guard: a duplicate gets the first run's summary back, and a concurrent
duplicate raises ``IdempotencyAlreadyInProgressError`` so Lambda retries it later.
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

from handler.audio import DecodedAudio
from handler.billing import billable_seconds
from handler.errors import ApiError
from handler.formats import render
from handler.observability import emit_metrics, logger
from handler.pipeline import (
    Payer,
    TranscriptionRequest,
    UnitOfWork,
    decode_input,
    reserve,
    run_engine,
)
from handler.services import Services
from handler.stores.dynamo import CLIENT_CONFIG
from handler.stores.jobs import Job
from handler.stores.wallets import ReservationClosed
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
    return {"results": [process_once(services, ref=asdict(ref)) for ref in object_refs(event)]}


def object_refs(event: dict[str, Any]) -> list[ObjectRef]:
    """The object versions an S3 notification names, in its records' order: keys URL-decoded
    (S3 sends ``+`` for a space and ``%xx`` escapes), the version id (the ETag on a bucket
    without versioning, ``""`` if neither is sent) and the size in bytes."""
    refs = []
    for record in S3Event(event).records:
        s3 = record.s3
        refs.append(
            ObjectRef(
                bucket=s3.bucket.name,
                key=unquote_plus(s3.get_object.key),
                version=s3.get_object.version_id or s3.get_object.etag or "",
                size=int(s3.get_object.size or 0),
            )
        )
    return refs


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
    request = TranscriptionRequest(TranscribeOptions(word_timestamps=True))
    try:
        audio = _decode_object(services, obj)
    except InputProblem as problem:
        error = problem.error
        status |= {"status": "failed", "status_code": error.status, **error.envelope()}
        logger.warning("batch object failed", extra={"key": obj.key, "error": error.code})
        services.objects.put_text(base + ".status.json", _json(status), "application/json")
        emit_metrics({"BatchFailed": 1})
        return {"key": obj.key, "outcome": "failed", "error": error.code}
    with services.slots.hold():
        transcript, _rendered, _engine_ms = run_engine(services, audio, request)
    outputs = []
    for name in settings.batch_formats:
        rendered = render(transcript, name, audio.whole_seconds, ("segment", "word"))
        target = base + FORMAT_SUFFIXES[name]
        services.objects.put_text(target, rendered.body, rendered.media_type)
        outputs.append(target)
    status |= {"status": "completed", "duration": round(audio.duration, 3), "outputs": outputs}
    services.objects.put_text(base + ".status.json", _json(status), "application/json")
    emit_metrics({"BatchCompleted": 1, "AudioSeconds": audio.duration})
    logger.info("batch object", extra={"key": obj.key, "outcome": "completed"})
    return {"key": obj.key, "outcome": "completed"}


# -- customer jobs ----------------------------------------------------------------------
def _run_job(services: Services, obj: ObjectRef) -> dict[str, Any]:
    job_id = obj.key[len(services.settings.uploads_prefix) :].split("/")[0]
    job = services.jobs.start(job_id)
    if job is None:
        return {"key": obj.key, "outcome": "ignored", "reason": "unknown or finished job"}
    assert job.started_at is not None
    unit = UnitOfWork.job(job.job_id, job.started_at)
    try:
        request = _job_request(job)
        audio = _decode_object(services, obj)
    except InputProblem as problem:
        # Nothing was reserved: an input that fails did so before any reservation.
        services.jobs.fail(job, problem.error.envelope()["error"])
        return _job_failed(obj, job, problem.error)
    seconds = billable_seconds(audio.duration, services.settings.billing_increment_seconds)
    with services.slots.hold():
        try:
            charge = reserve(services, Payer(job.key_id, job.wallet_id, job.metered), unit, seconds)
        except ApiError as exc:
            if exc.status >= 500:
                raise  # DynamoDB down or throttled: Lambda retries the event
            services.jobs.fail(job, exc.envelope()["error"])  # 402, or a key without wallet
            return _job_failed(obj, job, exc)
        # From here an exception leaves the reservation open for Lambda's retry to resume.
        _transcript, rendered, engine_ms = run_engine(services, audio, request)
    result_key = _result_key(services, job, request.response_format)
    services.objects.put_text(result_key, rendered.body, rendered.media_type)
    try:
        charge.settle(
            services.jobs.complete_item(
                job,
                result_key=result_key,
                media_type=rendered.media_type,
                duration=round(audio.duration, 3),
                billed_seconds=seconds,
                cost=charge.amount,
            )
        )
    except ReservationClosed:
        # Reconciliation gave up on this job (refunded it, failed it) while we ran.
        logger.warning("job closed while it ran", extra={"job_id": job.job_id})
        return {"key": obj.key, "job_id": job.job_id, "outcome": "failed", "error": "closed"}
    emit_metrics(
        {
            "JobsCompleted": 1,
            "AudioSeconds": audio.duration,
            "BilledMicroUsd": charge.amount,
            "EngineLatency": engine_ms,
        }
    )
    logger.info(
        "job",
        extra={
            "job_id": job.job_id,
            "key_id": job.key_id,
            "outcome": "completed",
            "audio_seconds": round(audio.duration, 3),
            "billed_micro_usd": charge.amount,
        },
    )
    return {"key": obj.key, "job_id": job.job_id, "outcome": "completed"}


def _job_request(job: Job) -> TranscriptionRequest:
    try:
        return transcription_request(**job.request)
    except ApiError as exc:
        raise InputProblem(exc) from exc


def _job_failed(obj: ObjectRef, job: Job, error: ApiError) -> dict[str, Any]:
    emit_metrics({"JobsFailed": 1})
    emit_metrics({"Errors": 1}, {"ErrorType": error.type})
    logger.info("job", extra={"job_id": job.job_id, "outcome": error.type, "error": error.code})
    return {"key": obj.key, "job_id": job.job_id, "outcome": "failed", "error": error.code}


def _result_key(services: Services, job: Job, response_format: ResponseFormat) -> str:
    return services.settings.results_prefix + job.job_id + FORMAT_SUFFIXES[response_format]


# -- shared -----------------------------------------------------------------------------
class InputProblem(Exception):
    """The object cannot be transcribed, whatever the retries: ``error`` is the 4xx."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def _decode_object(services: Services, obj: ObjectRef) -> DecodedAudio:
    """Check the size, download (S3 errors propagate: retried) and decode (errors are the
    input's: :class:`InputProblem`)."""
    settings = services.settings
    try:
        check_file_size(
            obj.size, settings.max_job_upload_bytes, param="file", path="asynchronous jobs"
        )
    except ApiError as exc:
        raise InputProblem(exc) from exc
    with services.objects.download(obj.key) as source:
        try:
            return decode_input(source, max_seconds=settings.max_job_audio_seconds)
        except ApiError as exc:
            raise InputProblem(exc) from exc


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2)
