"""The real-ear augmentation and the multi-family synthesis, on real synthesised speech."""

from __future__ import annotations

import numpy as np
import pytest
from edgesplit.device.audio import augment as A
from edgesplit.device.audio.features import CLIP_SAMPLES, SAMPLE_RATE_HZ, log_mel, mfcc
from edgesplit.device.audio.kws_data import (
    DEPLOY_TRAIN_FAMILIES,
    HELD_OUT_FAMILY,
    KEYWORDS,
    plan_bank,
)
from edgesplit.device.audio.synth import FAMILIES, Say, family_voices, speak


@pytest.fixture(scope="module")
def words() -> list[np.ndarray]:
    says = [Say("festival", "kal_diphone", "left"), Say("flite", "rms", "stop")]
    says += [Say("espeak-ng", "en-us+m3", "go", 1.2, 0.8)]
    return speak(says)


def test_every_family_speaks(words):
    for audio in words:
        assert 0.15 * SAMPLE_RATE_HZ < audio.size < 1.2 * SAMPLE_RATE_HZ
        assert np.abs(audio).max() > 0.05


def test_held_out_family_shares_no_speaker_with_training():
    assert HELD_OUT_FAMILY in FAMILIES and HELD_OUT_FAMILY not in DEPLOY_TRAIN_FAMILIES
    held = set(family_voices(HELD_OUT_FAMILY))
    for fam in DEPLOY_TRAIN_FAMILIES:
        assert not held & set(family_voices(fam))
    # flite ships kal and slt too: the same speakers as festival's, so they are left out
    assert not {"kal", "kal16", "slt"} & held


def test_bank_plan_is_deterministic_and_covers_every_keyword():
    a, b = plan_bank("festival", "test"), plan_bank("festival", "test")
    assert a == b
    assert {s.text.rstrip(".!?") for _, s in a} >= set(KEYWORDS)
    espeak_train = {s.voice for _, s in plan_bank("espeak-ng", "train")}
    espeak_test = {s.voice for _, s in plan_bank("espeak-ng", "test")}
    assert not espeak_train & espeak_test


def test_speed_perturbation_changes_duration(words):
    fast = A.change_speed(words[0], 1.1)
    assert abs(fast.size - words[0].size / 1.1) <= 1


def test_reverb_keeps_peak_and_adds_a_tail(words):
    rng = np.random.default_rng(0)
    wet = A.reverberate(words[0], A.room_impulse_response(rng, 0.6))
    assert wet.size > words[0].size
    assert np.isclose(np.abs(wet).max(), np.abs(words[0]).max(), rtol=1e-3)
    assert np.abs(wet[words[0].size :]).max() > 1e-3  # energy after the word ended


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_noise_is_mixed_at_the_requested_snr(words, snr_db):
    rng = np.random.default_rng(1)
    clip = A.place(words[1], rng)
    noise = A.street_noise(rng, CLIP_SAMPLES)
    noisy = A.add_noise(clip, noise, snr_db)
    active = clip[np.abs(clip) > 0.05]
    measured = 20 * np.log10(np.sqrt(np.mean(active**2)) / np.sqrt(np.mean((noisy - clip) ** 2)))
    assert abs(measured - snr_db) < 0.5


def test_babble_is_other_speech(words):
    out = A.babble(np.random.default_rng(2), words, CLIP_SAMPLES)
    assert out.shape == (CLIP_SAMPLES,) and np.isclose(np.sqrt(np.mean(out**2)), 1.0, rtol=1e-3)


def test_band_limit_removes_out_of_band_energy():
    rng = np.random.default_rng(3)
    white = rng.standard_normal(CLIP_SAMPLES).astype(np.float32)
    narrow = A.band_limit(white, 300.0, 3400.0)
    spec = np.abs(np.fft.rfft(narrow)) ** 2
    f = np.fft.rfftfreq(CLIP_SAMPLES, 1 / SAMPLE_RATE_HZ)
    assert spec[(f > 500) & (f < 3000)].mean() > 100 * spec[f > 6000].mean()


def test_vtlp_moves_energy_between_mel_bands():
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE_HZ
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    assert log_mel(tone, warp=0.9).mean(0).argmax() > log_mel(tone, warp=1.1).mean(0).argmax()


def test_augmented_clip_is_seeded_and_one_second(words):
    aug = A.EarAugment()
    a, wa = aug(words[2], np.random.default_rng(5), words)
    b, wb = aug(words[2], np.random.default_rng(5), words)
    c, _ = aug(words[2], np.random.default_rng(6), words)
    assert a.shape == (CLIP_SAMPLES,) and np.array_equal(a, b) and wa == wb
    assert not np.array_equal(a, c)
    assert np.abs(a).max() <= 1.0 and np.isfinite(mfcc(a, wa)).all()
