"""Keyword-spotting data set: Speech-Commands-style words spoken by espeak-ng voices.

Twelve classes as in MLPerf Tiny KWS: ten keywords, silence and unknown. ``split="test"`` uses
held-out voice variants only (see :func:`device.audio.synth.split_variants`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from edgesplit.device.audio.features import mfcc
from edgesplit.device.audio.synth import (
    ACCENTS,
    Utterance,
    place_in_clip,
    split_variants,
    synthesize,
)
from edgesplit.device.paths import cache_dir

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
LABELS = (*KEYWORDS, SILENCE, UNKNOWN)
UNKNOWN_WORDS = (
    "bed",
    "bird",
    "cat",
    "dog",
    "happy",
    "house",
    "marvin",
    "sheila",
    "tree",
    "wow",
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "backward",
    "forward",
    "follow",
    "learn",
    "visual",
)
DATASET_VERSION = 1


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip reproducibly."""

    label: int
    utterance: Utterance | None  # None for silence
    seed: int


def plan_clips(split: str, seed: int = 0, repeats: int | None = None) -> list[ClipSpec]:
    """The list of clips for ``split`` ('train' or 'test'), fully determined by ``seed``."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: expected 'train' or 'test'")
    variants = split_variants(seed=0)[split]  # the speaker split never moves with the data seed
    repeats = repeats if repeats is not None else (2 if split == "train" else 1)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    specs: list[ClipSpec] = []

    def utt(text: str, accent: str, variant: str) -> Utterance:
        return Utterance(
            text, accent, variant, int(rng.integers(120, 221)), int(rng.integers(25, 76))
        )

    for accent in ACCENTS:
        for variant in variants:
            for _ in range(repeats):
                for k, word in enumerate(KEYWORDS):
                    specs.append(ClipSpec(k, utt(word, accent, variant), int(rng.integers(2**31))))
                word = UNKNOWN_WORDS[int(rng.integers(len(UNKNOWN_WORDS)))]
                specs.append(
                    ClipSpec(
                        LABELS.index(UNKNOWN), utt(word, accent, variant), int(rng.integers(2**31))
                    )
                )
            specs.append(ClipSpec(LABELS.index(SILENCE), None, int(rng.integers(2**31))))
    return specs


def render_clip(spec: ClipSpec) -> np.ndarray:
    """1 s of float audio for ``spec``: speech at a random offset and gain, plus noise."""
    rng = np.random.default_rng(spec.seed)
    if spec.utterance is None:
        level = rng.choice([0.0, 0.002, 0.01, 0.03])
        return place_in_clip(np.zeros(0, np.float32), rng, None) + (
            level * rng.standard_normal(16_000).astype(np.float32)
        )
    snr = None if rng.random() < 0.2 else float(rng.uniform(5.0, 30.0))
    return place_in_clip(synthesize(spec.utterance), rng, snr)


def _features(spec: ClipSpec) -> np.ndarray:
    return mfcc(render_clip(spec))


def _key(split: str, seed: int, repeats: int | None, limit: int | None) -> str:
    blob = json.dumps([DATASET_VERSION, split, seed, repeats, limit]).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def load_dataset(
    split: str,
    seed: int = 0,
    repeats: int | None = None,
    limit: int | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MFCC features (N, 49, 10) float32 and labels (N,) int64, cached on disk.

    ``limit`` keeps an evenly spaced subset of the planned clips (for quick tests).
    """
    path = cache_dir() / "data" / f"kws-{split}-{_key(split, seed, repeats, limit)}.npz"
    if path.exists():
        with np.load(path) as data:
            return data["x"], data["y"]
    specs = plan_clips(split, seed, repeats)
    if limit is not None and limit < len(specs):
        specs = [specs[i] for i in np.linspace(0, len(specs) - 1, limit).astype(int)]
    feats = []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, f in enumerate(pool.map(_features, specs, chunksize=32)):
            feats.append(f)
            if progress:
                progress(i + 1, len(specs))
    x = np.stack(feats).astype(np.float32)
    y = np.array([s.label for s in specs], dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, x=x, y=y)
    tmp.replace(path)
    return x, y
