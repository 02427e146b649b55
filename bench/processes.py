"""The processes the benchmark drives: workers, ``tinyscribe serve`` and DynamoDB Local."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import procstats
from bench.worker import PREFIX
from handler.config import REPO_ROOT, Settings
from handler.devstack import free_port, start_dynamodb_local, use_local_aws, wait_for_port

BENCH_PYTHON = "TINYSCRIBE_BENCH_PYTHON"
GRANT_MICRO_USD = 1_000_000_000  # $1000: never the limit in a benchmark
BENCH_RPM = 100_000


def measuring_python() -> str:
    """The interpreter of the measured processes: ``$TINYSCRIBE_BENCH_PYTHON`` (``make bench``
    points it at a venv with only what the Lambda image installs) or this one."""
    return os.environ.get(BENCH_PYTHON, sys.executable)


def bench_env(threads: int | None = None, **extra: str) -> dict[str, str]:
    """This process's environment (local AWS endpoints included), the allocator setting of
    template.yaml's functions, plus overrides."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["MALLOC_ARENA_MAX"] = "2"
    if threads is not None:
        env["TINYSCRIBE_CPU_THREADS"] = str(threads)
    env.update(extra)
    return env


def pinned(command: list[str], cpus: str | None) -> list[str]:
    """``command`` restricted to ``cpus`` (e.g. ``"0"``) with taskset, to model 1 vCPU."""
    return ["taskset", "-c", cpus, *command] if cpus else command


class Worker:
    """A ``bench.worker`` subprocess and its JSON-lines protocol."""

    def __init__(self, kind: str, threads: int, cpus: str | None = None, **env: str) -> None:
        self.kind, self.threads, self.cpus = kind, threads, cpus
        self.process = subprocess.Popen(
            pinned([measuring_python(), "-m", "bench.worker", kind], cpus),
            cwd=REPO_ROOT,
            env=bench_env(threads, **env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(PREFIX):
                answer: dict[str, Any] = json.loads(line[len(PREFIX) :])
                if "error" in answer:
                    raise RuntimeError(f"{self.kind} worker: {answer['error']}")
                return answer
        raise RuntimeError(f"{self.kind} worker exited with {self.process.wait()}")

    def run(self, **job: Any) -> dict[str, Any]:
        """Send one job and wait for its measurements."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Server:
    """``tinyscribe serve`` on a free port, measured from outside through ``/proc``."""

    def __init__(self, threads: int, secret: str, cpus: str | None = None, **env: str) -> None:
        self.port = free_port()
        self.secret = secret
        command = [measuring_python(), "-m", "handler.cli", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            pinned(command, cpus),
            cwd=REPO_ROOT,
            env=bench_env(threads, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=60, process=self.process)
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=3600,  # the 10 minute meeting on a busy box
        )

    def transcribe(self, path: Path, response_format: str = "json") -> dict[str, Any]:
        """POST the file as the OpenAI SDK would; wall time seen by the client."""
        from bench.texts import transcript_text

        pid = self.process.pid
        procstats.reset_peak_rss(pid)
        cpu = procstats.cpu_seconds(pid)
        started = time.perf_counter()
        response = self.client.post(
            "/v1/audio/transcriptions",
            files={"file": (path.name, path.read_bytes())},
            data={"model": "whisper-1", "response_format": response_format},
        )
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
        return {
            "text": transcript_text(response_format, response.text),
            "seconds": seconds,
            "processing_ms": float(response.headers.get("openai-processing-ms", "nan")),
            "cpu_seconds": procstats.cpu_seconds(pid) - cpu,
            "peak_rss_mb": procstats.peak_rss_mb(pid),
            "rss_mb": procstats.rss_mb(pid),
        }

    def stream(self, path: Path) -> dict[str, Any]:
        """POST the file with ``stream=true`` (json) and read the server-sent events: seconds
        to the first ``transcript.text.delta`` and to ``transcript.text.done``, as the client
        sees them."""
        started = time.perf_counter()
        first_delta: float | None = None
        with self.client.stream(
            "POST",
            "/v1/audio/transcriptions",
            files={"file": (path.name, path.read_bytes())},
            data={"model": "whisper-1", "stream": "true"},
        ) as response:
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:500]!r}")
            for line in response.iter_lines():
                if first_delta is None and '"transcript.text.delta"' in line:
                    first_delta = time.perf_counter() - started
                if '"transcript.text.done"' in line:
                    break
        if first_delta is None:
            raise RuntimeError("the stream ended without a delta")
        return {"first_delta_seconds": first_delta, "seconds": time.perf_counter() - started}

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class LocalStack:
    """DynamoDB Local with the service's tables and one funded key."""

    port: int
    secret: str


@contextmanager
def local_stack() -> Iterator[LocalStack]:
    """Start an in-memory DynamoDB Local, create the tables and a funded payg key."""
    from handler.services import Services
    from handler.stores.tables import create_tables

    port = free_port()
    # On AWS the database does not run on the function's CPU; here it shares the 2 cores, and
    # its JVM burns 70-140 ms of CPU per transcription request (4 calls). Niced, it yields
    # the cores to the engine; its calls' latency still counts in the service's overhead.
    database = start_dynamodb_local(port, niceness=19)
    try:
        use_local_aws(dynamodb_port=port)
        settings = Settings()
        create_tables(settings)
        services = Services.from_settings(settings)
        wallet = services.wallets.create(grant=GRANT_MICRO_USD)
        _key, secret = services.keys.create(
            name="bench", wallet_id=wallet.wallet_id, plan="payg", rpm=BENCH_RPM
        )
        yield LocalStack(port, secret)
    finally:
        database.terminate()
        database.wait(timeout=15)
