"""The function as Lambda runs it: a cold process, AWS_LAMBDA_* variables, the model layer in
/opt, and a filesystem that is read-only except /tmp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from handler.config import REPO_ROOT, Settings
from tests.integration.conftest import Caller
from tests.support.text import word_error_rate

EVENT = REPO_ROOT / "events" / "http-api-transcribe-json.json"
SPOKEN = "Hello from tiny scribe. The quick brown fox jumps over the lazy dog."

# Reads an event on stdin and invokes the entry point once, like the Lambda runtime does.
INVOKE = """
import json, sys
from tests.support.lambda_context import LambdaContext
event = json.load(sys.stdin)
from handler.app import lambda_handler
response = lambda_handler(event, LambdaContext(memory_limit_in_mb=2048))
print("RESULT " + json.dumps(response), flush=True)
"""
# A private mount namespace: the model layer at /opt, everything read-only but /tmp.
READ_ONLY_BUT_TMP = (
    'mount --bind "$LAYER" /opt && mount -o remount,bind,ro /opt'
    " && mount --bind / / && mount -o remount,bind,ro /"
)
FRESH_TMP = "mount -t tmpfs tmpfs /tmp"
# A checkout under /tmp (a fresh clone in a temporary directory) would vanish under a fresh
# tmpfs; there /tmp stays as it is, writable.
KEEP_TMP = "mount --bind /tmp /tmp && mount -o remount,bind,rw /tmp"


def lambda_filesystem() -> str:
    """The shell commands that set up the namespace, then run ``"$@"``."""
    checkout_in_tmp = REPO_ROOT.resolve().is_relative_to(Path("/tmp").resolve())
    tmp = KEEP_TMP if checkout_in_tmp else FRESH_TMP
    return f'{READ_ONLY_BUT_TMP} && {tmp} && exec "$@"'


def lambda_environment(settings: Settings) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name.startswith(("AWS_", "TINYSCRIBE_", "PATH", "LANG"))
    }
    env.pop("TINYSCRIBE_MODEL_DIR", None)  # must come from /opt, as in the image
    return env | {
        "HOME": "/tmp",
        "PYTHONPATH": str(REPO_ROOT),
        "LAMBDA_TASK_ROOT": str(REPO_ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "tinyscribe-ApiFunction",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/tinyscribe-ApiFunction",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": env.get("AWS_DEFAULT_REGION", "us-east-1"),
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        "LAYER": str(settings.model_dir.parent.parent),
    }


def invoke_cold(
    settings: Settings, event: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", lambda_filesystem(), "sh", sys.executable, "-c", INVOKE],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env=lambda_environment(settings),
        cwd="/",
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    response = json.loads(next(line[7:] for line in lines if line.startswith("RESULT ")))
    logs = [json.loads(line) for line in lines if not line.startswith("RESULT ")]
    return response, logs


def test_cold_read_only_invocation_transcribes(settings: Settings, caller: Caller) -> None:
    event = json.loads(EVENT.read_text())
    event["headers"]["authorization"] = f"Bearer {caller.secret}"

    response, logs = invoke_cold(settings, event)

    assert response["statusCode"] == 200, response["body"]
    assert word_error_rate(SPOKEN, json.loads(response["body"])["text"]) <= 0.3
    cold = next(line for line in logs if line.get("message") == "cold start")
    assert cold["cold_start"] is True
    assert cold["function_name"] == "tinyscribe-ApiFunction"
    # The model loads on a thread from the init phase on (see handler/app.py), so it may be
    # ready before the first event starts; it is within the whole cold start.
    assert 0 < cold["model_load_ms"] <= cold["total_ms"]
    loaded = next(line for line in logs if line.get("message") == "model loaded")
    assert loaded["threads"] == 1  # 2,048 MB of Lambda memory buys about one vCPU
    # Every line is JSON for CloudWatch (invoke_cold parsed them): the request's own line and
    # its EMF blob too, never the text line `make run` prints.
    request = next(line for line in logs if line.get("message") == "request")
    assert request["status"] == 200 and request["function_name"] == "tinyscribe-ApiFunction"
    emf = next(line for line in logs if "_aws" in line and "Requests" in line)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Tinyscribe"
