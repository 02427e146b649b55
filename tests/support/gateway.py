"""A local stand-in for an API Gateway REST API stage in front of the Lambda entry point.

A browser cannot send Lambda events, so this small HTTP server does what API Gateway does for
a REST API (payload 1.0, ``/{proxy+}`` resource) on a named stage: it answers under
``/<stage>/`` only, hands the function the path without the stage (and the full path in
``requestContext.path``), base64-encodes request bodies whose type is in the binary media
types, and passes a response marked ``isBase64Encoded`` through *as base64 text* unless its
content type is a binary media type, exactly where a real REST API would break a page whose
files the function returned as base64. Each request is one call of
``handler.app.lambda_handler`` in this process, one at a time (as in one execution
environment); connections are accepted on threads, since browsers open spare ones.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.lambda_context import LambdaContext

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

BINARY_MEDIA_TYPES = ("multipart/form-data",)
"""What the README tells a REST API front to list (and nothing else)."""


def rest_api_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, stage: str
) -> dict[str, Any]:
    """The payload 1.0 event API Gateway builds for a request to ``<stage><path>``
    (``stage`` with its slash: ``/Prod``)."""
    url = urlsplit(raw_path)
    path = url.path[len(stage) :] or "/"
    query = parse_qs(url.query, keep_blank_values=True)
    content_type = headers.get("Content-Type", "")
    binary = content_type.startswith(BINARY_MEDIA_TYPES)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": url.path,
            "stage": stage.strip("/"),
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent")},
            "protocol": "HTTP/1.1",
        },
        "body": (base64.b64encode(body).decode() if binary else body.decode()) if body else None,
        "isBase64Encoded": binary and bool(body),
    }


class _Gateway(BaseHTTPRequestHandler):
    server: _GatewayServer

    def _handle(self) -> None:
        stage = self.server.stage
        if not (self.path == stage or self.path.startswith(stage + "/")):
            self._send(403, {"content-type": "application/json"}, b'{"message":"Forbidden"}')
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name: value for name, value in self.headers.items()}
        event = rest_api_event(self.command, self.path, headers, body, stage)
        with self.server.invocation:
            # Mangum runs the app on the thread's event loop; a new thread has none.
            asyncio.set_event_loop(asyncio.new_event_loop())
            try:
                result = self.server.lambda_handler(event, LambdaContext())
            finally:
                asyncio.get_event_loop().close()
                asyncio.set_event_loop(None)
        response_headers: dict[str, str] = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            response_headers[name] = ", ".join(values)
        payload = result.get("body") or ""
        content_type = response_headers.get("content-type", "")
        if result.get("isBase64Encoded") and content_type.startswith(BINARY_MEDIA_TYPES):
            out = base64.b64decode(payload)
        else:
            out = payload.encode()  # base64 text stays base64 text, as on a REST API
        self._send(int(result["statusCode"]), response_headers, out)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the function logs each request itself."""


class _GatewayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, lambda_handler: LambdaHandler, stage: str) -> None:
        super().__init__(("127.0.0.1", 0), _Gateway)
        self.lambda_handler = lambda_handler
        self.stage = stage
        self.invocation = threading.Lock()


@contextmanager
def rest_api_stage(lambda_handler: LambdaHandler, stage: str = "Prod") -> Iterator[str]:
    """Serve ``lambda_handler`` at ``http://127.0.0.1:<port>/<stage>``; yields that URL."""
    server = _GatewayServer(lambda_handler, f"/{stage}")
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="rest-api-stage"
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/{stage}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
