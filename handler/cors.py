"""The browser (CORS) policy: which request headers a page may send and which response
headers its code may read. The app applies it when ``TINYSCRIBE_CORS_ORIGINS`` is set, and
``template.yaml`` gives API Gateway the same lists (a test keeps them equal).
"""

from __future__ import annotations

ALLOW_METHODS = ("GET", "POST")

ALLOW_HEADERS = (
    "authorization",
    "content-type",
    "idempotency-key",
    "openai-organization",
    "openai-project",
    "user-agent",
    # Sent by openai-node on every request (its client.ts and internal/detect-platform.ts)...
    "x-stainless-arch",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-timeout",
    # ...by its helpers (polling, helper methods)...
    "x-stainless-custom-poll-interval",
    "x-stainless-helper-method",
    "x-stainless-poll-helper",
    # ...and by openai-python.
    "x-stainless-async",
    "x-stainless-custom-event-handler",
    "x-stainless-raw-response",
    "x-stainless-read-timeout",
    "x-stainless-stream-helper",
)
"""Request headers the official SDKs send (lowercase), beyond the CORS-safelisted ones. Listed
by name: a ``*`` would not cover ``authorization``, and Starlette matches names exactly."""

EXPOSE_HEADERS = (
    "x-request-id",
    "openai-processing-ms",
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-tinyscribe-billed-seconds",
    "x-tinyscribe-cost-micro-usd",
    "idempotent-replayed",
)
"""Response headers a page may read (browsers show it only the CORS-safelisted ones
otherwise): OpenAI's request id, timing, rate-limit and retry headers, this service's
billing headers, and whether an ``Idempotency-Key`` answer is a replay. A new response header
needs a line here."""

MAX_AGE_SECONDS = 600
"""How long a browser may reuse a preflight answer."""
