from __future__ import annotations

import numpy as np
import pytest
from edgesplit.device.audio import features as F
from hypothesis import given, settings
from hypothesis import strategies as st


def test_mfcc_layout_matches_mlperf_tiny():
    audio = np.random.default_rng(0).normal(0, 0.1, F.CLIP_SAMPLES).astype(np.float32)
    out = F.mfcc(audio)
    assert out.shape == (49, 10) == (F.FRAMES, F.MFCC_COEFFS)
    assert out.dtype == np.float32 and np.isfinite(out).all()


def test_mel_filterbank_covers_band():
    fb = F.mel_filterbank()
    assert fb.shape == (F.FFT_SIZE // 2 + 1, F.MEL_BANDS)
    assert (fb.sum(axis=0) > 0).all()  # no empty band
    top_bin = int(np.ceil(F.MEL_HIGH_HZ / (F.SAMPLE_RATE_HZ / F.FFT_SIZE))) + 1
    assert fb[top_bin + 1 :].sum() == 0  # nothing above 4 kHz


def test_tone_lands_in_the_right_band():
    t = np.arange(F.CLIP_SAMPLES) / F.SAMPLE_RATE_HZ
    low = F.log_mel(0.5 * np.sin(2 * np.pi * 300 * t)).mean(axis=0)
    high = F.log_mel(0.5 * np.sin(2 * np.pi * 3000 * t)).mean(axis=0)
    assert low.argmax() < high.argmax()


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=40_000))
def test_fit_clip_always_one_second(n):
    assert F.fit_clip(np.ones(n)).shape == (F.CLIP_SAMPLES,)


def test_mfcc_from_log_mel_is_the_same_pipeline():
    audio = np.random.default_rng(1).normal(0, 0.1, F.CLIP_SAMPLES)
    np.testing.assert_allclose(F.mfcc_from_log_mel(F.log_mel(audio)), F.mfcc(audio), rtol=1e-5)
    with pytest.raises(ValueError, match=r"shape \(frames, 40\)"):
        F.mfcc_from_log_mel(np.zeros((49, 13)))
