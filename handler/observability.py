"""Logs, metrics and traces with Powertools, one set per process.

- ``logger``: structured JSON (Lambda request id and cold start are added by the entry point).
  Key ids are logged, never secrets; audio and transcripts never.
- ``emit_metrics``: one CloudWatch EMF blob per request or object (``EphemeralMetrics`` keeps
  concurrent requests in ``tinyscribe serve`` from mixing their metrics).
- ``tracer``: X-Ray segments around the engine, with boto3 patched so DynamoDB and S3 calls
  appear too. Only on Lambda, and switchable with ``POWERTOOLS_TRACE_DISABLED``; when off, a
  stand-in keeps the X-Ray SDK (0.2-0.5 s of imports) out of the cold start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

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


def emit_metrics(values: Mapping[str, float], dimensions: Mapping[str, str] | None = None) -> None:
    """Print one EMF blob with ``values`` (names from :data:`METRIC_UNITS`)."""
    if not values:
        return
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    for name, value in values.items():
        metrics.add_metric(name=name, unit=METRIC_UNITS[name], value=value)
    for dimension, label in (dimensions or {}).items():
        metrics.add_dimension(name=dimension, value=label)
    metrics.flush_metrics()
