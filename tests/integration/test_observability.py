"""What an operator reads at 3 a.m.: JSON logs and EMF metrics from a real `tinyscribe serve`,
and never a secret, a transcript or audio in them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from handler.billing import cost_micro_usd
from handler.config import Settings
from handler.devstack import free_port, wait_for_port
from handler.observability import METRIC_UNITS, use_text_output
from tests.integration.conftest import SPEECH_TEXT, Caller, MakeCaller


@pytest.fixture(scope="module")
def served_logs(
    settings: Settings,
    make_caller: MakeCaller,
    speech_wav: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Run a server, send it a mix of requests, stop it, and hand over everything it printed."""
    caller: Caller = make_caller()
    out = tmp_path_factory.mktemp("logs") / "serve.log"
    port = free_port()
    with out.open("w") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "tinyscribe"), "serve", "--port", str(port)],
            env=dict(os.environ),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(port, timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            ok = http.post(
                "/v1/audio/transcriptions",
                headers=caller.headers,
                files={"file": speech_wav.read_bytes()},
                data={"model": "whisper-1"},
            )
            assert ok.status_code == 200
            wrong = caller.secret[:-1] + ("x" if caller.secret[-1] != "x" else "y")
            assert (
                http.get("/v1/wallet", headers={"Authorization": f"Bearer {wrong}"}).status_code
                == 401
            )
            assert http.get("/v1/nope", headers=caller.headers).status_code == 404
        process.terminate()
        process.wait(timeout=10)
    yield {
        "text": out.read_text(),
        "caller": caller,
        "request_id": ok.headers["x-request-id"],
        "response": ok,
    }


def parsed(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_every_line_is_json(served_logs):
    lines = [line for line in served_logs["text"].splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line


def test_request_lines_carry_the_fields_an_operator_needs(served_logs):
    requests = [line for line in parsed(served_logs["text"]) if line.get("message") == "request"]
    by_status = {line["status"]: line for line in requests}
    assert set(by_status) >= {200, 401, 404}
    ok = by_status[200]
    assert ok["request_id"] == served_logs["request_id"]
    assert ok["key_id"] == served_logs["caller"].key.key_id
    assert ok["path"] == "/v1/audio/transcriptions" and ok["method"] == "POST"
    response = served_logs["response"]
    assert ok["audio_seconds"] == response.json()["duration"]  # what the client was told
    assert ok["billed_micro_usd"] == int(response.headers["x-tinyscribe-cost-micro-usd"])
    seconds = response.json()["usage"]["seconds"]
    assert ok["billed_micro_usd"] == cost_micro_usd(seconds, Settings().price_micro_usd_per_minute)
    assert ok["latency_ms"] >= ok["engine_ms"] > 0
    assert ok["outcome"] == "ok" and ok["service"] == "tinyscribe" and ok["level"] == "INFO"
    assert by_status[401]["outcome"] == "authentication_error"
    assert by_status[404]["outcome"] == "not_found"


def test_logs_never_hold_secrets_or_transcripts(served_logs):
    text = served_logs["text"]
    secret = served_logs["caller"].secret
    assert secret not in text
    assert served_logs["caller"].random_part not in text  # not even the random part
    assert "quick brown" not in text.lower() and SPEECH_TEXT.split()[3] not in text.lower()


def test_emf_metrics_have_the_expected_names_and_units(served_logs):
    blobs = [line for line in parsed(served_logs["text"]) if "_aws" in line]
    emitted: dict[str, str] = {}
    for blob in blobs:
        directive = blob["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "Tinyscribe"
        for metric in directive["Metrics"]:
            emitted[metric["Name"]] = metric["Unit"]
            assert metric["Name"] in blob  # the value sits beside the directive
    for name in (
        "Requests",
        "RequestLatency",
        "AudioSeconds",
        "BilledMicroUsd",
        "EngineLatency",
        "Errors",
    ):
        assert emitted[name] == METRIC_UNITS[name].value
    errors = [b for b in blobs if "Errors" in b]
    assert {b["ErrorType"] for b in errors} >= {"authentication_error", "not_found"}


def test_text_logs_are_refused_on_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    """CloudWatch reads the JSON and EMF; `tinyscribe dev`'s text lines never replace them."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tinyscribe-ApiFunction")
    with pytest.raises(RuntimeError, match="Lambda keeps JSON"):
        use_text_output()
