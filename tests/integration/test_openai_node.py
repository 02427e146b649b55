"""openai-node, the official JS SDK (installed from npm by ``make openai-node``), pointed at
``tinyscribe serve`` by changing ``baseURL`` only. Uploads use ``toFile(...)``: openai-node
retries only requests whose body it can replay."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import SPEECH_TEXT, MakeCaller
from tests.support.openai_node import run_openai_node, sdk_version
from tests.support.text import word_error_rate


def test_the_installed_sdk_is_the_pinned_one():
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert f"OPENAI_NODE_VERSION := {sdk_version()}\n" in makefile


def test_transcriptions_and_translations_with_to_file(
    server, make_caller: MakeCaller, speech_wav, tmp_path
):
    caller = make_caller()
    ran = run_openai_node(
        f"{server}/v1",
        caller.secret,
        speech_wav,
        [
            {"endpoint": "transcriptions", "params": {"model": "whisper-1"}},
            {
                "endpoint": "transcriptions",
                "params": {
                    "model": "whisper-1",
                    "response_format": "verbose_json",
                    "timestamp_granularities": ["word", "segment"],
                    "chunking_strategy": {"type": "server_vad", "threshold": 0.5},
                },
            },
            {
                "endpoint": "transcriptions",
                "params": {"model": "tiny.en", "response_format": "srt"},
            },
            {
                "endpoint": "translations",
                "params": {"model": "whisper-1", "response_format": "verbose_json"},
            },
        ],
        tmp_path,
    )
    plain, verbose, srt, translation = (call["result"] for call in ran["results"])
    assert all(call["ok"] for call in ran["results"]), ran["results"]
    assert word_error_rate(SPEECH_TEXT, plain["text"]) <= 0.25
    assert plain["usage"]["type"] == "duration" and plain["usage"]["seconds"] >= 1
    assert verbose["words"] and verbose["segments"] and verbose["language"] == "english"
    assert srt.startswith("1\n00:00:")
    assert translation["task"] == "translate" and translation["language"] == "english"
    assert word_error_rate(SPEECH_TEXT, translation["text"]) <= 0.25


def test_refusals_reach_the_js_sdk_as_errors(server, make_caller: MakeCaller, speech_wav, tmp_path):
    caller = make_caller()
    ran = run_openai_node(
        f"{server}/v1",
        caller.secret,
        speech_wav,
        [
            {
                "endpoint": "transcriptions",
                "params": {"model": "whisper-1", "include": ["logprobs"]},
            },
            {"endpoint": "transcriptions", "params": {"model": "gpt-4o"}},
        ],
        tmp_path,
    )
    include, model = ran["results"]
    assert (include["ok"], include["status"], include["error"]["param"]) == (False, 400, "include")
    assert (model["ok"], model["status"], model["error"]["param"]) == (False, 404, "model")
