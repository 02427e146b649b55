"""`make run` (`tinyscribe dev`): DynamoDB Local, a local S3, a development key, the API; one
readable line per request; and everything it started stops with it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import boto3
import httpx
import pytest

from handler.config import REPO_ROOT
from handler.devstack import free_port, wait_for_port
from tests.integration.conftest import SPEECH_TEXT
from tests.support.processes import command_line, descendants, survivors
from tests.support.text import word_error_rate

BUCKET = "tinyscribe-local"


class LocalAws(TypedDict):
    """boto3.client()'s credential and region arguments, for the dev server's services."""

    aws_access_key_id: str
    aws_secret_access_key: str
    region_name: str


LOCAL_AWS: LocalAws = {
    "aws_access_key_id": "local",
    "aws_secret_access_key": "local",
    "region_name": "us-east-1",
}
TINYSCRIBE = str(Path(sys.executable).parent / "tinyscribe")
# What `make run` prints per request: time, method, path, status, latency[, audio, cost][ error].
REQUEST_LINE = re.compile(r"^\d\d:\d\d:\d\d (GET|POST|PUT|DELETE|OPTIONS) /\S* \d{3} \d+ ms")


def eventually(check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    api: int
    s3: int
    data: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: signal.Signals) -> set[int]:
        """Send ``sig`` to the started process alone (not its group); once it has exited,
        the processes that were below it and still run."""
        tree = descendants(self.process.pid)
        assert any("DynamoDBLocal" in command_line(pid) for pid in tree), tree
        self.process.send_signal(sig)
        self.process.wait(timeout=60)
        return survivors(tree, timeout=30)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def dev_stack(tmp_path: Path, make: bool = False) -> Iterator[Running]:
    """`tinyscribe dev` (or `make run`) on free ports, its output in a file; whatever a
    failing test leaves is killed at the end."""
    api, db, s3 = free_port(), free_port(), free_port()
    data = tmp_path / "data"
    if make:
        ports = [f"PORT={api}", f"DDB_PORT={db}", f"S3_PORT={s3}", f"RUN_DATA={data}"]
        command = ["make", "--no-print-directory", "-C", str(REPO_ROOT), "run", *ports]
    else:
        ports = ["--port", str(api), "--db-port", str(db), "--s3-port", str(s3)]
        command = [TINYSCRIBE, "dev", *ports, "--data", str(data)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    log = tmp_path / "dev.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As from a terminal: a suite run in the background (`make test &`) ignores
            # SIGINT, and a child would inherit that and never see its Ctrl-C.
            preexec_fn=_default_sigint,
        )
    started = {process.pid}
    try:
        wait_for_port(api, timeout=120, process=process)
        started |= descendants(process.pid)
        yield Running(process, api, s3, data, log)
    finally:  # what the process started outlives it when the test fails
        for pid in started | descendants(process.pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_dev_server_serves_sync_and_async_transcription(tmp_path: Path, speech_wav: Path) -> None:
    with dev_stack(tmp_path) as dev:
        secret = json.loads((dev.data / "dev-key.json").read_text())["secret"]
        sent: list[httpx.Request] = []
        with httpx.Client(
            base_url=f"http://127.0.0.1:{dev.api}",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=60,
            event_hooks={"request": [sent.append]},
        ) as http:
            sync = http.post(
                "/v1/audio/transcriptions",
                files={"file": speech_wav.read_bytes()},
                data={"model": "whisper-1"},
            )
            assert sync.status_code == 200, sync.text
            assert word_error_rate(SPEECH_TEXT, sync.json()["text"]) <= 0.25
            page = http.get("/")  # the page `make run` points the developer to
            assert page.status_code == 200 and "<title>tinyscribe" in page.text
            assert http.get("/v1/wallet", headers={"Authorization": "Bearer x"}).status_code == 401

            job = http.post("/v1/audio/transcriptions/jobs", json={"model": "whisper-1"}).json()
            httpx.put(job["upload"]["url"], content=speech_wav.read_bytes()).raise_for_status()
            job_url = f"/v1/audio/transcriptions/jobs/{job['id']}"
            eventually(lambda: http.get(job_url).json()["status"] in ("completed", "failed"))
            view = http.get(job_url).json()
            assert view["status"] == "completed", view
            assert word_error_rate(SPEECH_TEXT, view["result"]["text"]) <= 0.25

        local_s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{dev.s3}", **LOCAL_AWS)
        local_s3.put_object(Bucket=BUCKET, Key="input/a.wav", Body=speech_wav.read_bytes())
        status_key = "output/a.status.json"
        eventually(lambda: "Contents" in local_s3.list_objects_v2(Bucket=BUCKET, Prefix=status_key))
        status = json.loads(local_s3.get_object(Bucket=BUCKET, Key=status_key)["Body"].read())
        assert status["status"] == "completed"

        assert dev.stop(signal.SIGTERM) == set()
        assert dev.process.returncode == 128 + signal.SIGTERM
        output = dev.output()

    assert secret in output  # shown to the developer at start
    assert f"open http://127.0.0.1:{dev.api}/ in a browser" in output  # the page's URL
    # One readable line per request the API received, with the audio and the charge; nothing
    # for CloudWatch (JSON, EMF) and no access log (uvicorn's, or the local S3 server's for
    # the poller, which listed the bucket every second all along).
    lines = output.splitlines()
    assert len([line for line in lines if REQUEST_LINE.match(line)]) == len(sent), output
    assert re.search(
        r"^\d\d:\d\d:\d\d POST /v1/audio/transcriptions 200 \d+ ms, \d+\.\d s audio, \$0\.\d{6}$",
        output,
        re.M,
    ), output
    assert re.search(
        r"^\d\d:\d\d:\d\d GET /v1/wallet 401 \d+ ms authentication_error$", output, re.M
    )
    assert not [line for line in lines if line.lstrip().startswith(("{", "}"))], output
    assert "_aws" not in output and "HTTP/1.1" not in output and "list-type" not in output
    assert "Warning" not in output, output  # e.g. Powertools' idempotency without a context
    assert output.count(secret) == 2  # the banner and its curl example, never a log line


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=str)
def test_dev_server_stops_everything_it_started(tmp_path: Path, sig: signal.Signals) -> None:
    """Ctrl-C, a process manager's SIGTERM or a closed terminal's SIGHUP, sent to tinyscribe
    alone: DynamoDB Local and everything else below it is gone once it exits."""
    with dev_stack(tmp_path) as dev:
        left = dev.stop(sig)
        assert left == set(), [command_line(pid) for pid in left]
        assert dev.process.returncode == 128 + sig
        assert "Traceback" not in dev.output()


def test_make_run_passes_sigterm_on(tmp_path: Path) -> None:
    """`make run` under a process manager: SIGTERM to make reaches tinyscribe, and nothing
    make started survives."""
    with dev_stack(tmp_path, make=True) as dev:
        left = dev.stop(signal.SIGTERM)
        assert left == set(), [command_line(pid) for pid in left]
        assert "Traceback" not in dev.output()
