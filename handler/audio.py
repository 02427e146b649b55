"""Decode any audio FFmpeg knows into 16 kHz mono float32, refusing what is too long.

PyAV (FFmpeg's libraries, bundled with faster-whisper) decodes in-process: no ffmpeg binary
in the image, no temporary files. Decoding stops as soon as the audio passes the limit, so a
tiny file that claims or expands to hours (a "duration bomb") costs at most the limit.

Field recordings are not tidy; what FFmpeg leaves to its caller is done here:

- **Parameters that change part-way.** Joined encodes (MP3s or ADTS streams cut together, a
  recorder resuming at another rate, an Ogg chain from a stream recording) decode to frames
  whose rate, channel layout or sample format changes: the resampler is rebuilt for each new
  setup (PyAV's raises on a frame unlike its first). FFmpeg 8's Ogg demuxer stops at a
  chain link whose rate, channels or codec differ ("Sample rate change is not supported"):
  decoding resumes at that link. FFmpeg's FLAC parser decodes part of a byte-wise join
  twice: each joined FLAC file is decoded on its own.
- **Failures part-way end as on ffmpeg's command line**: a packet that does not decode or
  a frame that does not convert is skipped, the demuxer is called again on EAGAIN, a
  demuxer error ends the input keeping what was decoded, and only a file with no decodable
  audio at all is refused (400, ``param: file``).
- **Priming and padding that the container marks do not count.** FFmpeg applies MP3's LAME
  header, Ogg's granule positions and Matroska's DiscardPadding itself; its MP4 demuxer
  skips the priming but leaves the padded end of the last frame (a 10.000 s AAC decoded to
  10.005 s and billed 11 s), so samples outside the MP4 presentation are dropped here
  (:class:`_Timeline`); and Opus priming follows the Opus header's pre-skip where the
  container declares less (:func:`_opus_pre_skip_missing`).
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO

import av
import av.container
import numpy as np

from handler.billing import billable_seconds
from handler.errors import InvalidRequest, PayloadTooLarge

SAMPLE_RATE = 16_000

_DECODE_ERRORS = (av.FFmpegError, ValueError)
"""What decoding one packet may raise on damaged input: FFmpeg's errors, and PyAV's own
``ValueError`` checks (a stream without a codec, a zero time base)."""

_DEMUX_RETRIES = 16
"""Times in a row the demuxer may answer EAGAIN before the input counts as ended."""

_OGG_LINK_START = re.compile(rb"OggS\x00[\x02\x03\x06\x07]")
"""An Ogg page (RFC 3533: capture pattern, version 0) whose header type has the
beginning-of-stream bit (0x02): the first page of a chain link."""

_FLAC_STREAM_START = re.compile(rb"fLaC[\x00\x80]\x00\x00\x22")
"""A FLAC stream marker followed by its STREAMINFO block header (type 0, 34 bytes)."""


@dataclass(frozen=True)
class DecodedAudio:
    """Mono float32 samples at :data:`SAMPLE_RATE`."""

    samples: np.ndarray

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / SAMPLE_RATE

    @property
    def whole_seconds(self) -> int:
        """Length rounded up to whole seconds, as OpenAI reports ``usage.seconds`` (the
        billed seconds at a one-second increment)."""
        return billable_seconds(self.duration)


def decode_audio(
    source: IO[bytes] | str, *, max_seconds: float, too_long_hint: str = ""
) -> DecodedAudio:
    """Decode the first audio stream of ``source`` (a path or a seekable binary file).

    Raises :class:`InvalidRequest` (``param="file"``) for empty, undecodable or silent-less
    (no audio stream) input and :class:`PayloadTooLarge` when it lasts over ``max_seconds``
    (its message ends with ``too_long_hint``).
    """
    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, OSError) as exc:
        raise InvalidRequest(
            "The file could not be decoded as audio. Supported formats include flac, mp3, "
            "mp4, mpeg, mpga, m4a, ogg, opus, wav and webm.",
            param="file",
            code="invalid_audio",
        ) from exc
    mono = _MonoPcm(max_samples=int(max_seconds * SAMPLE_RATE))
    try:
        with container:
            if not container.streams.audio:
                raise InvalidRequest(
                    "The file has no audio stream.", param="file", code="invalid_audio"
                )
            kind = container.format.name
            with _reopen(source) as file:
                joins = _joins(file, _FLAC_STREAM_START) if kind == "flac" else []
            failed_at = None if joins else _decode(container, mono)
        if joins:  # FLAC files joined byte-wise: FFmpeg's parser decodes some frames twice
            with _reopen(source) as file:
                for start, end in zip([0, *joins], [*joins, None], strict=True):
                    _decode_window(file, start, end, mono)
        elif failed_at is not None and kind == "ogg":
            with _reopen(source) as file:
                _decode_later_ogg_links(file, failed_at, mono)
    except _TooLong:
        raise PayloadTooLarge(
            f"The audio is longer than the {max_seconds:g} s limit. {too_long_hint}".strip(),
            param="file",
            code="audio_too_long",
        ) from None
    chunks = mono.finish()
    if not any(chunk.size for chunk in chunks):
        raise InvalidRequest(
            "The file contains no decodable audio.", param="file", code="invalid_audio"
        )
    # One int16 copy, then one float32 array scaled in place: a 5-minute file peaks at
    # 28 MB here instead of 56 MB.
    pcm = np.concatenate(chunks)
    chunks.clear()
    samples = pcm.astype(np.float32)
    del pcm
    samples *= 1 / 32768.0
    return DecodedAudio(samples)


class _TooLong(Exception):
    """The decoded audio passed the limit."""


def _decode(container: av.container.InputContainer, mono: _MonoPcm) -> int | None:
    """Decode the container's first decodable audio stream into ``mono``.

    Returns ``None`` when the demuxer reached the end, or the byte position of the last
    packet read when it failed part-way (what was decoded until then is kept).
    """
    audio = container.streams.audio
    stream = next((s for s in audio if s.codec_context is not None), audio[0])
    timeline = _Timeline(container, stream)
    held: av.AudioFrame | None = None  # the latest frame, kept back until we know it is last
    first = True
    skip_missing: int | None = None  # known once the first packet is read
    failed_at = None
    again = 0
    packets = container.demux(stream)
    while failed_at is None:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.BlockingIOError:
            # EAGAIN: the demuxer asks to be called again (MPEG-TS resyncing), as ffmpeg does
            again += 1
            if again <= _DEMUX_RETRIES:
                packets = container.demux(stream)
                continue
            failed_at = max(timeline.position, 0)
            packet = None
        except av.FFmpegError:
            failed_at = max(timeline.position, 0)
            packet = None  # the demuxer did not send its flush packet: flush here
        else:
            again = 0
        if skip_missing is None and packet is not None and packet.size:
            skip_missing = _opus_pre_skip_missing(stream, packet)
        for frame in _decode_packet(stream, packet):
            if held is not None:
                mono.push(held)
            elif first:
                head = max(timeline.before_start(frame), skip_missing or 0)
                mono.drop_head(head, frame.sample_rate)
                first = False
            held = frame
        if packet is not None:
            timeline.saw(packet)
    if held is not None:
        after_end = timeline.after_end(held)
        mono.push(held)
        mono.end_stream(drop=after_end, rate=held.sample_rate)
    return failed_at


def _decode_packet(
    stream: av.AudioStream, packet: av.Packet[av.AudioStream] | None
) -> list[av.AudioFrame]:
    try:
        return stream.decode(packet)
    except _DECODE_ERRORS:
        return []  # a damaged packet: skip it, as ffmpeg does


def _opus_pre_skip_missing(stream: av.AudioStream, first: av.Packet[av.AudioStream]) -> int:
    """How many samples of Opus priming FFmpeg leaves in, at 48 kHz.

    The pre-skip in the Opus header (RFC 7845, section 5.1) is what a decoder must drop.
    FFmpeg takes it instead from the container, as skip samples on the first packet: from
    Matroska's CodecDelay, or MP4's edit list read in track ticks. Files encoded below
    48 kHz by FFmpeg 5's libopus declare there the encoder's lookahead at the input rate
    (52 samples at 8 kHz instead of 312), which leaves up to 5.4 ms of priming.
    """
    codec = stream.codec_context
    if codec is None or codec.name != "opus":
        return 0
    header = bytes(codec.extradata or b"")
    if header[:8] != b"OpusHead" or len(header) < 12:
        return 0
    pre_skip = int.from_bytes(header[10:12], "little")
    skipped = 0
    for side_data in first.iter_sidedata():
        if side_data.data_type == "skip_samples":
            skipped = int.from_bytes(bytes(side_data)[:4], "little")
    return max(pre_skip - skipped, 0)


class _Timeline:
    """The stretch of an MP4 (ISO BMFF) track a player presents, to cut what the decoder
    outputs outside it.

    MP4 marks encoder priming and end padding with the edit list, and gives the last
    sample a shorter duration. FFmpeg's mov demuxer turns the priming into skip samples but
    leaves the end to its caller (and, with a track timescale other than the decoder's
    rate, as Opus below 48 kHz gets, under-skips the start). The presentation runs from the
    stream's start time to the end of the last packet, and to start + duration (the edit
    list's; FFmpeg's parser gives MP3-in-MP4 packets whole-frame durations). Only the first
    and the last frame are cut, where the boundary falls inside them. Other containers are
    left to FFmpeg, which applies Ogg's granule positions, MP3's LAME header and Matroska's
    CodecDelay and DiscardPadding itself; timestamps in milliseconds (Matroska) are too
    coarse to cut by.
    """

    def __init__(self, container: av.container.InputContainer, stream: av.AudioStream) -> None:
        base = stream.time_base
        self.applies = "mp4" in container.format.name.split(",") and base is not None
        self.start: Fraction | None = None
        self.declared_end: Fraction | None = None
        if self.applies and base is not None and stream.start_time is not None:
            self.start = stream.start_time * base
            if stream.duration:
                self.declared_end = (stream.start_time + stream.duration) * base
        self.last: av.Packet[av.AudioStream] | None = None
        self.position = -1
        """Byte position of the last packet read."""

    def saw(self, packet: av.Packet[av.AudioStream]) -> None:
        if packet.size == 0:
            return  # the flush packet
        if packet.pos is not None and packet.pos >= 0:
            self.position = packet.pos
        self.last = packet

    @property
    def packets_end(self) -> Fraction | None:
        """Where the last packet's presentation ends."""
        last = self.last
        if not self.applies or last is None or last.pts is None or not last.duration:
            return None
        return (last.pts + last.duration) * last.time_base

    def before_start(self, frame: av.AudioFrame) -> int:
        """How many samples at the start of ``frame`` lie before the start."""
        return 0 if self.start is None else _samples_inside(frame, self.start)

    def after_end(self, frame: av.AudioFrame) -> int:
        """How many samples at the end of ``frame`` lie past the end."""
        ends = [end for end in (self.packets_end, self.declared_end) if end is not None]
        kept = _samples_inside(frame, min(ends)) if ends else 0
        return frame.samples - kept if kept else 0


def _samples_inside(frame: av.AudioFrame, seconds: Fraction) -> int:
    """The number of ``frame``'s samples before ``seconds`` (to the nearest sample) when
    that falls strictly inside the frame; 0 otherwise."""
    if frame.pts is None or frame.time_base is None:
        return 0
    samples = round((seconds - frame.pts * frame.time_base) * frame.sample_rate)
    return samples if 0 < samples < frame.samples else 0


def _decode_later_ogg_links(file: IO[bytes], after: int, mono: _MonoPcm) -> None:
    """Decode the Ogg chain links that start after byte ``after``, each as its own stream
    (FFmpeg 8 refuses a link whose rate, channels or codec differ)."""
    start = _next_match(file, _OGG_LINK_START, after + 1)
    while start is not None:
        failed_at = _decode_window(file, start, None, mono)
        if failed_at is None:
            return
        start = _next_match(file, _OGG_LINK_START, start + failed_at + 1)


def _decode_window(file: IO[bytes], start: int, end: int | None, mono: _MonoPcm) -> int | None:
    """Decode bytes ``start`` to ``end`` of ``file`` as a file of their own; see
    :func:`_decode`. A piece that does not open is passed over."""
    try:
        container = av.open(_Window(file, start, end), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError):
        return None
    with container:
        return _decode(container, mono) if container.streams.audio else None


def _joins(file: IO[bytes], marker: re.Pattern[bytes]) -> list[int]:
    """Byte offsets of the second and later ``marker`` in ``file``: where files joined
    byte-wise begin."""
    offsets: list[int] = []
    offset = _next_match(file, marker, 0)
    while offset is not None:
        offsets.append(offset)
        offset = _next_match(file, marker, offset + 1)
    return offsets[1:]


def _next_match(
    file: IO[bytes], marker: re.Pattern[bytes], offset: int, block: int = 1 << 16
) -> int | None:
    """The byte offset of the first match of ``marker`` at or after ``offset``."""
    overlap = 16  # longer than a marker: one cut by a block boundary is found in the next
    while True:
        file.seek(offset)
        data = file.read(block)
        match = marker.search(data)
        if match:
            return offset + match.start()
        if len(data) < block:
            return None
        offset += block - overlap


@contextlib.contextmanager
def _reopen(source: IO[bytes] | str) -> Iterator[IO[bytes]]:
    """``source`` as a file to read elsewhere in, left where it was (PyAV may be reading
    it sequentially)."""
    if isinstance(source, str):
        with open(source, "rb") as file:
            yield file
    else:
        position = source.tell()
        try:
            yield source
        finally:
            source.seek(position)


class _Window(io.RawIOBase):
    """A read-only view of bytes ``start`` to ``end`` (or the end) of ``file``, as a file
    of its own."""

    def __init__(self, file: IO[bytes], start: int, end: int | None) -> None:
        self.file = file
        self.start = start
        self.end = end
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.end is not None:
            left = max(self.end - self.start - self.position, 0)
            size = left if size < 0 else min(size, left)
        self.file.seek(self.start + self.position)
        data = self.file.read(size)
        self.position += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            offset += self._size()
        elif whence == io.SEEK_CUR:
            offset += self.position
        self.position = max(offset, 0)
        return self.position

    def tell(self) -> int:
        return self.position

    def _size(self) -> int:
        if self.end is not None:
            return self.end - self.start
        self.file.seek(0, io.SEEK_END)
        return self.file.tell() - self.start


class _MonoPcm:
    """Frames in any layout, rate or sample format -> 16 kHz mono int16 chunks.

    One resampler per run of frames with the same setup: a frame that differs from the
    previous one flushes the current resampler and starts a new one.
    """

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self._setup: tuple[str, str, int] | None = None
        self._resampler: av.AudioResampler | None = None
        self._average_channels = False
        self._head_to_drop = 0

    def push(self, frame: av.AudioFrame) -> None:
        """Convert ``frame``; raises :class:`_TooLong` once past ``max_samples``."""
        setup = (frame.format.name, frame.layout.name, frame.sample_rate)
        if setup != self._setup:
            self._flush()
            self._setup = setup
            self._average_channels = False
        frame.pts = None  # joined streams restart their clocks; count samples, not time
        try:
            self._convert(frame)
        except av.FFmpegError:
            # A frame FFmpeg cannot convert is skipped, like one it cannot decode. Over 24
            # channels without a layout FFmpeg has no downmix ("Rematrix is needed ... but
            # there is not enough information"): those are averaged instead.
            if not self._average_channels and frame.layout.nb_channels > 2:
                self._average_channels = True
                self._resampler = None
                with contextlib.suppress(av.FFmpegError):
                    self._convert(frame)
        if self.samples > self.max_samples:
            raise _TooLong

    def drop_head(self, samples: int, rate: int) -> None:
        """Drop the converted equivalent of the first ``samples`` pushed from now at ``rate``."""
        self._head_to_drop = round(samples * SAMPLE_RATE / rate)

    def end_stream(self, drop: int, rate: int) -> None:
        """Flush the resampler at the end of a stream, dropping the converted equivalent
        of the last ``drop`` samples pushed at ``rate``."""
        self._flush()
        self._setup = None
        drop = round(drop * SAMPLE_RATE / rate)
        while drop and self.chunks:
            last = self.chunks[-1]
            cut = min(drop, last.size)
            self.chunks[-1] = last[: last.size - cut]
            if not self.chunks[-1].size:
                self.chunks.pop()
            drop -= cut
            self.samples -= cut

    def finish(self) -> list[np.ndarray]:
        """The int16 chunks, once the last resampler is flushed."""
        self._flush()
        chunks, self.chunks = self.chunks, []
        return chunks

    def _convert(self, frame: av.AudioFrame) -> None:
        if self._average_channels:
            frame = _average(frame)
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._keep(self._resampler.resample(frame))

    def _flush(self) -> None:
        if self._resampler is not None:
            with contextlib.suppress(av.FFmpegError):
                self._keep(self._resampler.resample(None))
        self._resampler = None

    def _keep(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            chunk = frame.to_ndarray().reshape(-1)
            if self._head_to_drop:
                cut = min(self._head_to_drop, chunk.size)
                chunk = chunk[cut:]
                self._head_to_drop -= cut
            self.chunks.append(chunk)
            self.samples += chunk.size


def _average(frame: av.AudioFrame) -> av.AudioFrame:
    """A mono float frame, the mean of ``frame``'s channels."""
    # Packed float, same layout (no rematrix). Packed, because PyAV's to_ndarray reads
    # only 8 planes (FFmpeg's AV_NUM_DATA_POINTERS) and crashes on more.
    channels = frame.layout.nb_channels
    packed = av.AudioResampler(format="flt").resample(frame)
    interleaved = np.concatenate([f.to_ndarray().reshape(-1) for f in packed])
    mean = interleaved.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    mono = av.AudioFrame.from_ndarray(mean[np.newaxis, :], "fltp", "mono")
    mono.sample_rate = frame.sample_rate
    return mono
