"""Workload registry: per workload, its FP32 source, INT8 build, pre/post-processing and metric."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("fp32", "int8")


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    metric: str  # the headline accuracy metric key returned by ``evaluate``
    higher_is_better: bool
    model_files: Callable[[str], list[Path]]
    build_int8: Callable[[], Any]
    open: Callable[[str, int], Any]  # (variant, threads) -> predictor
    latency_call: Callable[[Any], Callable[[], object]]  # predictor -> one representative call
    evaluate: Callable[[Any, bool], dict[str, float]]  # (predictor, quick) -> metrics
    split_feed: Callable[[], dict[str, np.ndarray]] | None = None  # for per-layer profiles
    # Extra latency cases timed beside the headline call, e.g. {"64 tokens": ...}.
    latency_cases: Callable[[Any], dict[str, Callable[[], object]]] | None = None

    def int8_ready(self) -> bool:
        return all(p.is_file() for v in VARIANTS for p in self.model_files(v))


def _kws() -> Workload:
    from edgesplit.device.audio.kws_data import load_dataset
    from edgesplit.device.workloads import kws

    def sample_features() -> np.ndarray:
        """One held-out-voice clip's MFCC window, shape (1, 49, 10)."""
        return load_dataset("test", seed=0, limit=240)[0][3:4]

    def latency_call(spotter: kws.KeywordSpotter) -> Callable[[], object]:
        x = sample_features()
        return lambda: spotter.logits(x)

    return Workload(
        name="earbuds-kws",
        description="Keyword spotting (12 classes) with a DS-CNN on MFCCs; Silero VAD gates it",
        metric="accuracy",
        higher_is_better=True,
        model_files=lambda v: [kws.model_path(v)],
        build_int8=kws.build_int8,
        open=lambda v, threads: kws.KeywordSpotter(kws.model_path(v), threads),
        latency_call=latency_call,
        evaluate=lambda spotter, quick: kws.evaluate(spotter, limit=240 if quick else None),
        split_feed=lambda: {"mfcc": sample_features()[:, None]},
    )


def _ocr() -> Workload:
    from edgesplit.device.vision.render import frames
    from edgesplit.device.workloads import ocr

    def latency_call(pipe: ocr.OcrPipeline) -> Callable[[], object]:
        images = [f.image for f in frames(ocr.CALIBRATION_SEED + 500, 4)]
        state = {"i": 0}

        def call() -> object:
            state["i"] += 1
            return pipe(images[state["i"] % len(images)])

        return call

    return Workload(
        name="glasses-ocr",
        description="Scene text reading with PP-OCRv4 det+cls+rec (RapidOCR pre/post-processing)",
        metric="cer",
        higher_is_better=False,
        model_files=lambda v: list(ocr.model_paths(v).values()),
        build_int8=ocr.build_int8,
        open=lambda v, threads: ocr.OcrPipeline(ocr.model_paths(v), threads),
        latency_call=latency_call,
        evaluate=lambda pipe, quick: ocr.evaluate(pipe, frames(ocr.EVAL_SEED, 8 if quick else 60)),
    )


def _intent() -> Workload:
    from edgesplit.device.text.intents import utterances
    from edgesplit.device.workloads import intent

    def call_at(clf: intent.IntentClassifier, tokens: int) -> Callable[[], object]:
        text = " ".join(utterances("test")[0][:40])  # long enough to fill 64 tokens
        batch = clf.tokenizer.encode([text], pad_to=tokens)
        batch.attention_mask[:] = 1

        def call() -> object:
            feeds = {
                "input_ids": batch.input_ids[:, :tokens],
                "attention_mask": batch.attention_mask[:, :tokens],
            }
            emb = clf.encoder.run(feeds)[0]
            return clf.head.run({"embedding": emb})

        return call

    return Workload(
        name="phone-intent",
        description="Intent of a spoken/typed request (20 intents + out-of-scope), MiniLM + head",
        metric="accuracy",
        higher_is_better=True,
        model_files=lambda v: [intent.model_paths(v)["encoder"]],
        build_int8=intent.build,
        open=lambda v, threads: intent.IntentClassifier(v, threads),
        latency_call=lambda clf: call_at(clf, 16),
        evaluate=lambda clf, quick: intent.evaluate(clf, quick),
        latency_cases=lambda clf: {"16 tokens": call_at(clf, 16), "64 tokens": call_at(clf, 64)},
    )


_FACTORIES = {"earbuds-kws": _kws, "glasses-ocr": _ocr, "phone-intent": _intent}


def names() -> list[str]:
    return sorted(_FACTORIES)


def get(name: str) -> Workload:
    if name not in _FACTORIES:
        raise KeyError(f"unknown workload {name!r}; known: {', '.join(names())}")
    return _FACTORIES[name]()
