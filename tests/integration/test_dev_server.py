"""`make run` (`tinyscribe dev`): DynamoDB Local, a local S3, a development key, the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import httpx

from handler.devstack import free_port, wait_for_port
from tests.integration.conftest import SPEECH_TEXT
from tests.support.text import word_error_rate

BUCKET = "tinyscribe-local"
LOCAL_AWS = {
    "aws_access_key_id": "local",
    "aws_secret_access_key": "local",
    "region_name": "us-east-1",
}


def eventually(check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_dev_server_serves_sync_and_async_transcription(tmp_path: Path, speech_wav: Path) -> None:
    api, db, s3 = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "tinyscribe"),
            "dev",
            *("--port", str(api), "--db-port", str(db), "--s3-port", str(s3)),
            *("--data", str(tmp_path)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(api, timeout=90)
        secret = json.loads((tmp_path / "dev-key.json").read_text())["secret"]
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{api}", headers=headers, timeout=60) as http:
            sync = http.post(
                "/v1/audio/transcriptions",
                files={"file": speech_wav.read_bytes()},
                data={"model": "whisper-1"},
            )
            assert sync.status_code == 200, sync.text
            assert word_error_rate(SPEECH_TEXT, sync.json()["text"]) <= 0.25
            page = http.get("/")  # the page `make run` points the developer to
            assert page.status_code == 200 and "<title>tinyscribe" in page.text

            job = http.post("/v1/audio/transcriptions/jobs", json={"model": "whisper-1"}).json()
            httpx.put(job["upload"]["url"], content=speech_wav.read_bytes()).raise_for_status()
            job_url = f"/v1/audio/transcriptions/jobs/{job['id']}"
            eventually(lambda: http.get(job_url).json()["status"] in ("completed", "failed"))
            view = http.get(job_url).json()
            assert view["status"] == "completed", view
            assert word_error_rate(SPEECH_TEXT, view["result"]["text"]) <= 0.25

        local_s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{s3}",
            **LOCAL_AWS,
        )
        local_s3.put_object(Bucket=BUCKET, Key="input/a.wav", Body=speech_wav.read_bytes())
        status_key = "output/a.status.json"
        eventually(lambda: "Contents" in local_s3.list_objects_v2(Bucket=BUCKET, Prefix=status_key))
        status = json.loads(local_s3.get_object(Bucket=BUCKET, Key=status_key)["Body"].read())
        assert status["status"] == "completed"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert secret in output  # shown to the developer at start
    assert f"open http://127.0.0.1:{api}/ in a browser" in output  # the page's URL
