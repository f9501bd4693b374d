"""MFCC features in the MLPerf Tiny KWS layout: 1 s at 16 kHz -> 49 frames x 10 coefficients.

Window 30 ms (480 samples), hop 20 ms (320 samples), 40 mel bands over 20-4000 Hz, log, DCT-II.
Pure NumPy so the device, the training script and the MCU-feature path share one definition.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE_HZ = 16_000
CLIP_SAMPLES = 16_000  # 1 s
WINDOW_SAMPLES = 480  # 30 ms
HOP_SAMPLES = 320  # 20 ms
FFT_SIZE = 512
MEL_BANDS = 40
MFCC_COEFFS = 10
MEL_LOW_HZ, MEL_HIGH_HZ = 20.0, 4000.0
FRAMES = 1 + (CLIP_SAMPLES - WINDOW_SAMPLES) // HOP_SAMPLES  # 49


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * np.expm1(mel / 1127.0)


@lru_cache(maxsize=64)
def mel_filterbank(warp: float = 1.0) -> np.ndarray:
    """Triangular filters, shape (FFT_SIZE//2+1, MEL_BANDS).

    ``warp`` != 1 is vocal-tract-length perturbation (Jaitly & Hinton 2013): the filters' edge
    frequencies are scaled by ``warp``, as if the speaker's vocal tract were 1/warp as long.
    """
    bins = np.linspace(0, SAMPLE_RATE_HZ / 2, FFT_SIZE // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(MEL_LOW_HZ), _hz_to_mel(MEL_HIGH_HZ), MEL_BANDS + 2))
    edges = np.minimum(edges * warp, SAMPLE_RATE_HZ / 2 - 1.0)
    fb = np.zeros((bins.size, MEL_BANDS), dtype=np.float32)
    for m in range(MEL_BANDS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (bins - lo) / (mid - lo)
        down = (hi - bins) / (hi - mid)
        fb[:, m] = np.clip(np.minimum(up, down), 0.0, None)
    return fb


@lru_cache(maxsize=1)
def dct_matrix() -> np.ndarray:
    """Orthonormal DCT-II, shape (MEL_BANDS, MFCC_COEFFS)."""
    n = np.arange(MEL_BANDS)
    k = np.arange(MFCC_COEFFS)
    mat = np.cos(np.pi / MEL_BANDS * (n[:, None] + 0.5) * k[None, :]) * np.sqrt(2.0 / MEL_BANDS)
    mat[:, 0] *= 1.0 / np.sqrt(2.0)
    return mat.astype(np.float32)


def fit_clip(audio: np.ndarray) -> np.ndarray:
    """Pad or centre-crop mono float audio to exactly one clip."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size >= CLIP_SAMPLES:
        start = (audio.size - CLIP_SAMPLES) // 2
        return audio[start : start + CLIP_SAMPLES]
    out = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    out[: audio.size] = audio
    return out


def log_mel(audio: np.ndarray, warp: float = 1.0) -> np.ndarray:
    """Log-mel energies, shape (FRAMES, MEL_BANDS), for a 1 s clip of float audio in [-1, 1].

    ``warp`` (training only) is VTLP, rounded to 0.01 so the warped filterbanks stay cached.
    """
    clip = fit_clip(audio)
    idx = np.arange(WINDOW_SAMPLES)[None, :] + HOP_SAMPLES * np.arange(FRAMES)[:, None]
    frames = clip[idx] * np.hanning(WINDOW_SAMPLES).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, n=FFT_SIZE, axis=1)) ** 2
    fb = mel_filterbank(round(float(warp), 2))
    return np.log(power @ fb + 1e-6).astype(np.float32)


def mfcc(audio: np.ndarray, warp: float = 1.0) -> np.ndarray:
    """MFCC features, shape (FRAMES, MFCC_COEFFS) = (49, 10); ``warp`` as in :func:`log_mel`."""
    return mfcc_from_log_mel(log_mel(audio, warp))


def mfcc_from_log_mel(log_mel_frames: np.ndarray) -> np.ndarray:
    """DCT of log-mel frames: the MCU can send log-mel frames and the host finishes the MFCC."""
    lm = np.asarray(log_mel_frames, dtype=np.float32)
    if lm.ndim != 2 or lm.shape[1] != MEL_BANDS:
        raise ValueError(f"log-mel frames must have shape (frames, {MEL_BANDS}), got {lm.shape}")
    return (lm @ dct_matrix()).astype(np.float32)
