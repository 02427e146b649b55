"""GET /v1/models and GET /v1/models/{id}: every accepted id is a model of its own."""

from __future__ import annotations

import asyncio

import openai
import pytest

from handler.models import MODEL_CREATED

ACCEPTED_IDS = ["openai/whisper-tiny-en", "whisper-tiny-en", "tiny.en", "whisper-1"]


def sdk(server: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=secret, max_retries=0)


def test_list_offers_every_accepted_id(client, caller):
    response = client.get("/v1/models", headers=caller.headers)
    assert response.status_code == 200
    listing = response.json()
    assert listing["object"] == "list"
    assert [model["id"] for model in listing["data"]] == ACCEPTED_IDS
    for model in listing["data"]:
        assert model == {
            "id": model["id"],
            "object": "model",
            "created": MODEL_CREATED,
            "owned_by": "tinyscribe",
        }


@pytest.mark.parametrize("model_id", ACCEPTED_IDS)
def test_retrieve_answers_with_the_id_asked_for(client, caller, model_id):
    response = client.get(f"/v1/models/{model_id}", headers=caller.headers)
    assert response.status_code == 200
    assert response.json()["id"] == model_id


@pytest.mark.parametrize("model_id", ["gpt-4o", "whisper-2", "WHISPER-1", "openai/whisper-tiny"])
def test_unknown_ids_are_404_in_the_envelope(client, caller, model_id):
    response = client.get(f"/v1/models/{model_id}", headers=caller.headers)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "not_found" and error["param"] == "model"
    assert "whisper-1" in error["message"]


def test_models_need_a_key(client):
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models/whisper-1").status_code == 401


def test_sdk_lists_and_retrieves_every_id(server, caller):
    client = sdk(server, caller.secret)
    assert [model.id for model in client.models.list()] == ACCEPTED_IDS
    for model_id in ACCEPTED_IDS:  # the SDK sends openai/whisper-tiny-en as openai%2Fwhisper...
        assert client.models.retrieve(model_id).id == model_id
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_async_sdk_lists_and_retrieves(server, caller):
    async def calls() -> tuple[list[str], str]:
        async with openai.AsyncOpenAI(
            base_url=f"{server}/v1", api_key=caller.secret, max_retries=0
        ) as client:
            listed = [model.id async for model in client.models.list()]
            return listed, (await client.models.retrieve("tiny.en")).id

    listed, retrieved = asyncio.run(calls())
    assert listed == ACCEPTED_IDS
    assert retrieved == "tiny.en"
