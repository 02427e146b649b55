"""handler.models: the ids clients may name, and OpenAI's model object."""

from __future__ import annotations

import pytest

from handler.errors import NotFound
from handler.models import MODEL_ID, model_object, resolve_model


@pytest.mark.parametrize(
    "name", ["openai/whisper-tiny-en", "whisper-tiny-en", "tiny.en", "whisper-1"]
)
def test_every_alias_resolves_to_the_one_model(name: str) -> None:
    assert resolve_model(name) == MODEL_ID == "openai/whisper-tiny-en"


@pytest.mark.parametrize("name", ["whisper-large-v3", "", "Whisper-1", "tiny"])
def test_other_names_are_404_on_model(name: str) -> None:
    with pytest.raises(NotFound) as refused:
        resolve_model(name)
    assert (refused.value.param, refused.value.code) == ("model", "model_not_found")


def test_a_model_object_carries_the_id_asked_for() -> None:
    assert model_object("tiny.en") == {
        "id": "tiny.en",
        "object": "model",
        "created": 1_695_168_000,
        "owned_by": "tinyscribe",
    }
