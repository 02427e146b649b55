"""Word error rate and per-utterance recall of a transcript against its utterances.

Both use Whisper's English normalizer. Recall is the share of utterances of which at least
half the words appear in the transcript, aligned in order (jiwer's alignment; substituted
words do not count): a lost sentence shows, a misspelt word does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from tests.support.text import normalize

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
    owners: list[int] = []
    words: list[str] = []
    for index, utterance in enumerate(utterances):
        normalized = normalize(utterance).split()
        words += normalized
        owners += [index] * len(normalized)
    reference = " ".join(words)
    hypothesis_words = normalize(hypothesis).split()
    if not hypothesis_words:
        return Accuracy(1.0, 0.0, len(utterances), tuple(range(len(utterances))))
    output = jiwer.process_words(reference, " ".join(hypothesis_words))
    hits = [0] * len(utterances)
    for chunk in output.alignments[0]:
        if chunk.type == "equal":
            for position in range(chunk.ref_start_idx, chunk.ref_end_idx):
                hits[owners[position]] += 1
    totals = [owners.count(index) for index in range(len(utterances))]
    missing = tuple(
        index
        for index, (hit, total) in enumerate(zip(hits, totals, strict=True))
        if total and hit < FOUND_SHARE * total
    )
    counted = sum(1 for total in totals if total)
    return Accuracy(
        wer=float(output.wer),
        recall=1 - len(missing) / counted if counted else 1.0,
        utterances=counted,
        missing=missing,
    )
