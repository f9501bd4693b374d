"""Keyword spotting on real sessions, on speech synthesised by held-out espeak-ng voices."""

from __future__ import annotations

import numpy as np
import pytest
from edgesplit.device.audio.kws_data import KEYWORDS, LABELS, plan_clips, render_clip
from edgesplit.device.audio.synth import ACCENTS, Utterance, split_variants, synthesize
from edgesplit.device.audio.vad import SileroVad
from edgesplit.device.errors import ModelInputError
from edgesplit.device.workloads import kws


def test_speaker_split_is_disjoint_and_stable():
    a, b = split_variants(), split_variants()
    assert a == b
    assert not set(a["train"]) & set(a["test"])
    assert len(a["test"]) >= 10
    test_voices = {c.utterance.variant for c in plan_clips("test") if c.utterance}
    assert test_voices == set(a["test"])


def test_held_out_voice_accuracy(kws_workload):
    fp32 = kws.evaluate(kws.KeywordSpotter(kws.model_path("fp32")), limit=240)["accuracy"]
    int8 = kws.evaluate(kws.KeywordSpotter(kws.model_path("int8")), limit=240)["accuracy"]
    assert fp32 >= 0.88, fp32
    assert int8 >= fp32 - 0.03, (fp32, int8)


@pytest.mark.parametrize("word", ["yes", "stop", "left"])
def test_spots_a_keyword_from_a_held_out_voice(kws_workload, word):
    spotter = kws.KeywordSpotter(kws.model_path("int8"))
    voice = split_variants()["test"][0]
    votes = [
        spotter.classify(synthesize(Utterance(word, accent, voice))).label for accent in ACCENTS
    ]
    assert votes.count(word) >= len(ACCENTS) - 2, votes


def test_silence_is_silence(kws_workload):
    spotter = kws.KeywordSpotter(kws.model_path("int8"))
    clip = [c for c in plan_clips("test") if c.utterance is None][0]
    assert spotter.classify(render_clip(clip)).label == "_silence_"


def test_labels_match_card():
    assert kws.labels() == LABELS
    assert set(KEYWORDS) < set(LABELS)


def test_bad_feature_shape():
    spotter = kws.KeywordSpotter(kws.model_path("fp32"))
    with pytest.raises(ModelInputError, match=r"\(N, 49, 10\)"):
        spotter.logits(np.zeros((2, 40, 10), np.float32))


def test_vad_finds_each_utterance_and_ignores_silence():
    rng = np.random.default_rng(0)
    gap = lambda: rng.normal(0, 0.002, 12_000).astype(np.float32)  # noqa: E731
    words = [synthesize(Utterance(w, "en-us", "m3")) for w in ("go", "left", "stop")]
    stream = np.concatenate([gap(), words[0], gap(), words[1], gap(), words[2], gap()])
    vad = SileroVad()
    assert len(vad.segments(stream)) == 3
    assert vad.segments(gap()) == []
    with pytest.raises(ValueError, match="512 samples"):
        vad.chunk_probability(np.zeros(100, np.float32))
