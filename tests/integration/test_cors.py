"""Browser CORS, when origins are configured: the official SDKs' request headers pass the
preflight, and a page can read every header the API answers with (request id, timing, rate
limits, retry, billing). The same lists are API Gateway's (``test_template.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from handler import cors
from handler.api import create_app
from handler.config import Settings
from handler.engine import Engine
from handler.services import Services
from tests.integration.conftest import Caller, MakeCaller
from tests.support.http import Response
from tests.support.openai_node import run_openai_node, sdk_package, stainless_headers_in
from tests.support.uploads import post_audio

ORIGIN = "https://app.example.com"
# Response headers every page may read without being exposed (Fetch standard).
SAFELISTED_RESPONSE = {
    "cache-control", "content-language", "content-length", "content-type",
    "expires", "last-modified", "pragma",
}  # fmt: skip
# Transport and caching headers, for proxies and the browser itself rather than page code.
TRANSPORT = {"vary", "date", "server", "connection", "keep-alive", "transfer-encoding"}
SAFELISTED_REQUEST = {"accept", "accept-language", "content-language"}
SAFELISTED_CONTENT_TYPES = (
    "multipart/form-data",
    "application/x-www-form-urlencoded",
    "text/plain",
)


@pytest.fixture
def cors_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"cors_origins": [ORIGIN]})
    app = create_app(Services.from_settings(configured, engine))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def preflight(client: TestClient, path: str, headers: list[str], origin: str = ORIGIN) -> Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": ", ".join(headers),
        },
    )


def exposed(response: Response) -> set[str]:
    value = response.headers.get("access-control-expose-headers", "")
    return {name.strip().lower() for name in value.split(",") if name.strip()}


def unreadable_headers(response: Response) -> set[str]:
    """Headers of ``response`` a page could not read: neither safelisted nor exposed."""
    names = {name.lower() for name in response.headers}
    cors_own = {name for name in names if name.startswith("access-control-")}
    return names - SAFELISTED_RESPONSE - TRANSPORT - cors_own - exposed(response)


def upload(client: TestClient, caller: Caller, audio: Path, path: str, **fields: str) -> Response:
    return post_audio(client, {**caller.headers, "Origin": ORIGIN}, audio, fields, path=path)


# ---------------------------------------------------------------------------- preflight


@pytest.mark.parametrize(
    "path", ["/v1/audio/transcriptions", "/v1/audio/translations", "/v1/audio/transcriptions/jobs"]
)
def test_preflight_allows_every_sdk_header(cors_client, path):
    response = preflight(cors_client, path, list(cors.ALLOW_HEADERS))
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert set(cors.ALLOW_HEADERS) <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-max-age"] == str(cors.MAX_AGE_SECONDS)


def test_preflight_from_another_origin_is_refused(cors_client):
    response = preflight(cors_client, "/v1/models", ["authorization"], origin="https://evil.test")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_a_header_no_sdk_sends_is_not_allowed(cors_client):
    response = preflight(cors_client, "/v1/models", ["authorization", "x-forwarded-for"])
    assert response.status_code == 400


def test_without_origins_configured_there_is_no_cors(client, caller):
    response = client.get("/v1/models", headers={**caller.headers, "Origin": ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


# ------------------------------------------------------------------- exposed headers


def test_a_page_can_read_every_header_of_a_transcription(cors_client, caller, speech_wav):
    response = upload(cors_client, caller, speech_wav, "/v1/audio/transcriptions")
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert unreadable_headers(response) == set()
    for name in (
        "x-request-id",
        "openai-processing-ms",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-tinyscribe-billed-seconds",
        "x-tinyscribe-cost-micro-usd",
    ):
        assert name in response.headers and name in exposed(response)


def test_a_page_can_read_every_header_of_a_translation(cors_client, caller, speech_wav):
    response = upload(cors_client, caller, speech_wav, "/v1/audio/translations")
    assert response.status_code == 200, response.text
    assert unreadable_headers(response) == set()


def test_a_page_can_read_retry_after_on_a_429(cors_client, make_caller: MakeCaller, tmp_path):
    limited = make_caller(rpm=1)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio")  # a quick 400, counted like any request
    # One request per minute: of three in a row, at least two share a clock minute.
    statuses = [upload(cors_client, limited, junk, "/v1/audio/transcriptions") for _ in range(3)]
    response = next(r for r in statuses if r.status_code == 429)
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "retry-after" in exposed(response) and response.headers["retry-after"]
    assert unreadable_headers(response) == set()


def test_the_middlewares_own_answers_carry_cors(cors_client, caller, settings):
    """A 413 refused before the body is read comes from the outer middleware: a page must
    still be able to read it (and its request id)."""
    too_big = b"\0" * (settings.max_upload_bytes + 200_000)
    response = cors_client.post(
        "/v1/audio/transcriptions",
        headers={**caller.headers, "Origin": ORIGIN},
        files={"file": ("big.wav", too_big)},
        data={"model": "whisper-1"},
    )
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert unreadable_headers(response) == set()


# ------------------------------------------------------------------ the SDKs' own lists


@pytest.fixture(scope="module")
def openai_node_request_headers(
    server: str, make_caller: MakeCaller, speech_wav: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[str, str]]:
    """The headers openai-node sent with a real transcription upload (one ``toFile`` call)."""
    caller = make_caller()
    ran = run_openai_node(
        f"{server}/v1",
        caller.secret,
        speech_wav,
        [{"endpoint": "transcriptions", "params": {"model": "whisper-1"}}],
        tmp_path_factory.mktemp("node"),
    )
    assert ran["results"][0]["ok"], ran["results"][0]
    return [(name, value) for name, value in ran["sentHeaders"][0]]


def needs_preflight(name: str, value: str) -> bool:
    """Whether a browser lists this request header in a preflight (Fetch standard)."""
    if name in SAFELISTED_REQUEST:
        return False
    return not (name == "content-type" and value.lower().startswith(SAFELISTED_CONTENT_TYPES))


def test_preflight_replays_openai_nodes_real_headers(cors_client, openai_node_request_headers):
    """openai-node's headers for an upload, as a browser would list them in the preflight
    (Node adds User-Agent, which a browser build leaves out: a superset)."""
    names = sorted(
        name for name, value in openai_node_request_headers if needs_preflight(name, value)
    )
    assert "authorization" in names and "x-stainless-retry-count" in names
    assert {"openai-organization", "openai-project"} <= set(names)
    response = preflight(cors_client, "/v1/audio/transcriptions", names)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_every_stainless_header_of_openai_node_is_allowed():
    names = stainless_headers_in(sdk_package(), ".mjs")
    assert "x-stainless-retry-count" in names
    assert names <= set(cors.ALLOW_HEADERS), names - set(cors.ALLOW_HEADERS)


def test_every_stainless_header_of_openai_python_is_allowed():
    names = stainless_headers_in(Path(openai.__file__).parent, ".py")
    assert "x-stainless-retry-count" in names
    assert names <= set(cors.ALLOW_HEADERS), names - set(cors.ALLOW_HEADERS)
