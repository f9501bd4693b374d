"""Google Speech Commands v2 (Warden 2018) in its standard layout, as MLPerf Tiny KWS uses it.

``DIR/<word>/<speaker>_nohash_<n>.wav`` (16 kHz mono 16-bit), ``DIR/validation_list.txt`` and
``DIR/testing_list.txt`` (paths relative to DIR, one per line; every other clip is training data),
``DIR/_background_noise_/*.wav`` (long noise recordings, cut into 1 s silence clips). The ten
keywords keep their labels, every other word folder is ``_unknown_``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from edgesplit.device.audio.features import CLIP_SAMPLES, SAMPLE_RATE_HZ, mfcc
from edgesplit.device.audio.kws_data import KEYWORDS, LABELS, SILENCE, UNKNOWN
from edgesplit.device.audio.synth import read_wav, resample

from edgesplit.errors import InputError

SPLITS = ("train", "validation", "test")
BACKGROUND = "_background_noise_"
SILENCE_FRACTION = 1 / 11  # one silence clip per ~10 word clips, as MLPerf Tiny's 12-class set


def _listed(root: Path, name: str) -> set[str]:
    path = root / name
    if not path.is_file():
        raise InputError(f"{root}: no {name} (not Speech Commands' standard layout)")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def clip_files(root: Path, split: str) -> list[tuple[Path, int]]:
    """(wav path, label) of ``split``, sorted by path."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {SPLITS}")
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--speech-commands {root}: not a directory")
    val, test = _listed(root, "validation_list.txt"), _listed(root, "testing_list.txt")
    out = []
    for wav in sorted(root.glob("*/*.wav")):
        word = wav.parent.name
        if word == BACKGROUND:
            continue
        rel = f"{word}/{wav.name}"
        where = "validation" if rel in val else "test" if rel in test else "train"
        if where == split:
            label = KEYWORDS.index(word) if word in KEYWORDS else LABELS.index(UNKNOWN)
            out.append((wav, label))
    if not out:
        raise InputError(f"--speech-commands {root}: no {split} clips found in */*.wav")
    return out


def _audio(path: Path) -> np.ndarray:
    try:
        audio, rate = read_wav(path)
    except Exception as exc:  # wave.Error, EOFError, ValueError: all mean "not a usable WAV"
        raise InputError(f"{path}: not a 16-bit PCM WAV ({exc})") from exc
    return resample(audio, rate, SAMPLE_RATE_HZ)


def silence_clips(root: Path, count: int, seed: int) -> list[np.ndarray]:
    """``count`` random 1 s slices of the background-noise recordings at random gain."""
    noises = [_audio(p) for p in sorted((Path(root) / BACKGROUND).glob("*.wav"))]
    noises = [n for n in noises if n.size >= CLIP_SAMPLES]
    if not noises:
        return [np.zeros(CLIP_SAMPLES, np.float32) for _ in range(count)]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        noise = noises[int(rng.integers(len(noises)))]
        start = int(rng.integers(0, noise.size - CLIP_SAMPLES + 1))
        out.append(noise[start : start + CLIP_SAMPLES] * float(rng.uniform(0.0, 1.0)))
    return out


def load_speech_commands(root: Path, split: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MFCC features (N, 49, 10) and labels (N,) of ``split``, silence clips appended."""
    files = clip_files(root, split)
    feats = [mfcc(_audio(p)) for p, _ in files]
    labels = [y for _, y in files]
    n_sil = max(1, round(len(files) * SILENCE_FRACTION))
    for clip in silence_clips(root, n_sil, seed * len(SPLITS) + SPLITS.index(split)):
        feats.append(mfcc(clip))
        labels.append(LABELS.index(SILENCE))
    return np.stack(feats).astype(np.float32), np.array(labels, dtype=np.int64)
