"""handler.audio on its own: field inputs decoded and measured against ffmpeg and ffprobe.

The sample counts are compared with what ffmpeg's command line decodes from the same file
(``ffmpeg -i x -ar 16000 -ac 1 -f s16le -``), and the lengths of padded codecs with the
length the container declares (ffprobe) or that ffmpeg plays, whichever marks the padding.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest

from handler.audio import SAMPLE_RATE, decode_audio
from handler.billing import billable_seconds
from handler.errors import InvalidRequest, PayloadTooLarge
from tests.support.field_audio import (
    DAMAGED,
    JOINED,
    PADDED,
    PADDING_MATRIX,
    REFUSED,
    Encoding,
    FieldAudio,
    FieldCase,
    ffmpeg,
    ids,
    probed_seconds,
    sample_count,
)

MS = SAMPLE_RATE // 1000
"""Samples per millisecond at the decoder's output rate."""


@pytest.fixture(scope="session")
def field(audio_dir: Path) -> FieldAudio:
    return FieldAudio(audio_dir / "field")


def decoded_samples(path: Path) -> int:
    """Decoded from bytes, as uploads are: no file name to guess a format from."""
    return len(decode_audio(io.BytesIO(path.read_bytes()), max_seconds=600).samples)


@pytest.mark.parametrize("case", JOINED, ids=ids(JOINED))
def test_joined_streams_decode_every_part(case: FieldCase, field: FieldAudio) -> None:
    """Rate, layout, sample format or codec changing between parts: every part is decoded,
    once, as ffmpeg decodes the joined file (a join costs an MP3 decoder the frame whose
    bit reservoir lies in the previous part; the later parts' LAME frames play). Where
    ffmpeg's command line loses a whole part (joined FLAC, an Ogg link of another codec),
    the parts decoded separately are the measure."""
    path = case.build(field)
    parts = field.parts[path]
    ours = decoded_samples(path)
    whole = sample_count(path)
    separately = sum(sample_count(part) for part in parts)
    ffmpeg_plays_every_part = whole >= separately - 100 * MS * (len(parts) - 1)
    expected = whole if ffmpeg_plays_every_part else separately
    assert abs(ours - expected) <= 3 * MS * len(parts), (
        f"decoded {ours / SAMPLE_RATE:.3f} s; ffmpeg plays {whole / SAMPLE_RATE:.3f} s of "
        f"the joined file and {separately / SAMPLE_RATE:.3f} s of its parts"
    )


@pytest.mark.parametrize("case", PADDED, ids=ids(PADDED))
def test_padded_codecs_decode_to_the_length_that_plays(case: FieldCase, field: FieldAudio) -> None:
    """Priming and end padding do not count: the decoded length is the encoded length to
    the sample (one sample of resampling), the duration and the bill follow it. The
    container (ffprobe) or ffmpeg's own decoding confirms that length for every case."""
    assert case.seconds is not None
    path = case.build(field)
    ours = decoded_samples(path)
    exact = round(case.seconds * SAMPLE_RATE)
    assert abs(ours - exact) <= 1, f"{(ours - exact) / MS:+.2f} ms"
    assert billable_seconds(ours / SAMPLE_RATE) == case.billed_seconds
    ffprobe_agrees = abs(probed_seconds(path) - case.seconds) < 0.0005
    ffmpeg_agrees = abs(sample_count(path) - exact) <= 1
    assert ffprobe_agrees or ffmpeg_agrees, "neither the container nor ffmpeg says this length"


@pytest.mark.parametrize(
    ("encoding", "seconds"), PADDING_MATRIX, ids=[f"{e}-{s:g}s" for e, s in PADDING_MATRIX]
)
def test_padding_matrix(encoding: Encoding, seconds: float, field: FieldAudio) -> None:
    """AAC, MP3, Opus and Vorbis in every container that marks their priming and padding,
    at several rates, channel counts and lengths: the encoded length to the sample, as the
    container (ffprobe) or ffmpeg's decoding says."""
    path = field.tone(encoding, seconds)
    ours = decoded_samples(path)
    exact = round(seconds * SAMPLE_RATE)
    assert abs(ours - exact) <= 1, f"{(ours - exact) / MS:+.2f} ms"
    ffprobe_agrees = abs(probed_seconds(path) - seconds) < 0.0005
    ffmpeg_agrees = abs(sample_count(path) - exact) <= 1
    assert ffprobe_agrees or ffmpeg_agrees, "neither the container nor ffmpeg says this length"


def test_short_vorbis_plays_as_ffmpeg_plays_it(field: FieldAudio) -> None:
    """Known and left to FFmpeg: a Vorbis stream inside one Ogg page starts 128 samples
    late in its Ogg demuxer, and its end trim then cuts 128 real samples (2.9 ms at
    44.1 kHz). ffmpeg plays it so too; the bill errs low, never high."""
    path = field.tone(Encoding("libvorbis", 44_100, 1, ".ogg"), 1.001)
    ours = decoded_samples(path)
    assert abs(ours - sample_count(path)) <= 1
    assert 0 < round(1.001 * SAMPLE_RATE) - ours <= 3 * MS


def test_the_issues_aac_decodes_to_10_seconds_where_ffmpeg_plays_the_padding(
    field: FieldAudio,
) -> None:
    """The cause, pinned: FFmpeg keeps the last AAC frame whole (10.005 s), the MP4 edit
    list says 10.000 s."""
    (case,) = [c for c in PADDED if c.id == "aac-48000-1ch.m4a-10s"]
    path = case.build(field)
    assert sample_count(path) > 10 * SAMPLE_RATE + 4 * MS
    assert probed_seconds(path) == 10.0
    assert decoded_samples(path) == 10 * SAMPLE_RATE


@pytest.mark.parametrize("case", DAMAGED, ids=ids(DAMAGED))
def test_damaged_files_decode_what_ffmpeg_plays(case: FieldCase, field: FieldAudio) -> None:
    """Truncated tails, garbage in the middle, streams picked up mid-frame: no error, and
    within one frame of what ffmpeg's command line decodes (FFmpeg 8, in PyAV, recovers a
    little more of a cut FLAC frame than the command line's FFmpeg 5)."""
    path = case.build(field)
    ours = decoded_samples(path)
    theirs = sample_count(path)
    assert theirs > 0
    assert -50 * MS <= ours - theirs <= 250 * MS, f"{(ours - theirs) / MS:+.0f} ms"


@pytest.mark.parametrize("case", REFUSED, ids=ids(REFUSED))
def test_what_ffmpeg_cannot_play_is_a_400_on_file(case: FieldCase, field: FieldAudio) -> None:
    path = case.build(field)
    assert sample_count(path) == 0
    with pytest.raises(InvalidRequest) as refused:
        decode_audio(io.BytesIO(path.read_bytes()), max_seconds=600)
    assert refused.value.param == "file" and refused.value.code == "invalid_audio"
    assert "decod" in refused.value.message


@pytest.mark.parametrize(
    "case_id", ["ogg-chain-vorbis-then-flac-s16", "flac-44.1k-mono-then-48k-stereo"]
)
def test_a_file_object_decodes_as_its_path(case_id: str, field: FieldAudio) -> None:
    """Chains and joins re-read the upload in pieces: from a spooled upload (left where it
    was) exactly as from a path."""
    (case,) = [c for c in JOINED if c.id == case_id]
    path = case.build(field)
    from_path = decode_audio(str(path), max_seconds=600).samples
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as upload:
        upload.write(path.read_bytes())
        upload.seek(0)
        from_upload = decode_audio(upload, max_seconds=600).samples
    np.testing.assert_array_equal(from_path, from_upload)
    assert np.array_equal(
        from_path, decode_audio(io.BytesIO(path.read_bytes()), max_seconds=600).samples
    )


def test_joined_files_stop_at_the_duration_limit(field: FieldAudio) -> None:
    """The limit counts every part: the second part of an Ogg chain or FLAC join too."""
    for case_id in ("ogg-opus-chain-mono-then-stereo-then-mono", "flac-44.1k-mono-then-48k-stereo"):
        (case,) = [c for c in JOINED if c.id == case_id]
        with pytest.raises(PayloadTooLarge):
            decode_audio(str(case.build(field)), max_seconds=2.5)


def test_more_than_24_channels_without_a_layout_are_averaged(tmp_path: Path) -> None:
    """swresample has no downmix for 32 unordered channels and ffmpeg's command line gives
    up; the channels are averaged instead."""
    rate, seconds, channels = 16_000, 1.5, 32
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    pcm = np.zeros((len(t), channels))
    pcm[:, 0] = tone
    pcm[:, 1] = -0.5 * tone  # channels are averaged: 0.5 tone over 32
    raw = tmp_path / "32ch.s16le"
    raw.write_bytes((pcm * 32767).astype("<i2").tobytes())
    path = tmp_path / "32ch.wav"
    ffmpeg("-f", "s16le", "-ar", str(rate), "-ac", str(channels), "-i", str(raw), str(path))
    assert sample_count(path) == 0  # ffmpeg: "Rematrix is needed ... not enough information"

    samples = decode_audio(str(path), max_seconds=60).samples
    assert len(samples) == len(t)
    np.testing.assert_allclose(samples, tone / 2 / channels, atol=2e-4)


def test_ffmpeg_reference_counts_are_what_the_helpers_say(tmp_path: Path) -> None:
    """The measuring stick itself: a 2.5 s WAV at 44.1 kHz is 40,000 samples at 16 kHz to
    ffmpeg and to the decoder."""
    path = tmp_path / "sine.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=r=44100:d=2.5", str(path))
    assert sample_count(path) == 40_000 == decoded_samples(path)
    assert probed_seconds(path) == 2.5
