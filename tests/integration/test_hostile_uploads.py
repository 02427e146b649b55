"""Hostile uploads to ``POST /v1/audio/transcriptions``, sent with a valid key.

Every case must end in a clear answer, never a 500: a 4xx in OpenAI's envelope
``{"error": {"message", "type", "param", "code"}}`` that charges nothing (the balance is
unchanged, no charge or refund was even written, and the money invariants hold), or, where a
case says so, a 200 billed exactly for the decoded audio.

Decisions these tests pin down:

- **Billing follows decoded audio, not what the file claims or what the model hears.**
  Silence and white noise are billed for their duration (``cost_micro_usd(ceil(seconds))``)
  even though the transcript is empty or near-empty; 0.1 s of audio is a 200 billed 1 s
  (the one-second increment); a WAV or FLAC header claiming hours over a few seconds of
  samples is a 200 billed for the samples actually there.
- **Duration bombs are refused early**: a file of a few hundred KB that decodes to two
  hours (FLAC, Ogg Opus) is a 413 with ``param: file`` and no charge, decided after at most
  the synchronous limit's worth of decoding (checked for time and for peak Python memory).
- **Any rate, channel count or file name is fine**: 8 kHz, 192 kHz and 8-channel audio
  are 200s; the file name is never used, so path traversal, NUL, CR/LF or non-UTF-8 bytes
  in it change nothing (200).
- **Exactly one ``file`` part**: two ``file`` parts are a 400 on ``file`` (which one would
  be transcribed and billed is not something a client should have to guess). A ``file``
  sent as a plain field, or under another name, is a 400 on ``file``.
- **Field values are compared exactly**: ``"whisper-1 "`` is an unknown model (404), a
  fullwidth or zero-width-joined ``json`` is an unknown format (400). Huge values are
  refused (a prompt over the jobs API's 4000-character limit is a 400 on ``prompt``; a 2 MB
  prompt trips the multipart parser's 1 MB part limit first, a 400 without ``param``), and
  an error never reflects a huge value back: error bodies stay under 4 KB.
- **Broken framing** (no or wrong boundary, unterminated body, nameless part, over 1000
  fields or files, a Content-Length that lies) is a 400 (413 when the declared or streamed
  size is over the upload limit); ``param`` is only pinned where the fault is one field's.
- **FFmpeg's indirections are closed**: an HLS playlist or ffconcat script pointing at a
  local file or a local URL is a 400, and nothing connects to the URL.
"""

from __future__ import annotations

import json
import socket
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from handler import audio
from handler.billing import cost_micro_usd
from handler.services import Services
from tests.integration.conftest import Caller, MakeCaller
from tests.support.hostile import (
    BOUNDARY,
    HostileMedia,
    multipart_body,
    multipart_content_type,
    part,
    patch_flac_total_samples,
    patch_wav_header,
)
from tests.support.http import Response
from tests.support.money import assert_money_invariants

URL = "/v1/audio/transcriptions"
CREDIT = 1_000_000
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found",
    405: "invalid_request_error",
    413: "invalid_request_error",
}
MAX_ERROR_BODY_BYTES = 4096
ANY = object()
"""``param`` is not pinned for this case."""


@pytest.fixture(scope="session")
def media(audio_dir: Path) -> HostileMedia:
    return HostileMedia(audio_dir / "hostile")


# -- building requests ----------------------------------------------------------------------

Request = dict[str, Any]
"""Keyword arguments for ``TestClient.post`` (``headers`` merged with the key's)."""


def upload(name: str, content: bytes, content_type: str = "audio/wav", **fields: str) -> Request:
    """An ordinary multipart upload (as httpx, curl or the SDK would send it)."""
    return {
        "files": {"file": (name, content, content_type)},
        "data": {"model": "whisper-1", **fields},
    }


def raw(
    parts: list[bytes],
    *,
    content_type: str | None = None,
    close: bool = True,
    body_boundary: str = BOUNDARY,
) -> Request:
    """A multipart body written byte by byte, for what httpx refuses to produce."""
    return {
        "content": multipart_body(parts, body_boundary, close=close),
        "headers": {"content-type": content_type or multipart_content_type()},
    }


MODEL_PART = part(b"model", b"whisper-1")


def speech_part(media: HostileMedia, filename: bytes = b"speech.wav") -> bytes:
    return part(b"file", media.speech_bytes, filename=filename, content_type=b"audio/wav")


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[HostileMedia], Request]
    status: int
    param: object = ANY
    billed_seconds: int | None = None
    """For 200s: the whole seconds the decoded audio must be billed for."""
    max_text_chars: int | None = None
    """For 200s on silence and noise: how much text the model may make up."""
    marks: tuple[Any, ...] = field(default=())


SPEECH_SECONDS = 2  # HostileMedia.SPEECH_SECONDS (1.75 s) rounded up


def _chunks(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def chunked_over_limit(media: HostileMedia) -> Request:
    """A body over the upload limit streamed without Content-Length (chunked)."""
    body = multipart_body([MODEL_PART, part(b"file", b"\0" * (5 * 1024 * 1024), filename=b"a.wav")])
    return {
        "content": _chunks(body),
        "headers": {"content-type": multipart_content_type()},
    }


CASES: list[Case] = [
    # -- the body and its content type ------------------------------------------------------
    Case(
        "empty-body-declared-multipart",
        lambda m: {"content": b"", "headers": {"content-type": multipart_content_type()}},
        400,
    ),
    Case(
        "text-plain-body",
        lambda m: {"content": b"file=speech.wav", "headers": {"content-type": "text/plain"}},
        400,
        "file",
    ),
    Case(
        "urlencoded-form",
        lambda m: {"data": {"model": "whisper-1", "file": "speech.wav"}},
        400,
        "file",
    ),
    Case(
        "multipart-mixed-content-type",
        lambda m: raw(
            [MODEL_PART, speech_part(m)], content_type=f"multipart/mixed; boundary={BOUNDARY}"
        ),
        400,
        "file",
    ),
    Case(
        "multipart-without-boundary-parameter",
        lambda m: raw([MODEL_PART, speech_part(m)], content_type="multipart/form-data"),
        400,
    ),
    Case(
        "multipart-bogus-boundary",
        lambda m: raw([MODEL_PART, speech_part(m)], body_boundary="not-the-declared-boundary"),
        400,
    ),
    Case(
        "multipart-unterminated",
        lambda m: raw([MODEL_PART, speech_part(m)], close=False),
        400,
    ),
    Case(
        "part-without-name",
        lambda m: raw(
            [MODEL_PART, part(None, m.speech_bytes, filename=b"speech.wav")],
        ),
        400,
    ),
    Case(
        "too-many-fields",
        lambda m: raw([MODEL_PART, speech_part(m)] + [part(b"x", b"1")] * 1001),
        400,
    ),
    Case(
        "too-many-files",
        lambda m: raw([MODEL_PART] + [part(b"x", b"1", filename=b"x.wav")] * 1001),
        400,
    ),
    Case("chunked-body-over-the-upload-limit", chunked_over_limit, 413, "file"),
    # -- the file part ------------------------------------------------------------------------
    Case(
        "file-under-another-name",
        lambda m: {
            "files": {"audio": ("speech.wav", m.speech_bytes)},
            "data": {"model": "tiny.en"},
        },
        400,
        "file",
    ),
    Case(
        "file-as-plain-string-field",
        lambda m: raw([MODEL_PART, part(b"file", b"speech.wav")]),
        400,
        "file",
    ),
    Case(
        "file-part-without-filename",
        lambda m: raw([MODEL_PART, part(b"file", m.speech_bytes)]),
        400,
        "file",
    ),
    Case(
        "two-file-parts",
        lambda m: raw(
            [
                MODEL_PART,
                speech_part(m),
                part(b"file", m.silence, filename=b"b.wav", content_type=b"audio/wav"),
            ]
        ),
        400,
        "file",
    ),
    # -- huge field values --------------------------------------------------------------------
    Case(
        "prompt-900-kb",
        lambda m: upload("speech.wav", m.speech_bytes, prompt="lorem ipsum " * 75_000),
        400,
        "prompt",
    ),
    Case(
        "prompt-2-mb",
        lambda m: upload("speech.wav", m.speech_bytes, prompt="x" * (2 * 1024 * 1024)),
        400,
    ),
    Case(
        "model-10-kb",
        lambda m: upload("speech.wav", m.speech_bytes, model="w" * 10_240),
        404,
        "model",
    ),
    Case(
        "language-10-kb",
        lambda m: upload("speech.wav", m.speech_bytes, language="e" * 10_240),
        400,
        "language",
    ),
    Case(
        "response-format-10-kb",
        lambda m: upload("speech.wav", m.speech_bytes, response_format="j" * 10_240),
        400,
        "response_format",
    ),
    # -- file names and non-UTF-8 bytes -------------------------------------------------------
    Case(
        "filename-path-traversal",
        lambda m: upload("../../etc/passwd.wav", m.speech_bytes),
        200,
        billed_seconds=SPEECH_SECONDS,
    ),
    Case(
        "filename-with-nul",
        lambda m: raw([MODEL_PART, speech_part(m, filename=b"a\x00b.wav")]),
        200,
        billed_seconds=SPEECH_SECONDS,
    ),
    Case(
        "filename-with-crlf-header-injection",
        lambda m: raw([MODEL_PART, speech_part(m, filename=b"a.wav\r\nX-Injected: 1")]),
        200,
        billed_seconds=SPEECH_SECONDS,
    ),
    Case(
        "filename-not-utf8",
        lambda m: raw([MODEL_PART, speech_part(m, filename=b"\xff\xfe\xc3(.wav")]),
        200,
        billed_seconds=SPEECH_SECONDS,
    ),
    Case(
        "model-not-utf8",
        lambda m: raw([part(b"model", b"whisper-1\xff\xfe"), speech_part(m)]),
        404,
        "model",
    ),
    Case(
        "prompt-not-utf8",
        lambda m: raw([MODEL_PART, part(b"prompt", b"caf\xe9 \xff\xfe\xc3("), speech_part(m)]),
        200,
        billed_seconds=SPEECH_SECONDS,
    ),
    # -- field values that look right ---------------------------------------------------------
    Case(
        "model-with-trailing-spaces",
        lambda m: upload("speech.wav", m.speech_bytes, model="whisper-1  "),
        404,
        "model",
    ),
    Case(
        "response-format-fullwidth-unicode",
        lambda m: upload("speech.wav", m.speech_bytes, response_format="\uff4a\uff53\uff4f\uff4e"),
        400,
        "response_format",
    ),
    Case(
        "response-format-zero-width-space",
        lambda m: upload("speech.wav", m.speech_bytes, response_format="json\u200b"),
        400,
        "response_format",
    ),
    Case(
        "temperature-NaN-capitalised",
        lambda m: upload("speech.wav", m.speech_bytes, temperature="NaN"),
        400,
        "temperature",
    ),
    Case(
        "temperature-overflows-to-infinity",
        lambda m: upload("speech.wav", m.speech_bytes, temperature="1e309"),
        400,
        "temperature",
    ),
    Case(
        "bare-granularity-sentence",
        lambda m: upload(
            "speech.wav",
            m.speech_bytes,
            response_format="verbose_json",
            timestamp_granularities="sentence",
        ),
        400,
        "timestamp_granularities",
    ),
    Case(
        "granularities-as-one-comma-string",
        lambda m: upload(
            "speech.wav",
            m.speech_bytes,
            response_format="verbose_json",
            **{"timestamp_granularities[]": "segment,word"},
        ),
        400,
        "timestamp_granularities[]",
    ),
    # -- audio that is empty, tiny, or not what it claims --------------------------------------
    Case("wav-with-zero-samples", lambda m: upload("empty.wav", m.header_only_wav), 400, "file"),
    Case(
        "a-tenth-of-a-second",
        lambda m: upload("short.wav", m.tenth_of_a_second),
        200,
        billed_seconds=1,
    ),
    Case(
        "pure-silence",
        lambda m: upload("silence.wav", m.silence),
        200,
        billed_seconds=3,
        max_text_chars=40,
    ),
    Case(
        "white-noise",
        lambda m: upload("noise.wav", m.white_noise),
        200,
        billed_seconds=3,
        max_text_chars=80,
    ),
    Case("wav-cut-inside-header", lambda m: upload("cut.wav", m.speech_bytes[:30]), 400, "file"),
    Case(
        "mp3-cut-inside-first-frame",
        lambda m: upload("cut.mp3", m.mp3[:100], "audio/mpeg"),
        400,
        "file",
    ),
    Case(
        "flac-cut-inside-streaminfo",
        lambda m: upload("cut.flac", m.flac[:30], "audio/flac"),
        400,
        "file",
    ),
    Case(
        "wav-with-zero-channels",
        lambda m: upload("bad.wav", patch_wav_header(m.two_second_tone, channels=0)),
        400,
        "file",
    ),
    Case(
        "wav-with-zero-sample-rate",
        lambda m: upload("bad.wav", patch_wav_header(m.two_second_tone, rate=0)),
        400,
        "file",
    ),
    Case(
        "wav-header-claims-hours",
        lambda m: upload(
            "long.wav",
            patch_wav_header(m.speech_bytes, riff_size=0xFFFFFFF0, data_size=0xFFFFFFD0),
        ),
        200,
        billed_seconds=SPEECH_SECONDS,
    ),
    Case(
        "flac-streaminfo-claims-hours",
        lambda m: upload(
            "long.flac", patch_flac_total_samples(m.flac, 2 * 3600 * 22_050), "audio/flac"
        ),
        200,
        billed_seconds=SPEECH_SECONDS,
    ),
    Case(
        "mp4-with-only-video",
        lambda m: upload("video.mp4", m.video_only_mp4, "video/mp4"),
        400,
        "file",
    ),
    Case("png-image-named-wav", lambda m: upload("image.wav", m.png), 400, "file"),
    Case(
        "srt-subtitles-named-mp3",
        lambda m: upload(
            "subs.mp3", b"1\r\n00:00:00,000 --> 00:00:02,000\r\nHello there.\r\n\r\n", "audio/mpeg"
        ),
        400,
        "file",
    ),
    # -- unusual but valid audio --------------------------------------------------------------
    Case(
        "eight-channels",
        lambda m: upload("8ch.wav", m.converted("speech-8ch.wav", "-ac", "8")),
        200,
        billed_seconds=SPEECH_SECONDS,
    ),
    Case(
        "sample-rate-8-khz",
        lambda m: upload("8k.wav", m.converted("speech-8k.wav", "-ar", "8000")),
        200,
        billed_seconds=SPEECH_SECONDS,
    ),
    Case(
        "sample-rate-192-khz",
        lambda m: upload("192k.wav", m.converted("speech-192k.wav", "-ar", "192000")),
        200,
        billed_seconds=SPEECH_SECONDS,
    ),
]


# -- checks ------------------------------------------------------------------------------------


def post(client: TestClient, caller: Caller, request: Request) -> Response:
    request = dict(request)
    headers = {**caller.headers, **request.pop("headers", {})}
    return client.post(URL, headers=headers, **request)


def assert_refused_free(
    response: Response, services: Services, caller: Caller, status: int, param: object = ANY
) -> None:
    """A 4xx in the envelope, small, with nothing written to the wallet's ledger."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers.get("x-request-id")
    assert len(response.content) < MAX_ERROR_BODY_BYTES, (
        f"error body of {len(response.content)} bytes reflects the input"
    )
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == ERROR_TYPES[status]
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in error["message"]
    if param is not ANY:
        assert error["param"] == param, error
    assert_nothing_charged(services, caller)


def assert_nothing_charged(services: Services, caller: Caller) -> None:
    wallet_id = caller.key.wallet_id
    assert services.wallets.get(wallet_id).balance == CREDIT
    kinds = [entry.kind for entry in services.wallets.all_entries(wallet_id)]
    assert kinds == ["grant"], f"bad input touched the wallet: {kinds}"
    assert_money_invariants(services.wallets, wallet_id)


def assert_billed(response: Response, services: Services, caller: Caller, case: Case) -> None:
    assert response.status_code == 200, response.text[:2000]
    seconds = case.billed_seconds
    assert seconds is not None
    cost = cost_micro_usd(seconds, services.settings.price_micro_usd_per_minute)
    body = response.json()
    assert body["usage"] == {"type": "duration", "seconds": seconds}
    assert response.headers["x-tinyscribe-billed-seconds"] == str(seconds)
    assert response.headers["x-tinyscribe-cost-micro-usd"] == str(cost)
    if case.max_text_chars is not None:
        assert len(body["text"].strip()) <= case.max_text_chars, body["text"]
    wallet_id = caller.key.wallet_id
    assert services.wallets.get(wallet_id).balance == CREDIT - cost
    charges = [e for e in services.wallets.all_entries(wallet_id) if e.kind == "charge"]
    assert [(c.amount, c.status, c.audio_seconds) for c in charges] == [(-cost, "settled", seconds)]
    assert_money_invariants(services.wallets, wallet_id)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_hostile_upload(
    case: Case, client: TestClient, make_caller: MakeCaller, services: Services, media: HostileMedia
) -> None:
    caller = make_caller(credit_micro_usd=CREDIT)
    response = post(client, caller, case.build(media))
    assert response.status_code < 500, response.text[:2000]
    if case.status == 200:
        assert_billed(response, services, caller, case)
    else:
        assert_refused_free(response, services, caller, case.status, case.param)


# -- duration bombs: refused quickly, in bounded memory -----------------------------------------

BOMB_PEAK_PYTHON_BYTES = 96 * 1024 * 1024
"""300 s at 16 kHz is 9.6 MB of int16 plus its float32 copy; two hours would be ~700 MB."""


@pytest.mark.parametrize(
    ("attr", "name"),
    [("flac_bomb", "bomb.flac"), ("opus_bomb", "bomb.opus")],
    ids=["flac-2h", "opus-2h"],
)
def test_duration_bomb_is_413_early_and_small(
    client, make_caller, services, media, monkeypatch, attr, name
):
    """Decoding stops at the first frame past the limit: what was decoded is counted (the
    real converter, observed), not timed."""
    content: bytes = getattr(media, attr)
    assert len(content) < services.settings.max_upload_bytes  # it gets past the size limit
    caller = make_caller(credit_micro_usd=CREDIT)
    decoded: list[float] = []  # seconds of audio in each frame handed to the converter
    real_push = audio._MonoPcm.push

    def counted_push(pcm: Any, frame: Any) -> None:
        decoded.append(frame.samples / frame.sample_rate)
        real_push(pcm, frame)

    monkeypatch.setattr(audio._MonoPcm, "push", counted_push)
    tracemalloc.start()
    try:
        response = post(client, caller, upload(name, content, "application/octet-stream"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_refused_free(response, services, caller, 413, "file")
    assert response.json()["error"]["code"] == "audio_too_long"
    limit = services.settings.max_sync_audio_seconds
    # Past the limit by less than the last frame: nothing of the other ~1h55 was decoded.
    assert limit < sum(decoded) <= limit + max(decoded), (sum(decoded), max(decoded))
    assert peak < BOMB_PEAK_PYTHON_BYTES, f"peak Python memory {peak / 2**20:.0f} MiB"


# -- FFmpeg indirections: nothing is fetched --------------------------------------------------


SENTINEL = b"sentinel: the test itself"


@dataclass
class Listener:
    port: int
    received: list[bytes]
    sentinel_seen: threading.Event

    def connections_before_now(self) -> list[bytes]:
        """What connected before this call: the test connects last with :data:`SENTINEL`
        and waits until it is recorded. Connections are accepted in the order they
        arrived, so anything that came earlier is in the list by then (no sleeping)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as connection:
            connection.sendall(SENTINEL)
        assert self.sentinel_seen.wait(30), "the listener never saw the test's own connection"
        assert self.received[-1] == SENTINEL
        return self.received[:-1]


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A TCP listener on 127.0.0.1 that records whatever connects to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    received: list[bytes] = []
    sentinel_seen = threading.Event()
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(1)
                try:
                    received.append(connection.recv(4096) or b"<connected>")
                except OSError:
                    received.append(b"<connected>")
                if received[-1] == SENTINEL:
                    sentinel_seen.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield Listener(server.getsockname()[1], received, sentinel_seen)
    stop.set()
    thread.join(timeout=2)
    server.close()


INDIRECTIONS = {
    "hls-playlist-to-local-url": (
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:{port}/a.wav\n"
        "#EXT-X-ENDLIST\n"
    ),
    "hls-playlist-to-local-file": (
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    ),
    "ffconcat-local-file": "ffconcat version 1.0\nfile /etc/passwd\n",
    "ffconcat-local-url": "ffconcat version 1.0\nfile http://127.0.0.1:{port}/a.wav\n",
}


@pytest.mark.parametrize("script", INDIRECTIONS.values(), ids=INDIRECTIONS.keys())
def test_playlists_and_concat_scripts_fetch_nothing(
    client, make_caller, services, listener, script
):
    caller = make_caller(credit_micro_usd=CREDIT)
    for name in ("list.m3u8", "list.wav"):
        content = script.format(port=listener.port).encode()
        response = post(client, caller, upload(name, content, "application/vnd.apple.mpegurl"))
        assert_refused_free(response, services, caller, 400, "file")
    assert listener.connections_before_now() == [], "the decoder connected to a URL"


# -- framing a real server sees: Content-Length that lies --------------------------------------


def raw_http(base_url: str, head: bytes, body: bytes, *, half_close: bool) -> bytes:
    """Send a request byte for byte and read the answer until the server closes the
    connection (``Connection: close``); 20 s without a byte fails the test as a hang."""
    host, port = base_url.removeprefix("http://").split(":")
    chunks: list[bytes] = []
    with socket.create_connection((host, int(port)), timeout=20) as connection:
        connection.sendall(head)
        try:
            connection.sendall(body)
            if half_close:
                connection.shutdown(socket.SHUT_WR)
        except OSError:  # broken pipe, reset, not connected: the server answered and closed
            pass  # from the headers alone; read what it sent
        while True:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                pytest.fail(f"the server hung; got so far: {b''.join(chunks)[:300]!r}")
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def request_head(caller: Caller, port_url: str, content_length: int) -> bytes:
    host = port_url.removeprefix("http://")
    return (
        f"POST {URL} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {caller.secret}\r\n"
        f"Content-Type: {multipart_content_type()}\r\n"
        f"Content-Length: {content_length}\r\nConnection: close\r\n\r\n"
    ).encode()


def status_of(raw_response: bytes) -> int | None:
    if not raw_response:
        return None
    return int(raw_response.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("declared", "status", "param"),
    [
        pytest.param(lambda n: n - 1000, 400, "file", id="content-length-shorter-than-body"),
        pytest.param(lambda n: 100 * 1024 * 1024, 413, "file", id="content-length-claims-100-mb"),
    ],
)
def test_lying_content_length_on_a_real_server(
    server, make_caller, services, media, declared, status, param
):
    """uvicorn frames the body by Content-Length: a shorter claim truncates the multipart
    (400), a huge one is refused from the headers alone (413). Each is an answer in the
    envelope, never silence or a 5xx, and never a charge."""
    caller = make_caller(credit_micro_usd=CREDIT)
    body = multipart_body([MODEL_PART, speech_part(media)])
    length = declared(len(body))
    if length > services.settings.max_upload_bytes:
        body = body[:1024]  # refused from the headers: do not race the server's close
    answer = raw_http(server, request_head(caller, server, length), body, half_close=False)
    assert status_of(answer) == status, answer[:1000]
    envelope = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert envelope["error"]["param"] == param, envelope
    assert envelope["error"]["type"] == "invalid_request_error"
    assert_nothing_charged(services, caller)


def test_a_body_cut_short_of_its_content_length_is_dropped_and_the_server_carries_on(
    server, make_caller, services, media
):
    """A client that promises 1,000 bytes more than it sends, then half-closes: uvicorn
    (h11) closes the connection at the client's EOF, before the app can answer, so no
    status can be sent. What must hold: no 5xx, no charge, and the next request on a new
    connection is served as usual (nothing was left holding a slot)."""
    caller = make_caller(credit_micro_usd=CREDIT)
    body = multipart_body([MODEL_PART, speech_part(media)])
    answer = raw_http(server, request_head(caller, server, len(body) + 1000), body, half_close=True)
    assert answer == b"", answer[:1000]  # closed without a byte: not a 5xx, not a hang
    assert_nothing_charged(services, caller)
    honest = raw_http(server, request_head(caller, server, len(body)), body, half_close=False)
    assert status_of(honest) == 200, honest[:1000]
    assert_money_invariants(services.wallets, caller.key.wallet_id)
