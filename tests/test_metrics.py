from __future__ import annotations

import numpy as np
import pytest
from edgesplit.device.metrics import (
    character_error_rate,
    edit_distance,
    top1_accuracy,
    word_accuracy,
)
from edgesplit.device.stats import LatencyStats
from hypothesis import given
from hypothesis import strategies as st

text = st.text(alphabet="abcde ", max_size=12)


def test_edit_distance_known_values():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("same", "same") == 0


@given(text, text)
def test_edit_distance_symmetric_and_bounded(a, b):
    d = edit_distance(a, b)
    assert d == edit_distance(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))


@given(text, text, text)
def test_edit_distance_triangle_inequality(a, b, c):
    assert edit_distance(a, c) <= edit_distance(a, b) + edit_distance(b, c)


def test_cer_ignores_whitespace_and_counts_edits():
    assert character_error_rate(["Check FoundPull"], ["Check Found Pull"]) == 0.0
    assert character_error_rate(["Cheek"], ["Check"]) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        character_error_rate(["a", "b"], ["a"])


def test_word_accuracy():
    assert word_accuracy(["Check FoundPull"], ["Check Found Pull"]) == 1.0
    assert word_accuracy(["Exit"], ["EXIT Gate"]) == 0.0
    # One predicted occurrence credits one reference word only.
    assert word_accuracy(["Stop"], ["Stop Stop"]) == 0.5


def test_top1_accuracy():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert top1_accuracy(logits, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="do not line up"):
        top1_accuracy(logits, np.array([1, 0]))


def test_latency_stats_in_milliseconds():
    s = LatencyStats.from_seconds([0.001] * 9 + [0.011])
    assert s.median_ms == pytest.approx(1.0)
    assert s.p99_ms > s.p90_ms >= s.median_ms
    with pytest.raises(ValueError):
        LatencyStats.from_seconds([])
