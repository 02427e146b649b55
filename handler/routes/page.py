"""``GET /``: the page people use to try the API, and the static files it loads.

The page (``handler/static/``: HTML, CSS and plain JavaScript modules, no build step) ships
inside the package, so ``pip install`` and the Lambda image both carry it. Every URL in it is
relative, so it works at the root of ``tinyscribe serve``, under an API Gateway stage path
(``/Prod/``) and on a custom domain's base path. It talks to the API with the key the person
types in; the server holds no session.

The responses carry a strict Content-Security-Policy: scripts, styles and connections only
from this origin, no inline code, no frames, no form submissions; the audio player may play
``blob:`` URLs (the chosen file or the recording, which never leave the browser except in the
transcription request).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from handler.errors import NotFound

router = APIRouter(include_in_schema=False)

STATIC_PACKAGE = "handler"
STATIC_DIR = "static"

MEDIA_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "messages.js": "text/javascript; charset=utf-8",
    "money.js": "text/javascript; charset=utf-8",
    "recorder.js": "text/javascript; charset=utf-8",
    "subtitles.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
"""Every file the page may load, with its media type; nothing else is served from the
directory. The media types are all text (``handler.app.TEXT_MIME_TYPES``), so behind API
Gateway they are returned as text, never base64."""

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Small files that change with each release: revalidate rather than serve a stale copy.
    "Cache-Control": "no-cache",
}


@cache
def static_file(name: str) -> bytes:
    """The bytes of ``handler/static/<name>``, read once per process."""
    return (resources.files(STATIC_PACKAGE) / STATIC_DIR / name).read_bytes()


def external_path(request: Request) -> str:
    """The path the browser asked for, before API Gateway took the stage off.

    REST APIs (payload 1.0) hand the function ``/`` for ``/Prod`` and ``/Prod/`` alike and keep
    the full path in ``requestContext.path``; HTTP APIs and Function URLs give ``rawPath``.
    Outside Lambda it is the request's own path.
    """
    event: dict[str, Any] = request.scope.get("aws.event") or {}
    context: dict[str, Any] = event.get("requestContext") or {}
    return str(context.get("path") or event.get("rawPath") or request.url.path)


@router.get("/")
def page(request: Request) -> Response:
    """The page, or a redirect to ``<stage>/`` when opened as ``/Prod`` without the slash
    (relative URLs would otherwise resolve against the host's root)."""
    path = external_path(request)
    if not path.endswith("/"):
        target = path.rsplit("/", 1)[-1] + "/"
        return RedirectResponse(target, status_code=308, headers=SECURITY_HEADERS)
    return _respond("index.html")


@router.get("/static/{name}")
def asset(name: str) -> Response:
    """One of the page's files (:data:`MEDIA_TYPES`); anything else is 404."""
    if name not in MEDIA_TYPES:
        raise NotFound(f"Unknown file: static/{name}")
    return _respond(name)


def _respond(name: str) -> Response:
    return Response(static_file(name), media_type=MEDIA_TYPES[name], headers=SECURITY_HEADERS)
