"""Word error rate with Whisper's English normalizer, for accuracy assertions."""

from __future__ import annotations

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

_normalize = EnglishTextNormalizer()


def normalize(text: str) -> str:
    return str(_normalize(text))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER after normalising both sides (numbers, spelling, punctuation)."""
    return float(jiwer.wer(normalize(reference), normalize(hypothesis)))
