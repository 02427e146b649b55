"""The page at ``GET /`` (``handler/routes/page.py``, ``handler/static/``) in a real browser.

Debian's headless Chromium, driven by Playwright, opens the page served by ``tinyscribe serve``
against DynamoDB Local (and, once, through the Lambda entry point behind a stand-in for an API
Gateway stage), and does what a person does: types a key, chooses, drops or records speech,
transcribes it with the real model, listens along, downloads the subtitles, reads the balance
and the errors. Every test also checks that the browser logged no error.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import srt
import webvtt
from playwright.sync_api import Browser, Page, Request, expect

import handler.app
from handler.api import create_app
from handler.config import REPO_ROOT, Settings
from handler.devstack import free_port, wait_for_port
from handler.engine import Engine
from handler.routes.page import CONTENT_SECURITY_POLICY, MEDIA_TYPES
from handler.services import Services
from tests.integration.conftest import MakeCaller
from tests.support.audio import SPEECH_SENTENCES, speak
from tests.support.browser import (
    CONTRAST_PROBLEMS_JS,
    UNLABELLED_CONTROLS_JS,
    Console,
    chromium,
    watch_console,
)
from tests.support.engines import MidStreamFailingEngine, PausingEngine
from tests.support.gateway import rest_api_stage
from tests.support.money import assert_money_invariants
from tests.support.server import serving
from tests.support.text import normalize, word_error_rate

STATIC_DIR = REPO_ROOT / "handler" / "static"
ARTIFACTS = REPO_ROOT / "test-artifacts"
DOCS_SCREENSHOT = REPO_ROOT / "docs" / "page.png"
UPDATE_DOCS = os.environ.get("TINYSCRIBE_DOCS_SCREENSHOT") == "1"
"""``make docs-screenshot`` sets it: the main test then also rewrites ``docs/page.png``."""

MAX_WER = 0.3
TRANSCRIPTIONS = "/v1/audio/transcriptions"
TIMEOUT_MS = 60_000
expect.set_options(timeout=TIMEOUT_MS)  # a transcription on a busy 2-core machine


def usd(micro: int) -> str:
    """How the page writes an amount: ``$0.9998``, ``$5.00``, ``-$0.0002``."""
    whole, fraction = divmod(abs(micro), 1_000_000)
    decimals = f"{fraction:06d}".rstrip("0").ljust(2, "0")
    return f"{'-' if micro < 0 else ''}${whole:,}.{decimals}"


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def microphone_wav(audio_dir: Path) -> Path:
    """What the fake microphone hears: the first sentence between 1.5 s of silence, a pause
    as a person leaves between takes. (With half a second, a recording that starts in the
    middle of the sentence ran its pieces together and tiny.en garbled the whole sentence.)"""
    speech = speak(SPEECH_SENTENCES[0], audio_dir / "page-microphone-speech.wav")
    padded = audio_dir / "page-microphone.wav"
    subprocess.run(["sox", str(speech), str(padded), "pad", "1.5", "1.5"], check=True)
    return padded


@dataclass(frozen=True)
class Served:
    url: str
    log: Path


@pytest.fixture(scope="module")
def page_server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``tinyscribe serve`` in its own process, its log kept in a file the tests can read."""
    log = tmp_path_factory.mktemp("page-server") / "server.log"
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "tinyscribe"), "serve", "--port", str(port)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # each log line in the file at once
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=60, process=process)
        yield Served(f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(microphone_wav: Path) -> Iterator[Browser]:
    with chromium(fake_microphone=microphone_wav) as browser:
        yield browser


@dataclass
class Tab:
    """One browser tab on the page, with what it logged and every request it made."""

    page: Page
    console: Console
    requests: list[Request]

    def open(self, url: str) -> None:
        self.page.goto(url)
        expect(self.page.locator("#transcribe")).to_be_enabled()

    def enter_key(self, secret: str) -> None:
        self.page.fill("#api-key", secret)
        self.page.press("#api-key", "Enter")

    def choose(self, audio: Path, *, words: bool = False) -> None:
        self.page.set_input_files("#audio-file", str(audio))
        self.page.check("#granularity-word" if words else "#granularity-segment")

    def transcription_requests(self) -> list[Request]:
        return [r for r in self.requests if r.url.endswith(TRANSCRIPTIONS) and r.method == "POST"]


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    """A fresh browser profile (no storage) with one tab."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    yield Tab(page, watch_console(page), requests)
    context.close()


# ------------------------------------------------------------------------ the main path


def test_page_transcribes_speech_plays_along_and_downloads_subtitles(
    tab: Tab,
    page_server: Served,
    make_caller: MakeCaller,
    services: Services,
    two_sentences_wav: Path,
) -> None:
    caller = make_caller(credit_micro_usd=1_000_000)
    page = tab.page
    tab.open(page_server.url + "/")
    tab.enter_key(caller.secret)
    expect(page.locator("#wallet-balance")).to_have_text("$1.00")
    expect(page.locator("#wallet-plan")).to_contain_text("Prepaid")
    expect(page.locator("#usage-rows")).to_contain_text("Free credit")

    tab.choose(two_sentences_wav, words=True)
    expect(page.locator("#file-name")).to_contain_text(two_sentences_wav.name)
    # What the person sees while it works, recorded as it happens (it can be brief).
    page.evaluate(
        """() => {
          window.seen = {busy: false, statuses: []};
          const status = document.getElementById("status");
          const busy = document.getElementById("busy");
          new MutationObserver(() => {
            window.seen.statuses.push(status.textContent);
            if (!busy.hidden) window.seen.busy = true;
          }).observe(document.body, {subtree: true, childList: true, attributes: true,
                                     characterData: true});
        }"""
    )
    with page.expect_response(lambda r: r.url.endswith(TRANSCRIPTIONS)) as answer:
        page.click("#transcribe")
    response = answer.value
    assert response.status == 200
    expect(page.locator("#result-section")).to_be_visible()
    expect(page.locator("#busy")).to_be_hidden()
    expect(page.locator("#transcribe")).to_be_enabled()
    seen = page.evaluate("window.seen")
    assert seen["busy"], "no busy state was shown"
    assert "Uploading… 100%" in seen["statuses"] and "Transcribing…" in seen["statuses"]

    # The spoken words, line by line with their times.
    result = response.json()
    lines = page.locator("#segments li")
    expect(lines).to_have_count(len(result["segments"]))
    assert len(result["segments"]) >= 2
    shown = " ".join(lines.all_inner_texts())
    assert word_error_rate(" ".join(SPEECH_SENTENCES), result["text"]) <= MAX_WER
    for word in normalize(result["text"]).split():
        assert word in normalize(shown)
    first = result["segments"][0]
    expect(lines.nth(0).locator(".seek")).to_contain_text("0:00.00")
    assert result["words"], "word times were asked for"
    expect(page.locator("#word-rows tr")).to_have_count(len(result["words"]))

    # The cost of this request, as billed, and the balance after it.
    [charge] = [e for e in services.wallets.all_entries(caller.key.wallet_id) if e.kind == "charge"]
    billed = int(response.headers["x-tinyscribe-billed-seconds"])
    assert billed == math.ceil(result["duration"]) == charge.audio_seconds
    assert int(response.headers["x-tinyscribe-cost-micro-usd"]) == -charge.amount
    expect(page.locator("#result-billed")).to_have_text(f"{billed} seconds")
    expect(page.locator("#result-cost")).to_have_text(usd(-charge.amount))
    balance = services.wallets.get(caller.key.wallet_id).balance
    expect(page.locator("#wallet-balance")).to_have_text(usd(balance))
    expect(page.locator("#usage-rows tr").first).to_contain_text(f"Transcription{billed} s")

    # Downloads, built from that one answer.
    files = {}
    for suffix in ("txt", "srt", "vtt", "json"):
        with page.expect_download() as download:
            page.click(f"#download-{suffix}")
        assert download.value.suggested_filename == f"{two_sentences_wav.stem}.{suffix}"
        files[suffix] = Path(download.value.path()).read_text(encoding="utf-8")
    assert files["txt"] == result["text"] + "\n"
    assert json.loads(files["json"]) == result
    cues = list(srt.parse(files["srt"]))
    assert [c.content for c in cues] == [s["text"].strip() for s in result["segments"]]
    assert [c.start.total_seconds() for c in cues] == [s["start"] for s in result["segments"]]
    assert [c.end.total_seconds() for c in cues] == [s["end"] for s in result["segments"]]
    captions = webvtt.from_string(files["vtt"]).captions
    assert [c.text for c in captions] == [s["text"].strip() for s in result["segments"]]
    assert [c.start_in_seconds + c.start_time.milliseconds / 1000 for c in captions] == [
        s["start"] for s in result["segments"]
    ]
    assert len(tab.transcription_requests()) == 1, "a download must not transcribe again"
    assert len([e for e in services.wallets.all_entries(caller.key.wallet_id) if e.amount < 0]) == 1
    assert_money_invariants(services.wallets, caller.key.wallet_id)

    # Listening along: a click on the second line plays from there and highlights it; the
    # keyboard (Enter on the first line's time) goes back to the start.
    second = result["segments"][1]
    lines.nth(1).locator(".text").click()
    page.wait_for_function(
        "start => document.getElementById('player').currentTime > start + 0.3", arg=second["start"]
    )
    expect(lines.nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
    expect(lines.nth(1)).to_have_attribute("aria-current", "true")
    expect(lines.nth(0)).not_to_have_class(re.compile(r"\bcurrent\b"))
    lines.nth(0).locator(".seek").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "end => { const p = document.getElementById('player');"
        " return p.currentTime > 0.1 && p.currentTime < end; }",
        arg=first["end"],
    )
    expect(lines.nth(0)).to_have_class(re.compile(r"\bcurrent\b"))
    page.evaluate("document.getElementById('player').pause()")

    # The key: only in this tab's storage, in no URL and in no line of the server's log.
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("sessionStorage.getItem('tinyscribe.apiKey')") == caller.secret
    assert not [r.url for r in tab.requests if caller.secret in r.url]
    log = page_server.log.read_text(encoding="utf-8", errors="replace")
    assert f'"path":"{TRANSCRIPTIONS}"' in log, "the server logged the request"
    assert caller.secret not in log
    assert tab.console.errors() == []

    _screenshot(page)


def _screenshot(page: Page) -> None:
    """The test's artefact, and with ``TINYSCRIBE_DOCS_SCREENSHOT=1`` the README's picture."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#segments li").nth(1).locator(".text").click()  # a highlighted line
    page.wait_for_function("document.getElementById('player').currentTime > 0")
    page.evaluate("document.getElementById('player').pause()")
    page.screenshot(path=ARTIFACTS / "page.png", full_page=True)
    if UPDATE_DOCS:
        page.screenshot(path=DOCS_SCREENSHOT, full_page=True)


# ------------------------------------------------------------------------- streaming


def sse_events(body: bytes) -> list[dict[str, Any]]:
    """The events of a ``text/event-stream`` body (one ``data:`` line each)."""
    return [json.loads(b.removeprefix("data: ")) for b in body.decode().split("\n\n") if b]


def test_segment_times_show_the_text_as_it_is_decoded_then_play_along_and_download(
    tab: Tab,
    settings: Settings,
    engine: Engine,
    make_caller: MakeCaller,
    two_sentences_wav: Path,
) -> None:
    """With segment times only, the page streams: the first sentence is on the page while the
    engine (paused after its first segment) has not decoded the second; then the result, the
    downloads and the listening along work from the streamed events alone."""
    pausing = PausingEngine(engine, after=1)
    services = Services.from_settings(settings, pausing)
    caller = make_caller(credit_micro_usd=1_000_000)
    page = tab.page
    with serving(create_app(services)) as url:
        tab.open(url + "/")
        tab.enter_key(caller.secret)
        expect(page.locator("#wallet-balance")).to_have_text("$1.00")
        tab.choose(two_sentences_wav)  # segment times only
        with page.expect_response(lambda r: r.url.endswith(TRANSCRIPTIONS)) as answer:
            page.click("#transcribe")
        assert pausing.paused.wait(TIMEOUT_MS / 1000), "the engine never reached the pause"
        # Text before the final result: the first sentence only, the work still going on.
        partial = page.locator("#partial")
        expect(partial).to_be_visible()
        expect(partial).not_to_have_text("")
        assert word_error_rate(SPEECH_SENTENCES[0], partial.inner_text()) <= MAX_WER
        expect(page.locator("#result-section")).to_be_hidden()
        expect(page.locator("#busy")).to_be_visible()
        expect(page.locator("#status")).to_contain_text("Transcribing")
        pausing.resume.set()

        expect(page.locator("#result-section")).to_be_visible()
        expect(partial).to_be_hidden()
        expect(page.locator("#busy")).to_be_hidden()
        response = answer.value
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.body())
        segments = [e for e in events if e["type"] == "transcript.text.segment"]
        done = events[-1]
        assert done["type"] == "transcript.text.done" and len(segments) == 2

        # The lines, with their times, from the segment events.
        lines = page.locator("#segments li")
        expect(lines).to_have_count(len(segments))
        assert word_error_rate(" ".join(SPEECH_SENTENCES), done["text"]) <= MAX_WER
        for line, segment in zip(lines.all(), segments, strict=True):
            expect(line.locator(".text")).to_have_text(segment["text"].strip())
        expect(page.locator("#words-details")).to_be_hidden()
        expect(page.locator("#result-duration")).to_have_text(re.compile(r"^\d+:\d\d\.\d\d$"))

        # What it cost, and the balance after it.
        [charge] = [e for e in services.wallets.all_entries(caller.key.wallet_id) if e.amount < 0]
        billed = int(response.headers["x-tinyscribe-billed-seconds"])
        assert billed == done["usage"]["seconds"] == charge.audio_seconds
        expect(page.locator("#result-billed")).to_have_text(f"{billed} seconds")
        expect(page.locator("#result-cost")).to_have_text(usd(-charge.amount))
        balance = services.wallets.get(caller.key.wallet_id).balance
        expect(page.locator("#wallet-balance")).to_have_text(usd(balance))

        # Downloads from the streamed events: subtitles with the segments' times.
        files = {}
        for suffix in ("txt", "srt", "vtt", "json"):
            with page.expect_download() as download:
                page.click(f"#download-{suffix}")
            files[suffix] = Path(download.value.path()).read_text(encoding="utf-8")
        assert files["txt"] == done["text"] + "\n"
        assert json.loads(files["json"]) == {
            "text": done["text"],
            "segments": [{k: s[k] for k in ("id", "start", "end", "text")} for s in segments],
            "usage": done["usage"],
        }
        cues = list(srt.parse(files["srt"]))
        assert [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in cues] == [
            (s["start"], s["end"], s["text"].strip()) for s in segments
        ]
        captions = webvtt.from_string(files["vtt"]).captions
        assert [c.text for c in captions] == [s["text"].strip() for s in segments]

        # Listening along: the second line plays from its start and is highlighted.
        lines.nth(1).locator(".text").click()
        page.wait_for_function(
            "start => document.getElementById('player').currentTime > start + 0.3",
            arg=segments[1]["start"],
        )
        expect(lines.nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
        page.evaluate("document.getElementById('player').pause()")
    assert len(tab.transcription_requests()) == 1, "a download must not transcribe again"
    assert_money_invariants(services.wallets, caller.key.wallet_id)
    assert tab.console.errors() == []


def test_a_stream_that_fails_midway_says_so_and_nothing_is_charged(
    tab: Tab,
    settings: Settings,
    engine: Engine,
    make_caller: MakeCaller,
    two_sentences_wav: Path,
) -> None:
    services = Services.from_settings(settings, MidStreamFailingEngine(engine, after=1))
    caller = make_caller()
    page = tab.page
    with serving(create_app(services)) as url:
        tab.open(url + "/")
        tab.enter_key(caller.secret)
        tab.choose(two_sentences_wav)
        page.click("#transcribe")
        expect(page.locator("#error-title")).to_have_text(
            "The server failed on this request (a failed request is not charged). Try again."
        )
        expect(page.locator("#error-detail")).to_contain_text("nothing is charged")
        expect(page.locator("#result-section")).to_be_hidden()
        expect(page.locator("#partial")).to_be_hidden()
        expect(page.locator("#transcribe")).to_be_enabled()
        expect(page.locator("#usage-rows")).to_contain_text("Refund")
    assert services.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(services.wallets, caller.key.wallet_id)
    assert tab.console.errors() == []


# -------------------------------------------------------------------------------- errors


def test_key_without_credit_is_told_its_balance(
    tab: Tab, page_server: Served, make_caller: MakeCaller, services: Services, speech_wav: Path
) -> None:
    caller = make_caller(credit_micro_usd=0)
    page = tab.page
    tab.open(page_server.url + "/")
    tab.enter_key(caller.secret)
    expect(page.locator("#wallet-balance")).to_have_text("$0.00")
    # Dropped on the page rather than chosen.
    data = base64.b64encode(speech_wav.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """data => {
          const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], "dropped.wav", {type: "audio/wav"}));
          return transfer;
        }""",
        data,
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    expect(page.locator("#file-name")).to_contain_text("dropped.wav")
    with page.expect_response(lambda r: r.url.endswith(TRANSCRIPTIONS)) as answer:
        page.click("#transcribe")
    envelope = answer.value.json()["error"]
    assert answer.value.status == 402
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(page.locator("#error-title")).to_have_text(
        "Not enough credit for this audio. Your balance is $0.00. "
        "Top up the wallet, or try a shorter recording."
    )
    expect(page.locator("#error-detail")).to_contain_text(envelope["message"])
    expect(page.locator("#result-section")).to_be_hidden()
    assert services.wallets.get(caller.key.wallet_id).balance == 0
    assert_money_invariants(services.wallets, caller.key.wallet_id)
    assert tab.console.errors(allowed_statuses=(402,)) == []


def test_rejected_key_is_explained(tab: Tab, page_server: Served, speech_wav: Path) -> None:
    page = tab.page
    tab.open(page_server.url + "/")
    tab.enter_key("sk-ts-0000000000000000-not-a-key")
    expect(page.locator("#wallet-error")).to_contain_text("Your API key was not accepted")
    expect(page.locator("#wallet-error")).to_contain_text("Incorrect API key provided.")
    tab.choose(speech_wav)
    page.click("#transcribe")
    expect(page.locator("#error-title")).to_contain_text("Your API key was not accepted")
    # The long request ids in the messages wrap inside their panels.
    assert page.evaluate(PANELS_OVERLAPPING_JS) == []
    assert tab.console.errors(allowed_statuses=(401,)) == []


PANELS_OVERLAPPING_JS = """
() => {
  const panels = [...document.querySelectorAll(".panel")].filter((p) => p.checkVisibility());
  const problems = panels.filter((p) => p.scrollWidth > p.clientWidth).map((p) => p.id);
  for (const a of panels) {
    for (const b of panels) {
      const [r, s] = [a.getBoundingClientRect(), b.getBoundingClientRect()];
      const apart =
        r.right <= s.left || s.right <= r.left || r.bottom <= s.top || s.bottom <= r.top;
      if (a !== b && !apart) problems.push(`${a.id} overlaps ${b.id}`);
    }
  }
  return problems;
}
"""


def test_missing_key_or_audio_is_asked_for_without_a_request(tab: Tab, page_server: Served) -> None:
    page = tab.page
    tab.open(page_server.url + "/")
    # A first visit: only the form and the hint, nothing half-filled.
    expect(page.locator("#wallet-empty")).to_be_visible()
    for hidden in ("#wallet-summary", "#usage", "#busy", "#error", "#result-section"):
        expect(page.locator(hidden)).to_be_hidden()
    page.click("#transcribe")
    expect(page.locator("#error-title")).to_have_text("Enter your API key first.")
    expect(page.locator("#api-key")).to_be_focused()
    page.fill("#api-key", "sk-ts-something")
    page.click("#transcribe")
    expect(page.locator("#error-title")).to_have_text(
        "Choose an audio file or record some audio first."
    )
    assert not tab.transcription_requests()
    # Leaving the key field looked the made-up key's balance up: refused, and said so.
    expect(page.locator("#wallet-error")).to_contain_text("Your API key was not accepted")
    assert tab.console.errors(allowed_statuses=(401,)) == []


def test_rate_limited_key_is_told_how_long_to_wait(
    tab: Tab, page_server: Served, make_caller: MakeCaller, services: Services, speech_wav: Path
) -> None:
    caller = make_caller(rpm=0)  # every request is over the limit, whatever the minute
    page = tab.page
    tab.open(page_server.url + "/")
    tab.enter_key(caller.secret)
    tab.choose(speech_wav)
    with page.expect_response(lambda r: r.url.endswith(TRANSCRIPTIONS)) as answer:
        page.click("#transcribe")
    assert answer.value.status == 429
    wait = int(answer.value.headers["retry-after"])
    unit = "second" if wait == 1 else "seconds"
    expect(page.locator("#error-title")).to_have_text(
        f"Too many requests with this key. Try again in {wait} {unit}."
    )
    expect(page.locator("#error-detail")).to_contain_text("Rate limit reached")
    assert_money_invariants(services.wallets, caller.key.wallet_id)
    assert tab.console.errors(allowed_statuses=(429,)) == []


def test_file_over_the_upload_limit_points_to_the_jobs_api(
    tab: Tab, page_server: Served, make_caller: MakeCaller, services: Services, tmp_path: Path
) -> None:
    caller = make_caller()
    big = tmp_path / "lecture.mp3"
    big.write_bytes(os.urandom(Settings().max_upload_bytes + 512 * 1024))
    page = tab.page
    tab.open(page_server.url + "/")
    tab.enter_key(caller.secret)
    tab.choose(big)
    with page.expect_response(lambda r: r.url.endswith(TRANSCRIPTIONS)) as answer:
        page.click("#transcribe")
    assert answer.value.status == 413
    expect(page.locator("#error-title")).to_contain_text("too large or too long for the page")
    expect(page.locator("#error-title")).to_contain_text("POST v1/audio/transcriptions/jobs")
    assert_money_invariants(services.wallets, caller.key.wallet_id)
    assert tab.console.errors(allowed_statuses=(413,)) == []


# ---------------------------------------------------------------------------- recording


def test_recording_from_the_microphone_goes_up_as_webm_and_is_transcribed(
    tab: Tab, page_server: Served, make_caller: MakeCaller, services: Services, microphone_wav: Path
) -> None:
    caller = make_caller()
    page = tab.page
    # Keep what the page hands to XMLHttpRequest, to look at the file part it uploads.
    page.add_init_script(
        """(() => {
          const send = XMLHttpRequest.prototype.send;
          window.uploads = [];
          XMLHttpRequest.prototype.send = function (body) {
            if (body instanceof FormData) window.uploads.push(body.get("file"));
            return send.call(this, body);
          };
        })()"""
    )
    tab.open(page_server.url + "/")
    tab.enter_key(caller.secret)
    page.click("#record")
    expect(page.locator("#record")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#transcribe")).to_be_disabled()  # until the recording stops
    seconds = float(
        subprocess.run(
            ["soxi", "-D", str(microphone_wav)], check=True, capture_output=True, text=True
        ).stdout
    )
    # The fake microphone plays the file in a loop: record a little over two rounds, so one
    # whole sentence is in the recording wherever the loop stood when it started.
    page.wait_for_function(
        """least => {
          const status = document.getElementById("record-status").textContent;
          const m = /(\\d+):(\\d+\\.\\d+)/.exec(status);
          return m && Number(m[1]) * 60 + Number(m[2]) >= least;
        }""",
        arg=2 * seconds + 0.5,
    )
    page.click("#record")
    expect(page.locator("#record")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#transcribe")).to_be_enabled()
    expect(page.locator("#file-name")).to_contain_text(re.compile(r"recording-.*\.webm"))
    page.click("#transcribe")
    upload = page.evaluate(
        """async () => {
          const file = window.uploads[0];
          const head = new Uint8Array(await file.slice(0, 4).arrayBuffer());
          return {name: file.name, type: file.type, head: [...head]};
        }"""
    )
    assert upload["type"] == "audio/webm" and upload["name"].endswith(".webm")
    assert upload["head"] == [0x1A, 0x45, 0xDF, 0xA3], "the browser's WebM (EBML) as it is"
    expect(page.locator("#result-section")).to_be_visible()
    transcript = normalize(" ".join(page.locator("#segments li .text").all_inner_texts()))
    assert {"quick", "fox", "over", "lazy"} <= set(transcript.split()), transcript
    assert_money_invariants(services.wallets, caller.key.wallet_id)
    assert tab.console.errors() == []


# ------------------------------------------------------------------ key, access, gateway


def test_key_stays_in_the_tab_unless_remembered(
    browser: Browser, page_server: Served, make_caller: MakeCaller
) -> None:
    caller = make_caller()
    context = browser.new_context()
    try:
        page = context.new_page()
        console = watch_console(page)
        page.goto(page_server.url + "/")
        page.fill("#api-key", caller.secret)
        page.press("#api-key", "Enter")
        expect(page.locator("#wallet-balance")).to_have_text("$1.00")
        assert page.evaluate("localStorage.length") == 0
        page.reload()  # same tab: still there
        expect(page.locator("#api-key")).to_have_value(caller.secret)
        other = context.new_page()  # another tab: not shared
        other.goto(page_server.url + "/")
        expect(other.locator("#api-key")).to_have_value("")

        page.check("#remember-key")
        assert page.evaluate("localStorage.getItem('tinyscribe.apiKey')") == caller.secret
        assert page.evaluate("sessionStorage.length") == 0
        third = context.new_page()
        third.goto(page_server.url + "/")
        expect(third.locator("#api-key")).to_have_value(caller.secret)
        expect(third.locator("#remember-key")).to_be_checked()
        expect(third.locator("#wallet-balance")).to_have_text("$1.00")

        third.uncheck("#remember-key")  # forgetting removes it from the device
        assert third.evaluate("localStorage.length") == 0
        third.fill("#api-key", "")  # and a cleared key leaves no balance on screen
        expect(third.locator("#wallet-summary")).to_be_hidden()
        assert third.evaluate("sessionStorage.length + localStorage.length") == 0
        assert console.errors() == []
    finally:
        context.close()


def test_page_is_labelled_keyboard_usable_and_readable(tab: Tab, page_server: Served) -> None:
    page = tab.page
    tab.open(page_server.url + "/")
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == []
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert page.evaluate(CONTRAST_PROBLEMS_JS) == [], scheme
    # The controls in reading order from the keyboard alone.
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    order = []
    for _ in range(8):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
    assert order == [
        "api-key",
        "use-key",
        "remember-key",
        "audio-file",
        "record",
        "granularity-segment",
        "prompt",
        "transcribe",
    ]
    page.keyboard.press("Enter")  # Transcribe from the keyboard: asks for the key first
    expect(page.locator("#error-title")).to_have_text("Enter your API key first.")
    assert tab.console.errors() == []


@pytest.fixture
def lambda_handler(settings: Settings) -> Iterator[Any]:
    """``handler.app.lambda_handler`` built for the test environment, forgotten afterwards."""
    handler.app.reset()
    yield handler.app.lambda_handler
    handler.app.reset()


def test_page_works_under_an_api_gateway_stage_through_the_lambda_entry_point(
    tab: Tab, lambda_handler: Any, make_caller: MakeCaller, services: Services, speech_wav: Path
) -> None:
    caller = make_caller()
    page = tab.page
    with rest_api_stage(lambda_handler, stage="Prod") as stage_url:
        page.goto(stage_url)  # no trailing slash: redirected to the stage's root
        assert page.url == stage_url + "/"
        expect(page.locator("#transcribe")).to_be_enabled()  # the scripts ran (text, not base64)
        tab.enter_key(caller.secret)
        expect(page.locator("#wallet-balance")).to_have_text("$1.00")
        tab.choose(speech_wav)
        page.click("#transcribe")
        expect(page.locator("#result-section")).to_be_visible()
        text = " ".join(page.locator("#segments li .text").all_inner_texts())
        assert word_error_rate(SPEECH_SENTENCES[0], text) <= MAX_WER
        with page.expect_download() as download:
            page.click("#download-vtt")
        assert webvtt.from_string(Path(download.value.path()).read_text()).captions
        # Every file as it is in the package: returned as text, never as base64.
        for name in MEDIA_TYPES:
            path = "/" if name == "index.html" else f"/static/{name}"
            response = httpx.get(stage_url + path)
            assert response.content == (STATIC_DIR / name).read_bytes(), name
        redirect = httpx.get(stage_url)
        assert (redirect.status_code, redirect.headers["location"]) == (308, "Prod/")
    outside = [r.url for r in tab.requests if not r.url.startswith((stage_url + "/", "blob:"))]
    assert outside == [stage_url], "every URL the page uses stays under the stage"
    assert_money_invariants(services.wallets, caller.key.wallet_id)
    assert tab.console.errors() == []


# ------------------------------------------------------------- the files and the package


def test_page_and_its_files_carry_a_strict_content_security_policy(page_server: Served) -> None:
    with httpx.Client(base_url=page_server.url) as http:
        for name, media_type in MEDIA_TYPES.items():
            response = http.get("/" if name == "index.html" else f"/static/{name}")
            assert response.status_code == 200, name
            assert response.content == (STATIC_DIR / name).read_bytes()
            assert response.headers["content-type"].startswith(media_type.split(";")[0])
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-content-type-options"] == "nosniff"
        missing = http.get("/static/handler.py")
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "not_found"
        assert http.get("/static/..%2Fapi.py").status_code == 404
        schema = http.get("/openapi.json").json()
        assert "/" not in schema["paths"], "the page is not part of the API's schema"
    policy = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert policy["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "connect-src"):
        assert policy[directive] == "'self'", directive


class _InlineCode(HTMLParser):
    """Collects inline scripts and styles, event-handler attributes and absolute URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and not values.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name} on <{tag}>")
            if name == "style":
                self.problems.append(f"style attribute on <{tag}>")
            if name in ("src", "href", "action") and value and re.match(r"^(/|[a-z]+:)", value):
                self.problems.append(f"absolute URL {value}")


def test_page_has_no_inline_code_and_only_relative_urls() -> None:
    parser = _InlineCode()
    parser.feed((STATIC_DIR / "index.html").read_text())
    assert parser.problems == []
    for script in STATIC_DIR.glob("*.js"):
        source = script.read_text()
        assert not re.search(r"""["'`]/v1""", source), f"{script.name}: an absolute API path"
        assert "innerHTML" not in source, f"{script.name}: text is set as text, never as HTML"
        assert "console.log" not in source, f"{script.name}: nothing logged in the browser"


def test_every_static_file_is_served_and_in_the_wheel(tmp_path: Path) -> None:
    assert sorted(p.name for p in STATIC_DIR.iterdir()) == sorted(MEDIA_TYPES)
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((REPO_ROOT / name).read_bytes())
    shutil.copytree(REPO_ROOT / "handler", source / "handler")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "dist"), str(source)],
        check=True,
    )  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("tinyscribe-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    assert {f"handler/static/{name}" for name in MEDIA_TYPES} <= packed
