"""The built-in workloads as plugins: glasses-ocr, earbuds-kws, phone-intent.

Each block below is everything edgesplit knows about one workload; nothing else lists them.
The workload modules (``kws.py``, ``ocr.py``, ``intent.py``) keep their models and metrics; this
module only wires them into the registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from edgesplit.device.workloads import Workload
from edgesplit.device.workloads.registry import (
    DemoSpec,
    EvalSet,
    Input,
    Item,
    WorkloadPlugin,
    equals,
    register,
)

INTENT_EVAL_FILE = Path(__file__).resolve().parents[2] / "tests" / "data" / "intent_eval.jsonl"


# ---- earbuds-kws -------------------------------------------------------------------------------
def _kws_workload() -> Workload:
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


def _kws_read(path: Path) -> list[Input]:
    """1 s audio windows (the task computes the device's MFCCs; the cloud hears the audio)."""
    from edgesplit.device.workloads.inputs import read_wav, utterance_windows

    audio, rate = read_wav(path)
    return [Input(w, f"{a:.2f}-{b:.2f} s") for a, b, w in utterance_windows(audio, rate)]


def _kws_eval(quick: bool) -> EvalSet:
    from edgesplit.device.audio.kws_data import HELD_OUT_FAMILY, LABELS, evaluation_set

    x, y = evaluation_set(HELD_OUT_FAMILY, "clean", limit=240 if quick else None, features="audio")
    items = [Item(x[i], LABELS[y[i]], equals(LABELS[y[i]])) for i in range(len(y))]
    return EvalSet(
        f"{HELD_OUT_FAMILY} speech (a synthesis family held out of training), clean, "
        f"{len(items)} clips of 1 s audio",
        items,
    )


def _kws_task(threads: int):  # noqa: ANN202 - Task, imported lazily
    from edgesplit.device.tasks import kws_task

    return kws_task(threads)


def _kws_stream(n: int, seed: int) -> list[Item]:
    from edgesplit.streams import earbuds_items

    return earbuds_items(n, seed, features="audio")


register(
    WorkloadPlugin(
        name="earbuds-kws",
        workload=_kws_workload,
        task=_kws_task,
        read_file=_kws_read,
        file_types="WAV (16-bit PCM or 32-bit float); longer than 1 s: one result per utterance",
        demo=DemoSpec(
            "earbuds", ("ble", "lte"), "cascade", 500.0, ("kws-embed-opus", "kws-tail"), 0.9
        ),
        stream=_kws_stream,
        eval_set=_kws_eval,
        cloud_pipelines={"kws-embed": "edgesplit.cloud.kws_model:KwsPipelineModel"},
    )
)


# ---- glasses-ocr -------------------------------------------------------------------------------
def _ocr_workload() -> Workload:
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
        # Degraded evaluation set (7 conditions, fonts disjoint from calibration): CER over all.
        evaluate=lambda pipe, quick: ocr.evaluate_conditions(pipe, 1 if quick else 10)["all"],
    )


def _ocr_read(path: Path) -> list[Input]:
    from edgesplit.device.vision.images import load_image

    return [Input(load_image(path))]


def _ocr_eval(quick: bool) -> EvalSet:
    from edgesplit.device.vision import degrade, evalset

    from edgesplit.streams import frame_item

    per_condition = 1 if quick else 10
    items = [
        frame_item(frame)
        for condition in degrade.CONDITIONS
        for frame in evalset.evaluation_frames(condition, per_condition)
    ]
    return EvalSet(
        f"degraded scene-text frames ({', '.join(degrade.CONDITIONS)}; {per_condition} each; "
        "evaluation fonts disjoint from calibration, hand-written phrases)",
        items,
    )


def _ocr_task(threads: int):  # noqa: ANN202
    from edgesplit.device.tasks import ocr_task

    return ocr_task(threads)


def _ocr_stream(n: int, seed: int) -> list[Item]:
    from edgesplit.streams import glasses_items

    return glasses_items(n, seed)


register(
    WorkloadPlugin(
        name="glasses-ocr",
        workload=_ocr_workload,
        task=_ocr_task,
        read_file=_ocr_read,
        file_types="PNG/JPEG frames",
        demo=DemoSpec("glasses", ("wifi",), "deadline-aware", 1000.0, ("glasses-ocr",)),
        stream=_ocr_stream,
        eval_set=_ocr_eval,
        cloud_pipelines={"glasses-ocr": "edgesplit.cloud.models:OcrPipelineModel"},
    )
)


# ---- phone-intent ------------------------------------------------------------------------------
def _intent_workload() -> Workload:
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
        # The out-of-scope gate in the head file is trained on the cloud corpus.
        recipe_modules=("edgesplit.device.text.intent_corpus",),
    )


def _intent_read(path: Path) -> list[Input]:
    from edgesplit.device.workloads.inputs import read_lines

    return [Input(text, f"line {n}") for n, text in read_lines(path)]


def _intent_text(text: str) -> Input:
    from edgesplit.device.text.tokenizer import TextTokenizer

    from edgesplit.errors import InputError

    try:
        return Input(TextTokenizer.clean(text), "--text")
    except ValueError as exc:
        raise InputError(f"--text: {exc}") from None


def intent_eval_items(path: Path = INTENT_EVAL_FILE) -> list[Item]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [Item(r["text"], r["label"], equals(r["label"])) for r in rows]


def _intent_eval(quick: bool) -> EvalSet:
    if INTENT_EVAL_FILE.is_file():  # a source checkout: the independent, hand-written set
        items = intent_eval_items()
        items = items[::4] if quick else items
        return EvalSet(f"tests/data/intent_eval.jsonl (independent), {len(items)} requests", items)
    from edgesplit.streams import phone_items

    items = phone_items(60 if quick else 400, 0)
    return EvalSet(f"held-out intent templates, {len(items)} requests", items)


def _intent_task(threads: int):  # noqa: ANN202
    from edgesplit.device.tasks import intent_task

    return intent_task(threads)


def _intent_stream(n: int, seed: int) -> list[Item]:
    from edgesplit.streams import phone_items

    return phone_items(n, seed)


register(
    WorkloadPlugin(
        name="phone-intent",
        workload=_intent_workload,
        task=_intent_task,
        read_file=_intent_read,
        read_text=_intent_text,
        file_types=".txt, one request per line",
        demo=DemoSpec("phone", ("5g",), "cascade", 300.0, ("phone-intent",), interval_s=2.0),
        stream=_intent_stream,
        eval_set=_intent_eval,
        cloud_pipelines={"phone-intent": "edgesplit.cloud.models:IntentPipelineModel"},
    )
)
