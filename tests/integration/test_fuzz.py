"""Property-based fuzzing of every route from the app's own OpenAPI schema (schemathesis).

Each operation gets positive and negative examples (schemathesis' default modes), sent
in-process through ASGI, once with a valid key and once with a rotation of bad ones
(missing, malformed, unknown, wrong scheme, revoked). Every response must:

- not be a 5xx (``not_a_server_error``);
- have a status the schema documents for the operation (``status_code_conformance``);
- have a documented content type and match the documented response schema and headers
  (``content_type_conformance``, ``response_schema_conformance``,
  ``response_headers_conformance``).

Random bytes are not audio, so the transcription route's success path is not reached here
(400s on ``file`` are what it should answer); ``test_routes_transcriptions.py`` covers success.

Hypothesis is bounded and derandomised so CI runs the same examples every time; the total
number of examples run is printed at the end of the module (run with ``-s`` or read the
terminal summary line ``fuzz: ... examples``).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from handler.api import create_app
from handler.config import Settings
from handler.engine import Engine
from handler.services import Services
from tests.integration.conftest import Caller, MakeCaller

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
EXAMPLES: Counter[str] = Counter()
PUBLIC_PATHS = {"/health"}


@pytest.fixture(scope="module", autouse=True)
def report_examples(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    total = sum(EXAMPLES.values())
    line = f"fuzz: {total} examples run ({dict(EXAMPLES)})"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():  # shown in a normal run, not only with -s
        print(f"\n{line}")


def _schema_source() -> FastAPI:
    """The app, built only to serve its OpenAPI document at import time (no AWS, no model):
    the requests themselves go to the real ``app`` fixture."""
    # Only settings are read while the app is built; real Services would open AWS clients.
    return create_app(SimpleNamespace(settings=Settings()))  # type: ignore[arg-type]


schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_source())


@pytest.fixture(scope="module")
def fuzz_caller(make_caller: MakeCaller) -> Caller:
    """A key that can pay for anything and is never rate limited."""
    return make_caller(credit_micro_usd=100_000_000, rpm=1_000_000)


@pytest.fixture(scope="module")
def bad_keys(
    make_caller: MakeCaller, settings: Settings, engine: Engine
) -> Iterator[dict[str, str] | None]:
    """Authorization headers that must all be refused with 401, in a fixed rotation."""
    revoked = make_caller(rpm=1_000_000)
    Services.from_settings(settings, engine).keys.revoke(revoked.key.key_id)
    well_formed_unknown = "sk-ts-0123456789abcdef-" + "A" * 43
    choices: list[dict[str, str] | None] = [
        None,  # no Authorization header at all
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer sk-not-a-key"},
        {"Authorization": f"Bearer {well_formed_unknown}"},
        {"Authorization": f"Basic {revoked.secret}"},
        {"Authorization": f"Bearer {revoked.secret[:-1]}x"},
        revoked.headers,
    ]
    return itertools.cycle(choices)


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzz_with_a_valid_key(case, app, fuzz_caller: Caller) -> None:
    EXAMPLES["valid key"] += 1
    case.call_and_validate(app=app, headers=fuzz_caller.headers, checks=CHECKS)


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzz_with_bad_keys(case, app, bad_keys) -> None:
    EXAMPLES["bad keys"] += 1
    headers = next(bad_keys)
    if headers is None and case.headers:
        case.headers.pop("Authorization", None)
    response = case.call_and_validate(app=app, headers=headers, checks=CHECKS)
    if case.path not in PUBLIC_PATHS:
        assert response.status_code >= 400, f"a bad key got {response.status_code}"
