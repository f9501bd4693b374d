"""Router tasks for the bundled workloads: the local model, its cloud model, and a split path.

Inputs: earbuds-kws takes a 1 s clip of 16 kHz audio (or a (49, 10) MFCC window from an MCU that
computes them), glasses-ocr an RGB frame, phone-intent a text.
The confidence a task returns is the device's confidence that *its* answer will do: the phone's
intents that the phone cannot serve (out of scope, visual questions) report 0 so a cascade
escalates them.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache

import numpy as np
import onnx
from edgesplit.device.router import Prediction, Task
from edgesplit.device.runtime import ModelRunner, SessionConfig

KWS_CUT_TENSOR = "/net/net.15/Relu_output_0"  # the cut cloud/model_repository/kws-tail serves


def _label_from_logits(logits: np.ndarray, labels: tuple[str, ...]) -> Prediction:
    from edgesplit.device.workloads.kws import softmax

    p = softmax(logits.reshape(-1).astype(np.float64))
    k = int(p.argmax())
    return labels[k], float(p[k])


def _text_output(out: dict[str, np.ndarray], name: str) -> Prediction:
    """A pipeline's first (BYTES ``name``, FP32 ``confidence``) answer."""
    value = out[name].reshape(-1)[0]
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text, float(out["confidence"].reshape(-1)[0])


@cache
def kws_head(threads: int = 1) -> tuple[ModelRunner, int]:
    """The device's FP32 DS-CNN up to the cut kws-tail expects, and the cut's split index."""
    from edgesplit.device.profile import cut_candidates
    from edgesplit.device.workloads import kws

    source = kws.model_path("fp32")
    model = onnx.shape_inference.infer_shapes(onnx.load(str(source)))
    index = next(i for i, tensor, _ in cut_candidates(model) if tensor == KWS_CUT_TENSOR)
    head = onnx.utils.Extractor(model).extract_model(["mfcc"], [KWS_CUT_TENSOR])
    from edgesplit.device.paths import built_models_dir

    # Next to the built models (not a temp dir that nobody removes); atomic for parallel runs.
    # Keyed by the source's content: a retrained model of the same size gets its own head.
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    path = built_models_dir() / f"kws-head-{digest}-{index}.onnx"
    if not path.is_file():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        onnx.save(head, str(tmp))
        tmp.replace(path)
    return ModelRunner(path, SessionConfig(intra_op_threads=threads)), index


KWS_CLOUD_MODEL = "kws-embed"  # hears the audio: cloud/model_repository/kws-embed
KWS_CLOUD_MODEL_OPUS = "kws-embed-opus"  # the same, for audio sent as Opus


def kws_task(threads: int = 1) -> Task:
    """The device's INT8 DS-CNN on the clip's MFCCs; on escalation the earbuds send the clip
    itself to ``kws-embed``, which hears audio with a front end trained on real speech. The clip
    crosses BLE as Opus (~2.3 KB; ``device/audio/opus.py``) to ``kws-embed-opus`` where libopus
    is installed, else as FP32 (64 000 bytes). An MFCC window (an MCU's, no audio at hand) is
    sent as its 490 MFCC values to ``kws-embed``, which then uses its MFCC expert."""
    from edgesplit.device.audio import opus
    from edgesplit.device.audio.features import mfcc
    from edgesplit.device.workloads import kws

    spotter = kws.KeywordSpotter(kws.model_path("int8"), threads)
    labels = kws.labels()
    head, index = kws_head(threads)
    use_opus = opus.available()

    def features(x: np.ndarray) -> np.ndarray:
        a = np.asarray(x, np.float32)
        return mfcc(a) if a.ndim == 1 else a

    def local(x: np.ndarray) -> Prediction:
        r = spotter.classify_mfcc(features(x))
        return r.label, r.confidence

    def feed(x: np.ndarray) -> dict[str, np.ndarray]:
        f = features(x)
        return {"mfcc": f.reshape(1, 1, *f.shape[-2:])}

    def sends_opus(x: np.ndarray) -> bool:
        return use_opus and np.ndim(x) == 1

    def cloud_model_for(x: np.ndarray) -> str:
        return KWS_CLOUD_MODEL_OPUS if sends_opus(x) else KWS_CLOUD_MODEL

    def cloud_feed(x: np.ndarray) -> dict[str, np.ndarray]:
        a = np.asarray(x, np.float32)
        if sends_opus(a):
            return {"opus": np.frombuffer(opus.encode(a), np.uint8).reshape(1, -1)}
        return {"clip": a.reshape(1, -1)}

    return Task(
        name="earbuds-kws",
        local=local,
        cloud_model=KWS_CLOUD_MODEL_OPUS if use_opus else KWS_CLOUD_MODEL,
        cloud_inputs=cloud_feed,
        parse_cloud=lambda out: _label_from_logits(out["logits"], labels),
        split_model="kws-tail",
        split_index=index,
        split_head=lambda x: {KWS_CUT_TENSOR: head.run_single(feed(x)["mfcc"])},
        parse_split=lambda out: _label_from_logits(out["logits"], labels),
        cloud_model_for=cloud_model_for,
    )


def ocr_task(threads: int = 1) -> Task:
    from edgesplit.device.workloads import ocr

    pipe = ocr.OcrPipeline(ocr.model_paths("int8"), threads)

    def local(image: np.ndarray) -> Prediction:
        r = pipe(image)
        return r.text, r.confidence

    return Task(
        "glasses-ocr",
        local,
        "glasses-ocr",
        lambda image: {"image": np.ascontiguousarray(image, np.uint8)},
        lambda out: _text_output(out, "text"),
    )


def intent_task(threads: int = 1) -> Task:
    """The phone's INT8 classifier; out-of-scope, gated and unsure requests go to the cloud.

    The cascade's answer is the cloud's, except that an out-of-scope decision made by either side
    with enough evidence is kept: the cloud's own out-of-scope answer; the phone's out-of-scope
    gate at or above ``GATE_KEEP_THRESHOLD``; or the phone's head saying out of scope with
    confidence >= 0.5 when the cloud is less confident of its intent. Refusing an out-of-scope
    request costs one "I can't do that"; serving it as a wrong intent acts on the user's behalf.
    """
    from edgesplit.device.text.intents import OUT_OF_SCOPE
    from edgesplit.device.workloads import intent

    clf = intent.IntentClassifier("int8", threads)
    last: dict[str, intent.IntentResult] = {}  # the device's raw answer to the request routed

    def local(text: str) -> Prediction:
        r = clf.classify(text)
        last["raw"] = r
        return r.intent, (r.confidence if r.route == "device" else 0.0)

    def combine(device: Prediction, cloud: Prediction) -> Prediction:
        raw = last.get("raw")
        if cloud[0] == OUT_OF_SCOPE or raw is None:
            return cloud
        if raw.out_of_scope_score >= intent.GATE_KEEP_THRESHOLD:
            return OUT_OF_SCOPE, raw.out_of_scope_score
        confident = raw.confidence >= intent.CONFIDENCE_THRESHOLD
        if raw.intent == OUT_OF_SCOPE and confident and cloud[1] < raw.confidence:
            return OUT_OF_SCOPE, raw.confidence
        return cloud

    return Task(
        "phone-intent",
        local,
        "phone-intent",
        lambda text: {"text": np.array([text.encode()], dtype=object)},
        lambda out: _text_output(out, "intent"),
        combine=combine,
    )
