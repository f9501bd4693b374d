"""Augmentation that models how a real ear (an earbud mic in a room or a street) hears a word.

Every function takes a seeded ``numpy.random.Generator``, so a clip is a pure function of its seed.
Ranges follow the KWS/ASR augmentation literature: speed 0.9-1.1 (Ko et al. 2015, Kaldi's 3-way
speed perturbation), VTLP warp 0.9-1.1 (Jaitly & Hinton 2013), RT60 0.1-0.9 s of ordinary rooms
(Ko et al. 2017 simulated RIRs), noise at 0-20 dB SNR, phone/earbud band-limits 100-300 Hz to
3.4-7 kHz (narrow-band telephony to wide-band headsets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from edgesplit.device.audio.features import CLIP_SAMPLES, SAMPLE_RATE_HZ

SPEED_RANGE = (0.88, 1.12)
VTLP_RANGE = (0.9, 1.1)
RT60_RANGE_S = (0.1, 0.9)
SNR_RANGE_DB = (0.0, 20.0)


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation: resample so the clip plays ``factor`` times faster (tempo and pitch)."""
    from scipy.signal import resample

    n = max(1, round(audio.size / factor))
    return resample(audio, n).astype(np.float32) if audio.size else audio


def room_impulse_response(rng: np.random.Generator, rt60_s: float) -> np.ndarray:
    """Synthetic RIR: direct path, a few early reflections, exponentially decaying diffuse tail."""
    n = int(min(rt60_s, 1.0) * SAMPLE_RATE_HZ)
    t = np.arange(n) / SAMPLE_RATE_HZ
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    tail[: int(0.004 * SAMPLE_RATE_HZ)] = 0.0  # diffuse field starts after the early reflections
    rir = 0.3 * tail / (np.sqrt(np.sum(tail**2)) + 1e-9)
    rir[0] = 1.0
    for _ in range(int(rng.integers(2, 6))):
        rir[int(rng.uniform(0.002, 0.02) * SAMPLE_RATE_HZ)] += rng.uniform(-0.5, 0.5)
    return rir.astype(np.float32)


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    wet = fftconvolve(audio, rir)[: audio.size + rir.size // 2]
    return (wet * (np.abs(audio).max() / (np.abs(wet).max() + 1e-9))).astype(np.float32)


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / f ** (0.5 * exponent), n=n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-9)).astype(np.float32)


def street_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Street/cafe-like noise, unit RMS: traffic rumble that swells and fades, engine hum, and
    short clatter transients (cups, steps)."""
    t = np.arange(n) / SAMPLE_RATE_HZ
    rumble = coloured_noise(rng, n, rng.uniform(1.2, 2.0))
    swell = 1.0 + 0.6 * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * t + rng.uniform(0, 6.3))
    f0 = rng.uniform(30, 120)
    hum = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 5))
    noise = rumble * swell + rng.uniform(0.0, 0.5) * hum
    for _ in range(int(rng.poisson(2.0))):
        start, width = int(rng.integers(0, n)), int(rng.uniform(0.005, 0.04) * SAMPLE_RATE_HZ)
        burst = coloured_noise(rng, width, 0.0) * np.exp(-np.arange(width) / (width / 4))
        noise[start : start + width] += rng.uniform(1, 4) * burst[: n - start]
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-9)).astype(np.float32)


def babble(rng: np.random.Generator, pool: Sequence[np.ndarray], n: int) -> np.ndarray:
    """3-7 talkers, each a chain of words drawn from ``pool`` (other speech), unit RMS."""
    out = np.zeros(n, np.float32)
    for _ in range(int(rng.integers(3, 8))):
        pos = int(rng.integers(-n // 2, n // 4))
        while pos < n:
            word = pool[int(rng.integers(len(pool)))]
            lo, hi = max(pos, 0), min(pos + word.size, n)
            if hi > lo:
                out[lo:hi] += (
                    rng.uniform(0.5, 1.0) * word[lo - pos : hi - pos] / (np.abs(word).max() + 1e-9)
                )
            pos += word.size + int(rng.uniform(0.0, 0.15) * SAMPLE_RATE_HZ)
    return out / (np.sqrt(np.mean(out**2)) + 1e-9)


def band_limit(audio: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """A microphone/codec pass band: 4th-order Butterworth high-pass and low-pass."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=SAMPLE_RATE_HZ, output="sos")
    return sosfilt(sos, audio).astype(np.float32)


def place(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speech at a random offset in a 1 s clip, peak 1 (a longer utterance is cropped at random)."""
    clip = np.zeros(CLIP_SAMPLES, np.float32)
    if speech.size > CLIP_SAMPLES:
        start = int(rng.integers(0, speech.size - CLIP_SAMPLES + 1))
        speech = speech[start : start + CLIP_SAMPLES]
    if speech.size:
        start = int(rng.integers(0, CLIP_SAMPLES - speech.size + 1))
        clip[start : start + speech.size] = speech / (np.abs(speech).max() + 1e-9)
    return clip


def add_noise(clip: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` (unit RMS) scaled to ``snr_db`` below the RMS of the clip's active speech."""
    active = clip[np.abs(clip) > 0.05 * (np.abs(clip).max() + 1e-9)]
    speech_rms = float(np.sqrt(np.mean(active**2))) if active.size else 0.1
    return clip + noise * speech_rms / 10 ** (snr_db / 20)


@dataclass(frozen=True)
class EarAugment:
    """Probabilities of each step of :meth:`__call__` (the defaults are the training recipe)."""

    p_reverb: float = 0.5
    p_noise: float = 0.8
    p_babble: float = 0.4  # share of the noisy clips whose noise is babble
    p_band_limit: float = 0.5
    p_clip: float = 0.1

    def __call__(
        self, speech: np.ndarray, rng: np.random.Generator, babble_pool: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, float]:
        """One augmented 1 s clip and its VTLP warp (applied by the feature extractor)."""
        speech = change_speed(speech, rng.uniform(*SPEED_RANGE))
        if rng.random() < self.p_reverb:
            speech = reverberate(speech, room_impulse_response(rng, rng.uniform(*RT60_RANGE_S)))
        clip = place(speech, rng)
        if rng.random() < self.p_noise:
            kind = rng.random()
            noise = (
                babble(rng, babble_pool, CLIP_SAMPLES)
                if kind < self.p_babble and babble_pool
                else street_noise(rng, CLIP_SAMPLES)
                if kind < self.p_babble + 0.8 * (1 - self.p_babble)
                else coloured_noise(rng, CLIP_SAMPLES, rng.uniform(0.0, 2.0))
            )
            clip = add_noise(clip, noise, rng.uniform(*SNR_RANGE_DB))
        if rng.random() < self.p_band_limit:
            clip = band_limit(clip, rng.uniform(80, 300), rng.uniform(3400, 7000))
        clip = clip / (np.abs(clip).max() + 1e-9) * rng.uniform(0.05, 0.9)
        if rng.random() < self.p_clip:
            clip = np.clip(clip * rng.uniform(2.0, 6.0), -1.0, 1.0)
        return clip.astype(np.float32), float(rng.uniform(*VTLP_RANGE))


def silence_clip(rng: np.random.Generator, babble_pool: Sequence[np.ndarray]) -> np.ndarray:
    """A 1 s clip with no word in it: quiet room, street or distant babble at a random level."""
    kind = rng.random()
    if kind < 0.3:
        noise = coloured_noise(rng, CLIP_SAMPLES, rng.uniform(0.0, 2.0))
    elif kind < 0.7 or not babble_pool:
        noise = street_noise(rng, CLIP_SAMPLES)
    else:
        noise = babble(rng, babble_pool, CLIP_SAMPLES)
    level = float(rng.choice([0.0, 0.001, 0.005, 0.02, 0.05]))
    return (noise * level).astype(np.float32)
