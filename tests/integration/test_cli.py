"""The operator's `tinyscribe` command, run as a real process against DynamoDB Local."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.integration.conftest import SPEECH_TEXT
from tests.support.text import word_error_rate

TINYSCRIBE = str(Path(sys.executable).parent / "tinyscribe")


def run(*args: str) -> Any:
    """``tinyscribe *args``'s JSON output (an object or a list, by command)."""
    result = subprocess.run(
        [TINYSCRIBE, *args], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_init_is_idempotent(dynamodb_port):
    assert run("init") == {"created": []}


def test_key_lifecycle_round_trip(server, speech_wav):
    created = run("keys", "create", "--name", "round-trip", "--credits", "0.50", "--rpm", "30")
    secret, key_id, wallet_id = created["secret"], created["key_id"], created["wallet_id"]
    assert secret.startswith("sk-ts-") and created["balance"] == "0.500000"
    assert key_id in [k["key_id"] for k in run("keys", "list")]
    assert all("secret" not in k and "secret_hash" not in k for k in run("keys", "list"))

    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server, timeout=60, headers=headers) as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": speech_wav.read_bytes()},
            data={"model": "whisper-1"},
        )
        assert response.status_code == 200
        usage = http.get("/v1/usage").json()["data"]
        assert usage[0]["kind"] == "charge" and usage[0]["amount"] < 0

        topped = run("wallets", "topup", wallet_id, "10")
        assert (topped["paid"], topped["fee"], topped["credit"]) == (
            "10.000000",
            "0.500000",
            "9.500000",
        )
        shown = run("wallets", "show", wallet_id)
        assert shown["balance"] == sum(entry["amount"] for entry in shown["ledger"])

        assert run("keys", "revoke", key_id)["revoked_at"]
        assert http.get("/v1/wallet").status_code == 401


def test_transcribe_command_prints_the_transcript(speech_wav):
    result = subprocess.run(
        [TINYSCRIBE, "transcribe", str(speech_wav), "--format", "text"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert word_error_rate(SPEECH_TEXT, result.stdout) <= 0.25


def test_bad_amounts_are_refused():
    result = subprocess.run(
        [TINYSCRIBE, "wallets", "topup", "wal_x", "-3"], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "positive" in result.stderr
