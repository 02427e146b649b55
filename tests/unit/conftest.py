"""The unit layer: pure functions of ``handler/``, with no service behind them.

Nothing here may start or reach DynamoDB Local, the S3 server, the model or ffmpeg: this
conftest imports none of the integration fixtures, and every test runs with sockets that
refuse to connect, so a test that touches the network fails loudly instead of slowly.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


class NetworkUsed(AssertionError):
    """A unit test tried to open a connection: it belongs in ``tests/integration``."""


def _refuse(self: socket.socket, address: Any, *args: Any) -> None:
    raise NetworkUsed(f"unit tests must not use the network (connect to {address!r})")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every unit test runs with ``connect`` refused (AWS SDK calls, HTTP, anything)."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    yield


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment: unit tests see only what they set themselves."""
    import os

    for name in list(os.environ):
        if name.startswith(("TINYSCRIBE_", "AWS_LAMBDA_")):
            monkeypatch.delenv(name)
