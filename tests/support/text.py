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


def found_shares(sentences: list[str], hypothesis: str) -> list[float]:
    """For each sentence, the share of its words that appear in ``hypothesis``, aligned in
    order (jiwer's alignment after normalising; substituted words do not count)."""
    owners: list[int] = []
    words: list[str] = []
    for index, sentence in enumerate(sentences):
        normalized = normalize(sentence).split()
        words += normalized
        owners += [index] * len(normalized)
    hits = [0] * len(sentences)
    hypothesis_words = normalize(hypothesis).split()
    if hypothesis_words and words:
        output = jiwer.process_words(" ".join(words), " ".join(hypothesis_words))
        for chunk in output.alignments[0]:
            if chunk.type == "equal":
                for position in range(chunk.ref_start_idx, chunk.ref_end_idx):
                    hits[owners[position]] += 1
    totals = [owners.count(index) for index in range(len(sentences))]
    return [hit / total if total else 1.0 for hit, total in zip(hits, totals, strict=True)]


def missing_sentences(sentences: list[str], hypothesis: str, share: float = 0.5) -> list[str]:
    """The sentences of which fewer than ``share`` of the words are in ``hypothesis``."""
    shares = found_shares(sentences, hypothesis)
    return [sentence for sentence, found in zip(sentences, shares, strict=True) if found < share]
