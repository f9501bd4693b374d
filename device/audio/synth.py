"""Speech synthesised with Debian's espeak-ng: the data source for keyword spotting.

A *voice* is an espeak-ng accent plus a voice variant (speaker character). Train and test sets use
disjoint variants, so test accuracy is measured on held-out voices.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np
from edgesplit.device.audio.features import CLIP_SAMPLES, SAMPLE_RATE_HZ
from edgesplit.device.errors import ToolMissingError

ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ToolMissingError(
            "espeak-ng is not installed; run `apt-get install espeak-ng` "
            "(scripts/bootstrap.sh does this)"
        )
    return exe


@lru_cache(maxsize=1)
def voice_variants() -> tuple[str, ...]:
    """Variant names espeak-ng knows (``espeak-ng --voices=variant``), sorted."""
    out = subprocess.run(
        [espeak_binary(), "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    names = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            names.append(parts[4].split("/")[-1])
    return tuple(sorted(set(names)))


def split_variants(seed: int = 0, held_out_fraction: float = 0.2) -> dict[str, tuple[str, ...]]:
    """Deterministically split the variants into ``train`` and ``test`` (held-out) speakers."""
    variants = list(voice_variants())
    rng = np.random.default_rng(seed)
    rng.shuffle(variants)
    n_test = max(1, round(len(variants) * held_out_fraction))
    return {"test": tuple(sorted(variants[:n_test])), "train": tuple(sorted(variants[n_test:]))}


@dataclass(frozen=True)
class Utterance:
    text: str
    accent: str
    variant: str
    words_per_minute: int = 160
    pitch: int = 50  # espeak-ng 0..99


def resample(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling (scipy) of mono float audio."""
    from scipy.signal import resample_poly

    if from_hz == to_hz:
        return audio.astype(np.float32)
    g = gcd(from_hz, to_hz)
    return resample_poly(audio, to_hz // g, from_hz // g).astype(np.float32)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM WAV -> float32 in [-1, 1] and its sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    return pcm / 32768.0, rate


def write_wav(path: str | Path, audio: np.ndarray, rate: int = SAMPLE_RATE_HZ) -> None:
    pcm = np.clip(np.asarray(audio) * 32767.0, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def synthesize(utt: Utterance) -> np.ndarray:
    """Speak ``utt`` with espeak-ng; returns float32 mono audio at 16 kHz, silence trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        subprocess.run(
            [
                espeak_binary(),
                "-v",
                f"{utt.accent}+{utt.variant}",
                "-s",
                str(utt.words_per_minute),
                "-p",
                str(utt.pitch),
                "-w",
                str(wav),
                utt.text,
            ],
            check=True,
            capture_output=True,
        )
        audio, rate = read_wav(wav)
    audio = resample(audio, rate, SAMPLE_RATE_HZ)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * (np.abs(audio).max() + 1e-9))
    if loud.size:
        audio = audio[loud[0] : loud[-1] + 1]
    return audio[:CLIP_SAMPLES]


def coloured_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown noise (random), unit RMS."""
    white = rng.standard_normal(n).astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        f = np.arange(spectrum.size, dtype=np.float32)
        f[0] = 1.0
        spectrum /= f ** (0.5 * kind)
        noise = np.fft.irfft(spectrum, n=n).astype(np.float32)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-9)


def place_in_clip(speech: np.ndarray, rng: np.random.Generator, snr_db: float | None) -> np.ndarray:
    """Random time shift inside a 1 s clip, random gain, optional noise at ``snr_db``."""
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    if speech.size:
        start = int(rng.integers(0, CLIP_SAMPLES - speech.size + 1))
        clip[start : start + speech.size] = speech / (np.abs(speech).max() + 1e-9)
        clip *= rng.uniform(0.3, 0.9)
    if snr_db is not None:
        speech_rms = np.sqrt(np.mean(clip[clip != 0] ** 2)) if speech.size else 0.05
        noise_rms = speech_rms / (10 ** (snr_db / 20))
        clip += coloured_noise(rng, CLIP_SAMPLES) * noise_rms
    return np.clip(clip, -1.0, 1.0)
