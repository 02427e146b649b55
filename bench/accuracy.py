"""Word error rate and per-utterance recall of a transcript against its utterances.

Both use Whisper's English normalizer. Recall is the share of utterances of which at least
half the words appear in the transcript, aligned in order (jiwer's alignment; substituted
words do not count): a lost sentence shows, a misspelt word does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from tests.support.text import found_shares, normalize

FOUND_SHARE = 0.5
"""An utterance is found when at least this share of its words is in the transcript."""


@dataclass(frozen=True)
class Accuracy:
    wer: float
    recall: float
    utterances: int
    missing: tuple[int, ...]
    """Indices of the utterances not found."""


def score(utterances: Sequence[str], hypothesis: str) -> Accuracy:
    """WER over the whole text, and recall of ``utterances`` in ``hypothesis``."""
    counted = [index for index, text in enumerate(utterances) if normalize(text).split()]
    reference = " ".join(normalize(utterances[index]) for index in counted)
    normalized = normalize(hypothesis)
    wer = float(jiwer.wer(reference, normalized)) if normalized.split() else 1.0
    shares = found_shares([utterances[index] for index in counted], hypothesis)
    missing = tuple(
        index for index, share in zip(counted, shares, strict=True) if share < FOUND_SHARE
    )
    return Accuracy(
        wer=wer,
        recall=1 - len(missing) / len(counted) if counted else 1.0,
        utterances=len(counted),
        missing=missing,
    )
