"""handler.validation: every field's 400 (or 404 for the model), without a server."""

from __future__ import annotations

from typing import Any

import pytest

from handler.errors import ApiError, InvalidRequest, NotFound, PayloadTooLarge
from handler.pipeline import TranscriptionRequest
from handler.transcript import Granularity, VadOptions, VadParameters, vad_options
from handler.validation import (
    LIST_FIELDS,
    REFUSED_FIELDS,
    TRANSCRIPTION_FIELDS,
    TRANSLATION_FIELDS,
    check_file_size,
    chunking_strategy,
    field_name,
    form_boolean,
    granularities_for,
    refuse_repeated_fields,
    refuse_unknown_fields,
    refuse_unsupported_fields,
    supported_format,
    transcription_request,
    translation_request,
    validate_language,
    validate_languages,
)


def refused(call: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value


def request(**fields: Any) -> Any:
    defaults: dict[str, Any] = {
        "model": "whisper-1", "language": None, "prompt": None, "response_format": "json",
        "temperature": 0.0, "granularities": (),
    }  # fmt: skip
    return transcription_request(**{**defaults, **fields})


# ---------------------------------------------------------------------------- field names


@pytest.mark.parametrize(
    ("key", "name"),
    [("include[]", "include"), ("chunking_strategy[type]", "chunking_strategy"),
     ("model", "model"), ("timestamp_granularities[]", "timestamp_granularities")],
)  # fmt: skip
def test_bracketed_keys_belong_to_their_field(key: str, name: str) -> None:
    assert field_name(key) == name


def test_an_unknown_field_is_a_400_naming_it() -> None:
    error = refused(refuse_unknown_fields, ["model", "file", "beam_size"], TRANSCRIPTION_FIELDS)
    assert (error.status, error.param, error.code) == (400, "beam_size", "unknown_parameter")
    assert "refused rather than ignored" in error.message


def test_a_translation_refuses_transcription_only_fields() -> None:
    refuse_unknown_fields(["file", "model", "prompt", "temperature"], TRANSLATION_FIELDS)
    assert refused(refuse_unknown_fields, ["language"], TRANSLATION_FIELDS).param == "language"
    assert refused(refuse_unknown_fields, ["stream"], TRANSLATION_FIELDS).param == "stream"


def test_a_long_unknown_key_is_quoted_short() -> None:
    error = refused(refuse_unknown_fields, ["x" * 10_000], TRANSCRIPTION_FIELDS)
    assert error.param == "x" * 64 + "…"
    assert len(error.message) < 400


def test_only_list_fields_may_repeat() -> None:
    refuse_repeated_fields(["include[]", "include[]", "timestamp_granularities[]"] * 2)
    error = refused(refuse_repeated_fields, ["model", "file", "model"])
    assert (error.param, error.code) == ("model", "duplicate_parameter")
    assert "sent 2 times" in error.message
    assert LIST_FIELDS <= TRANSCRIPTION_FIELDS


@pytest.mark.parametrize("name", sorted(REFUSED_FIELDS))
def test_fields_this_model_cannot_honour_say_why(name: str) -> None:
    error = refused(refuse_unsupported_fields, {"model", name})
    assert (error.status, error.param, error.code) == (400, name, "unsupported_parameter")
    assert REFUSED_FIELDS[name] in error.message


# ------------------------------------------------------------------- model and languages


@pytest.mark.parametrize(
    "model", ["whisper-1", "tiny.en", "whisper-tiny-en", "openai/whisper-tiny-en"]
)
def test_accepted_model_ids(model: str) -> None:
    assert request(model=model).response_format == "json"


def test_an_unknown_model_is_a_404_on_model() -> None:
    error = refused(request, model="gpt-4o-transcribe")
    assert isinstance(error, NotFound)
    assert (error.status, error.param, error.code) == (404, "model", "model_not_found")


@pytest.mark.parametrize("language", [None, "", "en"])
def test_english_or_nothing_is_accepted(language: str | None) -> None:
    validate_language(language)


@pytest.mark.parametrize("language", ["fr", "EN", "english", "en-US"])
def test_other_languages_are_400(language: str) -> None:
    error = refused(validate_language, language)
    assert (error.status, error.param, error.code) == (400, "language", "unsupported_language")


def test_languages_may_only_name_english() -> None:
    validate_languages(["en", "en"])
    error = refused(validate_languages, ["en", "de"])
    assert (error.param, error.code) == ("languages", "unsupported_language")
    assert "'de'" in error.message


# ------------------------------------------------------------ formats and granularities


def test_diarized_json_is_refused_with_the_reason() -> None:
    error = refused(supported_format, "diarized_json")
    assert (error.param, error.code) == ("response_format", "unsupported_value")
    assert "diarization" in error.message
    assert supported_format("srt") == "srt"


@pytest.mark.parametrize(
    ("response_format", "asked", "chosen"),
    [
        ("json", [], ("segment",)),
        ("verbose_json", [], ("segment",)),
        ("verbose_json", ["word"], ("word",)),
        ("verbose_json", ["word", "segment", "word"], ("word", "segment")),
    ],
)
def test_granularities_default_to_segment_and_lose_repeats(
    response_format: Any, asked: list[Any], chosen: tuple[str, ...]
) -> None:
    assert granularities_for(response_format, asked) == chosen


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt"])
def test_granularities_need_verbose_json(response_format: Any) -> None:
    error = refused(granularities_for, response_format, ["segment"])
    assert (error.status, error.param) == (400, "timestamp_granularities")


@pytest.mark.parametrize("response_format", ["verbose_json", "srt", "vtt"])
def test_only_json_and_text_stream(response_format: Any) -> None:
    error = refused(granularities_for, response_format, [], stream=True)
    assert (error.param, error.code) == ("stream", "unsupported_value")


def test_word_times_do_not_stream() -> None:
    error = refused(granularities_for, "json", ["word"], stream=True)
    assert (error.param, error.code) == ("timestamp_granularities", "unsupported_value")
    assert granularities_for("text", ["segment"], stream=True) == ("segment",)


def test_word_granularity_turns_on_word_timestamps() -> None:
    worded = request(response_format="verbose_json", granularities=["word"])
    assert worded.options.word_timestamps and worded.granularities == ("word",)
    assert not request(response_format="verbose_json").options.word_timestamps


def test_prompt_and_temperature_reach_the_options() -> None:
    asked = request(prompt="Quick brown fox.", temperature=0.4)
    assert asked.options.initial_prompt == "Quick brown fox."
    assert asked.options.temperature == 0.4
    assert request(prompt="").options.initial_prompt is None


def test_a_translation_is_a_transcription_rendered_as_translate() -> None:
    translated = translation_request(
        model="whisper-1", prompt="Hi.", response_format="verbose_json", temperature=0.2
    )
    assert translated.task == "translate"
    assert translated.granularities == ("segment",)
    assert (translated.options.initial_prompt, translated.options.temperature) == ("Hi.", 0.2)
    assert not translated.stream


# -------------------------------------------------------------------------- file size


def test_a_file_over_the_limit_is_a_413_naming_the_route() -> None:
    check_file_size(100, 100, param="file", path="/v1/audio/transcriptions")
    check_file_size(None, 100, param="file", path="/v1/audio/transcriptions")
    error = refused(
        check_file_size, 101, 100, param="file", path="/v1/audio/transcriptions", hint="Use jobs."
    )
    assert isinstance(error, PayloadTooLarge)
    assert (error.status, error.param, error.code) == (413, "file", "file_too_large")
    assert error.message == (
        "The file is over the 100-byte limit of /v1/audio/transcriptions. Use jobs."
    )


# ------------------------------------------------- moved from tests/integration (no service)


def test_every_refused_field_is_a_spec_field():
    assert set(REFUSED_FIELDS) <= TRANSCRIPTION_FIELDS


@pytest.mark.parametrize(
    ("raw", "nested", "expected"),
    [
        (None, {}, None),
        ("", {}, None),
        ("null", {}, None),
        ("auto", {}, "auto"),
        ('"auto"', {}, "auto"),
        ('{"type": "server_vad"}', {}, VadParameters(300, 200, 0.5)),
        (
            '{"type": "server_vad", "prefix_padding_ms": 0, "silence_duration_ms": 10000, '
            '"threshold": 1}',
            {},
            VadParameters(0, 10_000, 1.0),
        ),
        (None, {"type": "server_vad", "threshold": "0.6"}, VadParameters(300, 200, 0.6)),
        (
            None,
            {"type": "server_vad", "prefix_padding_ms": "100", "silence_duration_ms": "500"},
            VadParameters(100, 500, 0.5),
        ),
    ],
)
def test_chunking_strategy_shapes(raw, nested, expected):
    assert chunking_strategy(raw, nested) == expected


@pytest.mark.parametrize(
    ("raw", "nested", "says"),
    [
        ("sometimes", {}, "neither 'auto' nor a JSON object"),
        ("[1, 2]", {}, "expected 'auto'"),
        ('{"threshold": 0.5}', {}, "server_vad"),
        ('{"type": "semantic_vad"}', {}, "server_vad"),
        ('{"type": "server_vad", "eagerness": "low"}', {}, "unknown key 'eagerness'"),
        ('{"type": "server_vad", "threshold": 1.5}', {}, "threshold"),
        ('{"type": "server_vad", "threshold": "NaN"}', {}, "threshold"),
        ('{"type": "server_vad", "prefix_padding_ms": -1}', {}, "prefix_padding_ms"),
        ('{"type": "server_vad", "silence_duration_ms": 10001}', {}, "silence_duration_ms"),
        ('{"type": "server_vad", "silence_duration_ms": 200.5}', {}, "silence_duration_ms"),
        ('{"type": "server_vad", "prefix_padding_ms": true}', {}, "must be a number"),
        ('{"type": "server_vad", "threshold": null}', {}, "must be a number"),
        (None, {"type": "server_vad", "threshold": "high"}, "threshold"),
        ("auto", {"type": "server_vad"}, "send it once"),
    ],
)
def test_invalid_chunking_strategy_says_what_is_wrong(raw, nested, says):
    with pytest.raises(InvalidRequest) as refused:
        chunking_strategy(raw, nested)
    assert refused.value.param == "chunking_strategy"
    assert says in refused.value.message


def test_chunking_strategy_reaches_the_engines_vad():
    """The whole mapping: OpenAI's names onto the engine's speech detection, defaults kept."""
    assert vad_options(None) == VadOptions() == vad_options("auto")
    assert vad_options(VadParameters(prefix_padding_ms=120, silence_duration_ms=900)) == (
        VadOptions(threshold=0.5, prefix_padding_ms=120, silence_duration_ms=900)
    )
    asked = transcription_request(
        model="whisper-1",
        language=None,
        prompt=None,
        response_format="json",
        temperature=0.0,
        granularities=[],
        chunking=VadParameters(threshold=0.7),
    )
    assert asked.options.vad.threshold == 0.7


def test_a_stream_decodes_in_order_and_sends_segment_events_only_when_asked() -> None:
    """The batched pipeline would hold a whole batch (minutes of audio) before its first
    segment, so a stream of json or text decodes in order, as the timed formats do."""

    def request(stream: bool, granularities: list[Granularity]) -> TranscriptionRequest:
        return transcription_request(
            model="whisper-1",
            language=None,
            prompt=None,
            response_format="json",
            temperature=0.0,
            granularities=granularities,
            stream=stream,
        )

    plain, streamed, with_segments = (
        request(False, []),
        request(True, []),
        request(True, ["segment"]),
    )
    assert not plain.stream and streamed.stream
    assert not streamed.stream_segments
    assert with_segments.stream_segments and not with_segments.options.word_timestamps


@pytest.mark.parametrize(
    ("raw", "read"), [("true", True), ("false", False), ("TRUE", True), ("False", False)]
)
def test_a_form_boolean_is_true_or_false(raw: str, read: bool) -> None:
    assert form_boolean(raw) is read
    assert form_boolean(read) is read


@pytest.mark.parametrize("raw", ["yes", "no", "1", "0", "on", "off", "y", "t", "", "maybe"])
def test_any_other_word_is_not_a_form_boolean(raw: str) -> None:
    """Pydantic's lax bool takes these; a client sending them did not ask for a stream."""
    with pytest.raises(ValueError, match="true or false"):
        form_boolean(raw)
