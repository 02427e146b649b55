"""The unit layer's guard: a test that reaches for the network fails at once."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from tests.unit.conftest import NetworkUsed


def test_a_socket_connect_is_refused() -> None:
    with socket.socket() as sock, pytest.raises(NetworkUsed, match=r"127\.0\.0\.1"):
        sock.connect(("127.0.0.1", 9))


def test_an_http_request_is_refused() -> None:
    with pytest.raises(NetworkUsed):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)
