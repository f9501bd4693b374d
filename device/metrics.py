"""Accuracy metrics: top-1 accuracy, character error rate and word accuracy for OCR."""

from __future__ import annotations

import numpy as np


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"logits {logits.shape} and labels {labels.shape} do not line up")
    if labels.size == 0:
        raise ValueError("no examples")
    return float((logits.argmax(axis=1) == labels).mean())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def normalise_for_cer(text: str) -> str:
    """CER ignores whitespace: PP-OCR often drops or adds spaces between words on one line."""
    return "".join(text.split())


def character_error_rate(predictions: list[str], references: list[str]) -> float:
    """Total edits / total reference characters over a corpus (whitespace removed)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    edits = sum(
        edit_distance(normalise_for_cer(p), normalise_for_cer(r))
        for p, r in zip(predictions, references, strict=True)
    )
    chars = sum(len(normalise_for_cer(r)) for r in references)
    if chars == 0:
        raise ValueError("references contain no characters")
    return edits / chars


def word_accuracy(predictions: list[str], references: list[str]) -> float:
    """Fraction of reference words found, case-sensitively, in their frame's prediction.

    Matching ignores spaces in the prediction, so 'CoffeeOpen' still credits 'Coffee' and 'Open';
    each predicted occurrence credits one reference word.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    found = total = 0
    for pred, ref in zip(predictions, references, strict=True):
        remaining = normalise_for_cer(pred)
        for word in ref.split():
            total += 1
            if word in remaining:
                found += 1
                remaining = remaining.replace(word, "\0", 1)
    if total == 0:
        raise ValueError("references contain no words")
    return found / total
