"""The real local stack for the tests: DynamoDB Local, the real model, generated speech."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from handler import app as entry
from handler.api import create_app
from handler.config import Settings, get_settings
from handler.devstack import free_port, start_dynamodb_local, use_local_aws, wait_for_port
from handler.engine import Engine
from handler.services import Services
from handler.stores.dynamo import client as dynamodb_client
from handler.stores.keys import ApiKey, Plan
from handler.stores.schema import TABLES, table_name
from handler.stores.tables import create_tables
from tests.support.audio import HARVARD_SENTENCES, SPEECH_SENTENCES, convert, speak

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client  # boto3-stubs: types only

SPEECH_TEXT = SPEECH_SENTENCES[0]


@pytest.fixture(scope="session")
def dynamodb_port() -> Iterator[int]:
    """An in-memory DynamoDB Local for the whole run, with the service's tables."""
    port = free_port()
    process = start_dynamodb_local(port)
    use_local_aws(dynamodb_port=port)
    get_settings.cache_clear()
    create_tables(Settings())
    yield port
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_port() -> Iterator[int]:
    """A local S3 endpoint over real HTTP (moto's server), with the service's bucket."""
    port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    use_local_aws(s3_port=port)
    get_settings.cache_clear()
    boto3.client("s3").create_bucket(Bucket=Settings().bucket)
    yield port
    s3.stop()


@pytest.fixture(scope="session")
def settings(dynamodb_port: int, s3_port: int) -> Settings:
    return Settings()


@pytest.fixture
def lambda_env(settings: Settings) -> Iterator[None]:
    """``handler.app``'s process-wide objects built from this run's environment, and
    forgotten after the test."""
    entry.reset()
    yield
    entry.reset()


@pytest.fixture
def s3(settings: Settings) -> S3Client:
    """A boto3 S3 client on the local S3 server."""
    return boto3.client("s3")


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Engine:
    """One loaded model for the whole run, as one Lambda process would have."""
    return Engine(settings)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(Services.from_settings(settings, engine))


@pytest.fixture
def services(app: FastAPI) -> Services:
    services = app.state.services  # Starlette's State holds Any
    assert isinstance(services, Services)
    return services


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    @property
    def random_part(self) -> str:
        """The secret's 43 random characters, after ``sk-ts-<key id>-`` (they may hold
        ``-`` themselves, so splitting on it could leave a short, common tail)."""
        prefix = f"sk-ts-{self.key.key_id}-"
        assert self.secret.startswith(prefix) and len(self.secret) == len(prefix) + 43
        return self.secret.removeprefix(prefix)


MakeCaller = Callable[..., Caller]


def new_caller(
    services: Services,
    credit_micro_usd: int = 1_000_000,
    plan: Plan = "payg",
    rpm: int = 1000,
    wallet_id: str | None = None,
) -> Caller:
    """A wallet (unless ``wallet_id``) and a key on it, in ``services``' tables."""
    if wallet_id is None:
        wallet_id = services.wallets.create(grant=credit_micro_usd).wallet_id
    key, secret = services.keys.create(name="test", wallet_id=wallet_id, plan=plan, rpm=rpm)
    return Caller(key, secret)


@pytest.fixture(scope="session")
def make_caller(settings: Settings, engine: Engine) -> MakeCaller:
    """Create a wallet and key: ``make_caller(credit_micro_usd=..., plan=..., rpm=...)``."""
    services = Services.from_settings(settings, engine)
    return lambda **options: new_caller(services, **options)


@pytest.fixture
def own_tables(settings: Settings) -> Iterator[Settings]:
    """Settings naming fresh tables of this test's own, for tests that read across wallets
    (reconciliation reads every open reservation) and must not see other tests' data."""
    suffix = uuid.uuid4().hex[:8]
    own = settings.model_copy(
        update={spec.setting: f"{table_name(spec, settings)}-{suffix}" for spec in TABLES}
    )
    create_tables(own)
    yield own
    dynamodb = dynamodb_client()
    for spec in TABLES:
        dynamodb.delete_table(TableName=table_name(spec, own))


@pytest.fixture
def caller(make_caller: MakeCaller) -> Caller:
    """A pay-as-you-go key with $1 of credit."""
    return make_caller()


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def speech_wav(audio_dir: Path) -> Path:
    """About 3 s of synthetic speech saying :data:`SPEECH_TEXT`."""
    return speak(SPEECH_TEXT, audio_dir / "speech.wav")


@pytest.fixture(scope="session")
def short_speech_wav(audio_dir: Path) -> Path:
    """About a second of synthetic speech: for tests that transcribe many times."""
    return speak("Thank you.", audio_dir / "short-speech.wav")


@pytest.fixture(scope="session")
def two_sentences_wav(audio_dir: Path) -> Path:
    """Both :data:`SPEECH_SENTENCES` with a second of silence between them: two segments,
    spoken slowly enough for tiny.en to get most words of the second one right."""
    first = speak(SPEECH_SENTENCES[0], audio_dir / "first-sentence.wav", words_per_minute=120)
    second = speak(SPEECH_SENTENCES[1], audio_dir / "second-sentence.wav", words_per_minute=120)
    first_and_gap = audio_dir / "first-sentence-gap.wav"
    target = audio_dir / "two-sentences.wav"
    subprocess.run(["sox", str(first), str(first_and_gap), "pad", "0", "1"], check=True)
    subprocess.run(["sox", str(first_and_gap), str(second), str(target)], check=True)
    return target


@pytest.fixture(scope="session")
def long_speech_wav(audio_dir: Path) -> Path:
    """About 70 s of speech (:data:`HARVARD_SENTENCES`): three decoding windows."""
    return speak(" ".join(HARVARD_SENTENCES), audio_dir / "harvard-sentences.wav")


@pytest.fixture(scope="session")
def speech_mp3(speech_wav: Path) -> Path:
    return convert(speech_wav, speech_wav.with_suffix(".mp3"))


@pytest.fixture(scope="session")
def server(settings: Settings) -> Iterator[str]:
    """``tinyscribe serve`` in its own process on a free port; yields the base URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "tinyscribe"), "serve", "--port", str(port)],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_port(port, timeout=60, process=process)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)
