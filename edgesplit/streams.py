"""Bundled input streams for the demo: every input generated from a seed, with its truth.

Glasses: rendered camera frames (scene text). Earbuds: synthesised speech by held-out voices,
cut by Silero VAD into MFCC windows. Phone: typed requests from held-out intent templates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgesplit.device.workloads.registry import Item, equals

if TYPE_CHECKING:
    from edgesplit.device.vision.render import SceneFrame

__all__ = ["Item", "audio_stream", "earbuds_items", "glasses_items", "ocr_item", "phone_items"]


def audio_stream(n_utterances: int, seed: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Utterances by held-out voices separated by 0.6-1.4 s of quiet noise; (onset, word) truth."""
    from edgesplit.device.audio.kws_data import KEYWORDS, UNKNOWN_WORDS
    from edgesplit.device.audio.synth import ACCENTS, Utterance, split_variants, synthesize

    rng = np.random.default_rng(seed)
    variants = split_variants()["test"]
    pieces, truth, pos = [], [], 0
    for _ in range(n_utterances):
        gap = rng.normal(0, 0.003, int(rng.uniform(0.6, 1.4) * 16_000)).astype(np.float32)
        pieces.append(gap)
        pos += gap.size
        word = str(rng.choice(KEYWORDS)) if rng.random() < 0.85 else str(rng.choice(UNKNOWN_WORDS))
        utt = Utterance(
            word,
            str(rng.choice(ACCENTS)),
            str(rng.choice(variants)),
            int(rng.integers(140, 200)),
            int(rng.integers(35, 65)),
        )
        speech = synthesize(utt)
        speech = 0.6 * speech / (np.abs(speech).max() + 1e-9)
        pieces.append(speech + rng.normal(0, 0.003, speech.size).astype(np.float32))
        truth.append((pos, word))
        pos += speech.size
    pieces.append(np.zeros(16_000, np.float32))
    return np.concatenate(pieces), truth


def earbuds_items(n: int, seed: int, features: str = "mfcc") -> list[Item]:
    """VAD-gated 1 s windows around each detected utterance, as MFCC features, or with
    ``features="audio"`` as the 1 s clip itself (what the earbuds send the cloud's kws-embed)."""
    from edgesplit.device.audio.features import CLIP_SAMPLES, mfcc
    from edgesplit.device.audio.kws_data import KEYWORDS, UNKNOWN
    from edgesplit.device.audio.vad import SileroVad

    audio, truth = audio_stream(n, seed)
    items = []
    for seg in SileroVad(threads=1).segments(audio):
        centre = (seg.start_sample + seg.end_sample) // 2
        start = max(0, centre - CLIP_SAMPLES // 2)
        clip = audio[start : start + CLIP_SAMPLES]
        if clip.size < CLIP_SAMPLES:
            clip = np.pad(clip, (0, CLIP_SAMPLES - clip.size))
        word = min((abs(o - seg.start_sample), w) for o, w in truth)[1]
        expected = word if word in KEYWORDS else UNKNOWN
        x = clip.astype(np.float32) if features == "audio" else mfcc(clip)
        items.append(Item(x, word, equals(expected)))
    return items


OCR_CORRECT_CER = 0.05  # an OCR answer counts as right at <= 5 % character error rate


def ocr_item(frame_seed: int) -> Item:
    """One rendered frame; right when its CER is at most ``OCR_CORRECT_CER``."""
    from edgesplit.device.vision.render import render_frame

    return frame_item(render_frame(frame_seed))


def frame_item(frame: SceneFrame) -> Item:
    """A frame with its reference text; right when its CER is at most ``OCR_CORRECT_CER``."""
    from edgesplit.device.metrics import character_error_rate

    def ok(answer: str) -> bool:
        return character_error_rate([answer], [frame.text]) <= OCR_CORRECT_CER

    return Item(frame.image, frame.text, ok)


def glasses_items(n: int, seed: int) -> list[Item]:
    return [ocr_item(seed * 1000 + i) for i in range(n)]


def phone_items(n: int, seed: int) -> list[Item]:
    from edgesplit.device.text.intents import LABELS, utterances

    texts, labels = utterances("test", per_template=1, seed=seed)
    order = np.random.default_rng(seed).permutation(len(texts))[:n]
    return [Item(texts[j], LABELS[labels[j]], equals(LABELS[labels[j]])) for j in order]
