"""Logs, metrics and traces with Powertools, one set per process.

- ``logger``: structured JSON (Lambda request id and cold start are added by the entry point).
  Key ids are logged, never secrets; audio and transcripts never.
- ``emit_metrics``: one CloudWatch EMF blob per request or object (``EphemeralMetrics`` keeps
  concurrent requests in ``tinyscribe serve`` from mixing their metrics).
- ``use_text_output``: for a person at a terminal (``tinyscribe dev``, what ``make run`` runs):
  the same records as one readable line each, and no EMF (it is for CloudWatch). Never on
  Lambda, where the JSON and EMF above are what CloudWatch reads.
- ``tracer``: X-Ray segments around the engine, with boto3 patched so DynamoDB and S3 calls
  appear too. Only on Lambda, and switchable with ``POWERTOOLS_TRACE_DISABLED``; when off, a
  stand-in keeps the X-Ray SDK (0.2-0.5 s of imports) out of the cold start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, overload

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from handler.billing import micro_to_usd
from handler.config import running_in_lambda

SERVICE = "tinyscribe"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Tinyscribe")


Decorated = TypeVar("Decorated", bound=Callable[..., Any])


class Untraced:
    """Tracer's decorators, doing nothing."""

    @overload
    def capture_method(self, method: Decorated, **_: Any) -> Decorated: ...

    @overload
    def capture_method(self, method: None = None, **_: Any) -> Callable[[Decorated], Decorated]: ...

    def capture_method(
        self, method: Decorated | None = None, **_: Any
    ) -> Decorated | Callable[[Decorated], Decorated]:
        if method is not None:
            return method
        return lambda decorated: decorated

    capture_lambda_handler = capture_method


def tracing_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true")
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ and not disabled


logger = Logger(service=SERVICE)
tracer: Tracer | Untraced = Tracer(service=SERVICE) if tracing_enabled() else Untraced()

# Metric name -> unit, for everything the service emits.
METRIC_UNITS: dict[str, MetricUnit] = {
    "Requests": MetricUnit.Count,
    "ColdStart": MetricUnit.Count,
    "RequestLatency": MetricUnit.Milliseconds,
    "EngineLatency": MetricUnit.Milliseconds,
    "AudioSeconds": MetricUnit.Seconds,
    "BilledMicroUsd": MetricUnit.Count,
    "Errors": MetricUnit.Count,
    "InsufficientCredits": MetricUnit.Count,
    "RateLimited": MetricUnit.Count,
    "JobsCompleted": MetricUnit.Count,
    "JobsFailed": MetricUnit.Count,
    "BatchCompleted": MetricUnit.Count,
    "BatchFailed": MetricUnit.Count,
}


LogFormat = Literal["json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "text")


def emit_metrics(values: Mapping[str, float], dimensions: Mapping[str, str] | None = None) -> None:
    """Print one EMF blob with ``values`` (names from :data:`METRIC_UNITS`); nothing once
    :func:`use_text_output` ran (the request line carries the same numbers)."""
    if not values or isinstance(logger.registered_handler.formatter, TextFormatter):
        return
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    for name, value in values.items():
        metrics.add_metric(name=name, unit=METRIC_UNITS[name], value=value)
    for dimension, label in (dimensions or {}).items():
        metrics.add_dimension(name=dimension, value=label)
    metrics.flush_metrics()


# Keys every record has, or Lambda or uvicorn adds; the text line leaves them out.
_BASE_KEYS = frozenset(
    {
        "name",
        "color_message",
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "exception",
        "exception_name",
        "exception_notes",
        "stack_trace",
        "xray_trace_id",
        "cold_start",
        "sampling_rate",
    }
)


class TextFormatter(LambdaPowertoolsFormatter):
    """Powertools' record, rendered for a person instead of CloudWatch (Powertools documents
    overriding ``serialize`` for this). A request is one line::

        14:02:11 POST /v1/audio/transcriptions 200 842 ms, 3.1 s audio, $0.000207
        14:02:12 GET /v1/wallet 401 4 ms authentication_error

    Anything else is ``time [LEVEL] message key=value ...`` (the level only above INFO), with
    the traceback under it. The request id stays out of the line (it is in the response's
    ``x-request-id``); the key id, engine time and Lambda fields stay in the JSON format.
    """

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")  # the record's time, local

    def serialize(self, log: Any) -> str:
        """``log``: the record as Powertools' dict (its annotation says ``LogRecord``)."""
        clock = log.get("timestamp", "")
        if log.get("message") == "request" and "status" in log:
            return f"{clock} {self._request_line(log)}"
        level = log.get("level", "INFO")
        parts = [clock] + ([level] if level not in ("INFO", "DEBUG") else [])
        parts.append(str(log.get("message", "")))
        parts += [f"{name}={value}" for name, value in log.items() if name not in _BASE_KEYS]
        line = " ".join(parts)
        if log.get("exception"):
            line += "\n" + str(log["exception"])
        return line

    @staticmethod
    def _request_line(log: Mapping[str, Any]) -> str:
        latency_ms = float(log.get("latency_ms") or 0)
        line = f"{log.get('method')} {log.get('path')} {log['status']} {latency_ms:.0f} ms"
        if log.get("audio_seconds") is not None:
            line += f", {float(log['audio_seconds']):.1f} s audio"
            line += f", ${micro_to_usd(int(log.get('billed_micro_usd') or 0))}"
        if log.get("outcome") not in (None, "ok"):
            line += f" {log['outcome']}"
        return line


def use_text_output() -> None:
    """Write this process's logs as :class:`TextFormatter` lines and stop EMF: for a local
    server watched by a person. Refused on Lambda, where CloudWatch reads the JSON and EMF.

    Raises ``RuntimeError`` on Lambda.
    """
    if running_in_lambda():
        raise RuntimeError("text logs are for local servers; Lambda keeps JSON and EMF")
    logger.registered_handler.setFormatter(TextFormatter())
