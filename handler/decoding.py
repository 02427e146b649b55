"""Whisper on a batch of windows: one encoder pass, one batched beam search, timestamps.

Each window is up to 30 s of speech (see :mod:`handler.segmentation`). The batch is decoded
with timestamp tokens whatever the response format, and every word is aligned to the audio:
the segments get their times, and the engine can see which speech the text covers. This
follows faster-whisper's ``WhisperModel`` (prompt, suppressed tokens, temperature fallback,
no-speech rule, word alignment) but for a batch, and, unlike its
``BatchedInferencePipeline``, keeps the words after a window's last timestamp and falls
back to higher temperatures window by window.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from handler.audio import SAMPLE_RATE

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

# Whisper's own thresholds (openai-whisper's and faster-whisper's transcribe() defaults).
COMPRESSION_RATIO_THRESHOLD = 2.4
"""Text that gzip compresses more than this may be a repetition loop: decode again, hotter."""
LOOP_TOKENS_PER_SECOND = 6.0
"""...if it also has more tokens than speech can hold in its window: fast speech is about 4
words (5 tokens) a second, a loop runs on to Whisper's 448-token limit. Without this, a
window in which someone says the same sentence twice was sampled again at every
temperature and came back missing words."""
LOG_PROB_THRESHOLD = -1.0
"""Average token log probability under this: decode again at the next temperature."""
NO_SPEECH_THRESHOLD = 0.6
"""``no_speech_prob`` over this with a low log probability: the window holds no speech."""
BEST_OF = 5
"""Candidates sampled at a temperature above 0."""
WINDOW_FRAMES = 3000
"""Mel frames in Whisper's 30 s window (100 per second)."""
HOP_SAMPLES = 160
"""Samples per mel frame."""
TIMESTAMPS_PER_SECOND = 50
"""Whisper's timestamp tokens count 20 ms steps."""
MAX_LENGTH = 448
"""Whisper's longest token sequence, prompt included."""
MAX_INITIAL_TIMESTAMP = 1.0
"""The first timestamp may not be later than this (seconds), as in Whisper."""
# faster-whisper's transcribe() defaults: punctuation merged into the next / previous word.
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
MAX_PREVIOUS_TOKENS = 223
"""Whisper keeps at most this many tokens of previous text in its prompt (448 // 2 - 1)."""
MIN_CONTEXT_TOKENS = 8
"""A shorter context (a "Yes." before the window) is not worth cutting the others to."""
APPEND_PUNCTUATIONS = "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001"


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: beam width, the temperature schedule and the prompt."""

    beam_size: int = 5
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    initial_prompt: str | None = None


@dataclass
class RawWord:
    start: float
    end: float
    word: str
    probability: float


@dataclass
class RawSegment:
    """A segment as the model wrote it; times in seconds from the window's start."""

    start: float
    end: float
    text: str
    tokens: list[int]
    words: list[RawWord] = field(default_factory=list)


@dataclass
class Decoded:
    """What one window decoded to."""

    segments: list[RawSegment]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float

    @property
    def no_speech(self) -> bool:
        """Whisper's rule: likely no speech, and the text is not confident either."""
        return self.no_speech_prob > NO_SPEECH_THRESHOLD and self.avg_logprob < LOG_PROB_THRESHOLD


@dataclass
class _Attempt:
    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    seconds: float
    """Length of the window's audio."""

    @property
    def looping(self) -> bool:
        return (
            self.compression_ratio > COMPRESSION_RATIO_THRESHOLD
            and len(self.tokens) > LOOP_TOKENS_PER_SECOND * self.seconds
        )

    def needs_fallback(self) -> bool:
        if self.no_speech_prob > NO_SPEECH_THRESHOLD and self.avg_logprob < LOG_PROB_THRESHOLD:
            return False  # silence: a hotter decoding would only invent words
        return self.looping or self.avg_logprob < LOG_PROB_THRESHOLD


def compression_ratio(text: str) -> float:
    """gzip's ratio of ``text`` (Whisper's repetition measure)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class WindowDecoder:
    """Decodes batches of windows with one loaded ``WhisperModel`` (thread-safe: no state
    between calls)."""

    def __init__(self, model: WhisperModel) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.tokenizer: Tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
        )
        self.suppress_tokens = list(get_suppressed_tokens(self.tokenizer, [-1]))

    def features(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel features of one window (at most 30 s), 3000 frames.

        The audio is padded with silence to 30 s before the transform, as openai-whisper
        does, rather than the features with zeros, as faster-whisper does: a zero in
        normalised log-mel is not silence, and tiny.en then garbled or dropped the last words
        before a window's end (WER 0.040 against 0.024 on the radio address).
        """
        padded = np.zeros(WINDOW_FRAMES * HOP_SAMPLES, dtype=np.float32)
        padded[: min(len(audio), len(padded))] = audio[: len(padded)]
        features: np.ndarray = self.model.feature_extractor(padded)
        return features[..., :WINDOW_FRAMES]

    def decode(
        self,
        audios: Sequence[np.ndarray],
        options: DecodeOptions,
        contexts: Sequence[str | None] | None = None,
    ) -> list[Decoded]:
        """Decode windows (16 kHz float32, each at most 30 s) in one batch, every segment
        with its words' timings (they tell which audio the text covers).

        ``contexts`` is, per window, the text just before it (the previous window's), given
        to the model after the initial prompt as Whisper's sequential decoding does
        (``condition_on_previous_text``); None for a window that starts afresh.
        """
        from faster_whisper.transcribe import get_ctranslate2_storage

        features = np.stack([self.features(audio) for audio in audios])
        encoded = self.model.model.encode(get_ctranslate2_storage(features))
        del features
        prompts = self._prompts(options.initial_prompt, contexts or [None] * len(audios))
        durations = [len(audio) / SAMPLE_RATE for audio in audios]
        attempts = self._with_fallback(encoded, prompts, durations, options)
        decoded = [
            self._segments(attempt, duration)
            for attempt, duration in zip(attempts, durations, strict=True)
        ]
        self._add_words(encoded, decoded, durations)
        return decoded

    def _prompts(
        self, initial_prompt: str | None, contexts: Sequence[str | None]
    ) -> list[list[int]]:
        """Whisper's prompt per window: previous text (the initial prompt, then the window's
        context; its last 223 tokens), start of transcript, language, task.

        CTranslate2 decodes a batch only when its start-of-transcript tokens line up, so
        the contexts of one batch are cut to the same number of tokens (the shortest; a
        context under :data:`MIN_CONTEXT_TOKENS` is dropped instead).
        """
        fixed = self.tokenizer.encode(" " + initial_prompt.strip()) if initial_prompt else []
        limit = MAX_PREVIOUS_TOKENS - len(fixed)
        previous = [
            self.tokenizer.encode(" " + context.strip())[-limit:] if context and limit > 0 else []
            for context in contexts
        ]
        usable = [len(tokens) for tokens in previous if len(tokens) >= MIN_CONTEXT_TOKENS]
        shortest = min(usable, default=0)
        return [
            list(
                self.model.get_prompt(
                    self.tokenizer,
                    fixed + (tokens[-shortest:] if len(tokens) >= MIN_CONTEXT_TOKENS else []),
                    without_timestamps=False,
                )
            )
            for tokens in previous
        ]

    def _with_fallback(
        self,
        encoded: Any,
        prompts: list[list[int]],
        durations: list[float],
        options: DecodeOptions,
    ) -> list[_Attempt]:
        """Decode every window at the first temperature; the windows whose text looks
        broken (a loop, or improbable) again at the next, and so on; then, per window, the
        first good attempt, or the most probable one that is not a loop (Whisper's rule).
        Windows whose prompts differ in length are generated in separate calls."""
        count = len(durations)
        tried: list[list[_Attempt]] = [[] for _ in range(count)]
        pending = list(range(count))
        for temperature in options.temperatures:
            if not pending:
                break
            for group in _by_length(pending, prompts):
                storage = encoded if len(group) == count else self._select(encoded, group)
                group_prompts = [prompts[index] for index in group]
                generated = self._generate(storage, group_prompts, temperature, options)
                for index, attempt in zip(group, generated, strict=True):
                    attempt.seconds = durations[index]
                    tried[index].append(attempt)
            pending = [index for index in pending if tried[index][-1].needs_fallback()]
        return [_best(attempts, index in pending) for index, attempts in enumerate(tried)]

    @staticmethod
    def _select(encoded: Any, indices: list[int]) -> Any:
        import ctranslate2

        return ctranslate2.StorageView.from_array(
            np.ascontiguousarray(np.asarray(encoded)[indices])
        )

    def _generate(
        self,
        encoded: Any,
        prompts: list[list[int]],
        temperature: float,
        options: DecodeOptions,
    ) -> list[_Attempt]:
        if temperature > 0:
            search: dict[str, Any] = {
                "beam_size": 1,
                "num_hypotheses": BEST_OF,
                "sampling_topk": 0,
                "sampling_temperature": temperature,
            }
        else:
            search = {"beam_size": options.beam_size}
        results = self.model.model.generate(
            encoded,
            prompts,
            max_length=MAX_LENGTH,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self.suppress_tokens,
            max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP * TIMESTAMPS_PER_SECOND),
            **search,
        )
        attempts = []
        for result in results:
            tokens = list(result.sequences_ids[0])
            # Scores are length-normalised log probabilities (length_penalty 1).
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            text = self.tokenizer.decode(tokens).strip()
            attempts.append(
                _Attempt(
                    tokens,
                    avg_logprob,
                    result.no_speech_prob,
                    compression_ratio(text),
                    temperature,
                    seconds=0.0,
                )
            )
        return attempts

    def _segments(self, attempt: _Attempt, duration: float) -> Decoded:
        """Split the tokens at timestamps (``<|t0|> text <|t1|>``); text after the last
        timestamp is kept as a segment that ends where the window does."""
        begin = self.tokenizer.timestamp_begin
        segments: list[RawSegment] = []
        start = 0.0
        pending: list[int] = []  # the opening timestamp (if any), then text tokens
        has_text = False
        for token in attempt.tokens:
            if token < begin:
                pending.append(token)
                has_text = True
                continue
            time = min((token - begin) / TIMESTAMPS_PER_SECOND, duration)
            if has_text:
                self._add(segments, start, max(time, start), [*pending, token])
                pending, has_text = [], False
            else:
                pending = [token]  # an opening timestamp (a later one replaces it)
            start = time
        if has_text:
            self._add(segments, start, max(duration, start), pending)
        return Decoded(
            segments,
            attempt.temperature,
            attempt.avg_logprob,
            attempt.compression_ratio,
            attempt.no_speech_prob,
        )

    def _add(self, segments: list[RawSegment], start: float, end: float, tokens: list[int]) -> None:
        text = self.tokenizer.decode([t for t in tokens if t < self.tokenizer.eot])
        if text.strip():
            segments.append(RawSegment(start, end, text, tokens))

    def _add_words(self, encoded: Any, decoded: list[Decoded], durations: list[float]) -> None:
        """Word timings from the cross-attention alignment (faster-whisper's
        ``add_word_timestamps``), for the windows that have text."""
        with_text = [i for i, result in enumerate(decoded) if result.segments]
        if not with_text:
            return
        storage = encoded if len(with_text) == len(decoded) else self._select(encoded, with_text)
        # faster-whisper's segment dicts, which add_word_timestamps fills in place.
        batch: list[list[dict[str, Any]]] = [
            [
                {"start": s.start, "end": s.end, "tokens": s.tokens, "seek": 0}
                for s in decoded[i].segments
            ]
            for i in with_text
        ]
        frames = [round(durations[i] * self.model.frames_per_second) for i in with_text]
        self.model.add_word_timestamps(
            batch,
            self.tokenizer,
            storage,
            frames,
            PREPEND_PUNCTUATIONS,
            APPEND_PUNCTUATIONS,
            0.0,
        )
        for i, segments in zip(with_text, batch, strict=True):
            for raw, aligned in zip(decoded[i].segments, segments, strict=True):
                raw.start, raw.end = aligned["start"], aligned["end"]
                raw.words = [
                    RawWord(w["start"], w["end"], w["word"], w["probability"])
                    for w in aligned.get("words", [])
                ]


def _by_length(indices: list[int], prompts: list[list[int]]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for index in indices:
        groups.setdefault(len(prompts[index]), []).append(index)
    return list(groups.values())


def _best(attempts: list[_Attempt], all_failed: bool) -> _Attempt:
    if not all_failed:
        return attempts[-1]
    fine = [a for a in attempts if not a.looping]
    return max(fine or attempts, key=lambda a: a.avg_logprob)
