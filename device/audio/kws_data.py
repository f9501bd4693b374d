"""Keyword-spotting data: Speech-Commands words spoken by three synthesis families, augmented.

Twelve classes as in MLPerf Tiny KWS: ten keywords, silence and unknown. A *bank* is the dry speech
of one family (role ``train`` or ``test``: disjoint espeak-ng variants, fresh prosody draws for the
festival/flite voices). Training clips are bank words passed through :class:`EarAugment`; evaluation
clips are a held-out bank under fixed conditions (clean, babble or street noise at 20/10/0 dB).
Leave-one-family-out: the deployed model trains on ``DEPLOY_TRAIN_FAMILIES`` and is reported on
``HELD_OUT_FAMILY``, whose speakers and synthesiser it never heard.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
from edgesplit.device.audio.augment import (
    EarAugment,
    add_noise,
    babble,
    place,
    silence_clip,
    street_noise,
)
from edgesplit.device.audio.features import mfcc
from edgesplit.device.audio.synth import (
    ACCENTS,
    FAMILIES,
    Say,
    family_voices,
    speak,
    split_variants,
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
DATASET_VERSION = 2
DEPLOY_TRAIN_FAMILIES = ("espeak-ng", "festival")
HELD_OUT_FAMILY = "flite"
# Per family and role: utterances per keyword, per unknown word; silence clips per view.
BANK_SIZES = {"train": (150, 12, 150), "test": (40, 4, 40)}
CONDITIONS = ("clean", "babble20", "babble10", "babble0", "street20", "street10", "street0")
_PUNCT = ("", ".", "!", "?")  # statement, exclamation and question intonation


def plan_bank(family: str, role: str) -> list[tuple[int, Say]]:
    """(label, request) for the dry speech of ``family`` in ``role`` ('train' or 'test')."""
    if role not in BANK_SIZES:
        raise ValueError(f"role={role!r}: expected 'train' or 'test'")
    per_kw, per_unknown, _ = BANK_SIZES[role]
    if family == "espeak-ng":
        voices = tuple(f"{a}+{v}" for a in ACCENTS for v in split_variants()[role])
    else:
        voices = family_voices(family)
    rng = np.random.default_rng([FAMILIES.index(family), 0 if role == "train" else 1, 2])
    plan: list[tuple[int, Say]] = []
    words = [(k, w, per_kw) for k, w in enumerate(KEYWORDS)]
    words += [(LABELS.index(UNKNOWN), w, per_unknown) for w in UNKNOWN_WORDS]
    for label, word, count in words:
        for i in range(count):
            text = word + _PUNCT[int(rng.integers(len(_PUNCT)))]
            voice = voices[(i + int(rng.integers(len(voices)))) % len(voices)]
            tempo, pitch = float(rng.uniform(0.8, 1.25)), float(rng.uniform(0.8, 1.25))
            plan.append((label, Say(family, voice, text, round(tempo, 3), round(pitch, 3))))
    return plan


@dataclass
class Bank:
    """Dry utterances of one family/role: audio, label and request of each."""

    audio: list[np.ndarray]
    labels: np.ndarray
    says: list[Say]

    def unknown_words(self) -> list[np.ndarray]:
        """The non-keyword speech, used to make babble."""
        unk = LABELS.index(UNKNOWN)
        return [a for a, y in zip(self.audio, self.labels, strict=True) if y == unk]


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def load_bank(family: str, role: str, workers: int = 2) -> Bank:
    """Synthesise (once, cached under the cache dir) the bank of ``family``/``role``."""
    plan = plan_bank(family, role)
    says = [s for _, s in plan]
    key = _digest([DATASET_VERSION, [asdict(s) for s in says]])
    path = cache_dir() / "data" / f"kws-bank-{family}-{role}-{key}.npz"
    if path.exists():
        with np.load(path) as data:
            audio = np.split(data["audio"], data["offsets"][1:-1])
            return Bank(audio, data["labels"], says)
    chunks = [says[i : i + 100] for i in range(0, len(says), 100)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        audio = [a for part in pool.map(speak, chunks) for a in part]
    offsets = np.cumsum([0] + [a.size for a in audio])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp, audio=np.concatenate(audio), offsets=offsets, labels=np.array([y for y, _ in plan])
    )
    tmp.replace(path)
    return Bank(audio, np.array([y for y, _ in plan]), says)


# Rendering runs in forked workers that inherit these (set before the pool starts).
_SPEECH: list[np.ndarray] = []
_BABBLE: list[np.ndarray] = []
_AUGMENT = EarAugment()
# "mfcc" (the device's features), "embedding" (the cloud's speech embedding, audio/embedding.py)
# or "audio" (the 1 s clip itself, what the earbuds send the cloud).
_FEATURES = "mfcc"
_EMBEDDER: list = []  # one SpeechEmbedder per worker process, made after the fork
FEATURES = ("mfcc", "embedding", "audio")


@dataclass(frozen=True)
class ClipSpec:
    label: int
    speech: int  # index into _SPEECH, -1 for silence
    seed: int
    condition: str = "augment"  # "augment" (training) or one of CONDITIONS


def _featurise(clip: np.ndarray, warp: float = 1.0) -> np.ndarray:
    if _FEATURES == "mfcc":
        return mfcc(clip, warp)
    if _FEATURES == "audio":
        return clip.astype(np.float32)
    # The embedding takes audio: VTLP (a filterbank warp) has no audio-domain twin here; speed
    # perturbation already shifts pitch and formants.
    if not _EMBEDDER:
        from edgesplit.device.audio.embedding import SpeechEmbedder

        _EMBEDDER.append(SpeechEmbedder(threads=1))
    return _EMBEDDER[0](clip)[0]


def _render(spec: ClipSpec) -> np.ndarray:
    rng = np.random.default_rng(spec.seed)
    if spec.condition == "augment":
        if spec.speech < 0:
            return _featurise(silence_clip(rng, _BABBLE))
        clip, warp = _AUGMENT(_SPEECH[spec.speech], rng, _BABBLE)
        return _featurise(clip, warp)
    return _featurise(render_condition(spec, rng))


def render_condition(spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """An evaluation clip: the dry word placed at random, then the condition's noise, no other
    change (the test measures the synthesiser family, not our augmentation)."""
    n = 16_000
    if spec.speech < 0:
        clip: np.ndarray = np.zeros(n, np.float32)
    else:
        clip = place(_SPEECH[spec.speech], rng) * float(rng.uniform(0.3, 0.9))
    if spec.condition == "clean":
        return clip + rng.normal(0, 1e-3, n).astype(np.float32) if spec.speech < 0 else clip
    kind = spec.condition.rstrip("0123456789")
    snr = float(spec.condition[len(kind) :])
    noise = babble(rng, _BABBLE, n) if kind == "babble" else street_noise(rng, n)
    if spec.speech < 0:
        return (noise * 0.3 * 10 ** (-snr / 20)).astype(np.float32)
    return np.clip(add_noise(clip, noise, snr), -1.0, 1.0).astype(np.float32)


def _features(
    specs: Sequence[ClipSpec],
    speech: list[np.ndarray],
    babble_pool: list[np.ndarray],
    workers: int,
    progress: Callable[[int, int], None] | None,
    augment: EarAugment | None = None,
    features: str = "mfcc",
) -> np.ndarray:
    global _SPEECH, _BABBLE, _AUGMENT, _FEATURES
    if features not in FEATURES:
        raise ValueError(f"features={features!r}: expected one of {FEATURES}")
    _SPEECH, _BABBLE, _AUGMENT = speech, babble_pool, augment or EarAugment()
    _FEATURES = features
    feats = []
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx) as pool:
        for i, f in enumerate(pool.map(_render, specs, chunksize=64)):
            feats.append(f)
            if progress:
                progress(i + 1, len(specs))
    return np.stack(feats).astype(np.float32)


def _cached(name: str, key: object, make: Callable[[], tuple[np.ndarray, np.ndarray]]):
    path = cache_dir() / "data" / f"kws-{name}-{_digest([DATASET_VERSION, key])}.npz"
    if path.exists():
        with np.load(path) as data:
            return data["x"], data["y"]
    x, y = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, x=x, y=y)
    tmp.replace(path)
    return x, y


def _subset(specs: list[ClipSpec], limit: int | None) -> list[ClipSpec]:
    if limit is None or limit >= len(specs):
        return specs
    return [specs[i] for i in np.linspace(0, len(specs) - 1, limit).astype(int)]


def training_set(
    families: Sequence[str] = DEPLOY_TRAIN_FAMILIES,
    seed: int = 0,
    views: int = 3,
    limit: int | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    augment: EarAugment | None = None,
    features: str = "mfcc",
) -> tuple[np.ndarray, np.ndarray]:
    """MFCC (N, 49, 10) (or speech embeddings (N, 9, 96) with ``features="embedding"``) and labels
    of ``views`` augmented renderings of each training word of ``families`` plus noise-only
    silence clips; cached on disk."""
    families = tuple(families)
    augment = augment or EarAugment()
    recipe = asdict(augment)
    if augment.p_babble == EarAugment.p_babble:  # the key the v2 default recipe was cached under
        del recipe["p_babble"]

    def make() -> tuple[np.ndarray, np.ndarray]:
        banks = [load_bank(f, "train", workers) for f in families]
        speech = [a for b in banks for a in b.audio]
        labels = np.concatenate([b.labels for b in banks])
        pool = [a for b in banks for a in b.unknown_words()]
        rng = np.random.default_rng([seed, 7])
        specs = [
            ClipSpec(int(y), i, int(rng.integers(2**31)))
            for _ in range(views)
            for i, y in enumerate(labels)
        ]
        n_sil = BANK_SIZES["train"][2] * len(families) * views
        specs += [
            ClipSpec(LABELS.index(SILENCE), -1, int(rng.integers(2**31))) for _ in range(n_sil)
        ]
        specs = _subset(specs, limit)
        x = _features(specs, speech, pool, workers, progress, augment, features)
        return x, np.array([s.label for s in specs], dtype=np.int64)

    key: list = [families, seed, views, limit, recipe]
    return _cached("train", key + ([features] if features != "mfcc" else []), make)


def evaluation_set(
    family: str,
    condition: str = "clean",
    role: str = "test",
    seed: int = 0,
    limit: int | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    features: str = "mfcc",
) -> tuple[np.ndarray, np.ndarray]:
    """MFCC (or ``features``) and labels of the ``family``'s ``role`` bank under ``condition``;
    babble is made of the same family's non-keyword speech (other talkers of the same kind),
    silence of noise only."""
    if condition not in CONDITIONS:
        raise ValueError(f"condition={condition!r}: expected one of {CONDITIONS}")

    def make() -> tuple[np.ndarray, np.ndarray]:
        bank = load_bank(family, role, workers)
        rng = np.random.default_rng([seed, CONDITIONS.index(condition), 11])
        specs = [
            ClipSpec(int(y), i, int(rng.integers(2**31)), condition)
            for i, y in enumerate(bank.labels)
        ]
        specs += [
            ClipSpec(LABELS.index(SILENCE), -1, int(rng.integers(2**31)), condition)
            for _ in range(BANK_SIZES[role][2])
        ]
        specs = _subset(specs, limit)
        x = _features(specs, bank.audio, bank.unknown_words(), workers, progress, None, features)
        return x, np.array([s.label for s in specs], dtype=np.int64)

    key: list = [family, condition, role, seed, limit]
    return _cached("eval", key + ([features] if features != "mfcc" else []), make)


def load_dataset(
    split: str,
    seed: int = 0,
    repeats: int | None = None,
    limit: int | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The deployed model's data: ``train`` = augmented clips of the training families (INT8
    calibration uses these), ``test`` = the held-out family, clean (the headline set)."""
    if split == "train":
        return training_set(DEPLOY_TRAIN_FAMILIES, seed, repeats or 1, limit, workers, progress)
    if split == "test":
        return evaluation_set(HELD_OUT_FAMILY, "clean", "test", seed, limit, workers, progress)
    raise ValueError(f"split={split!r}: expected 'train' or 'test'")
