"""The cloud's phone-intent classifier: FP32 MiniLM + a trained head with calibrated out-of-scope.

Why not nearest templates: a k-NN vote over template embeddings copies template wording, and on
requests written independently of the templates it lost to the phone (75 % vs 85 %) and let 60 %
of out-of-scope requests through. This model is a one-hidden-layer MLP on the FP32 encoder's
embeddings of a larger corpus (``device/text/intent_corpus.py`` v4: natural sentence shapes,
an out-of-scope library of 32 categories with near misses for every intent, typos, speech-to-text
word mistakes, fillers and rambling context), then calibrated on held-out templates:

1. temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"): one scalar
   fitted by grid search to minimise the validation negative log-likelihood;
2. an out-of-scope rule: a request is out of scope when the model says so, or when its best
   in-scope probability is below ``oos_threshold``, chosen on the validation split as the most
   accurate threshold that still catches ``OOS_RECALL_TARGET`` (90 %) of its out-of-scope
   requests (v3 maximised balanced accuracy instead; on v4 validation: 82.4 % accuracy at 89.6 %
   recall vs 82.0 % at 90.4 %, the recall goal first).

Measured on the corpus v4 validation split with ``validation_report()``; what lost (an ensemble
of seeds, wider or longer-trained MLPs, the phone's head in the average, per-clause scoring of
long requests) is listed in the README's phone-intent section. No independent evaluation set is
used here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from edgesplit.device.paths import built_models_dir
from edgesplit.device.runtime import ModelRunner, SessionConfig
from edgesplit.device.text.intent_corpus import corpus
from edgesplit.device.text.intents import LABELS, OUT_OF_SCOPE
from edgesplit.device.text.tokenizer import TextTokenizer
from edgesplit.device.workloads.intent import embed, model_paths

CLOUD_MAX_TOKENS = 256  # the model was trained with sequences up to 256 (device: 128)
CORPUS_VERSION = 4  # bump when intent_corpus.py or the recipe changes, to retrain the cached head
VAL_PER_TEMPLATE = 6  # fillings per validation template
TRAIN_PER_TEMPLATE = 16  # fillings per training template (half of them noisy): ~5 200 requests
# The cloud answers out of scope unless this share of the validation split's out-of-scope requests
# is caught; within that, the threshold with the best validation accuracy (issue 11 asks for 90 %
# out-of-scope recall at the cascade's output).
OOS_RECALL_TARGET = 0.9
DEVICE_WEIGHT = 0.0  # the phone head's share in the cloud's average (see CloudHead)
MLP_HIDDEN = 256
MLP_STEPS = 400  # full-batch Adam steps (Kingma & Ba 2015), lr 3e-3: the loss has flattened
MLP_DROPOUT = 0.1
MLP_WEIGHT_DECAY = 1e-4


def _softmax(z: np.ndarray) -> np.ndarray:
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def corpus_embeddings(encoder: ModelRunner, split: str) -> tuple[np.ndarray, np.ndarray]:
    """FP32 embeddings of ``intent_corpus.corpus(split)``, cached next to the built models.

    Shared by the phone's out-of-scope gate (``intent.build``) and this head: embedding the
    ~2 900 training requests takes minutes on two busy cores.
    """
    st = encoder.path.stat()
    path = built_models_dir() / f"intent-corpus-v{CORPUS_VERSION}-{split}-{st.st_size}.npz"
    if path.is_file():
        with np.load(path) as z:
            return z["x"], z["y"]
    per_template = TRAIN_PER_TEMPLATE if split == "train" else VAL_PER_TEMPLATE
    texts, y = corpus(split, per_template=per_template)
    x = embed(encoder, TextTokenizer(max_tokens=CLOUD_MAX_TOKENS), texts)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=y)
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return x, y


def train_mlp(x: np.ndarray, y: np.ndarray, classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """ReLU MLP, class-balanced cross-entropy, dropout, full-batch Adam; seeded."""
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    p: dict[str, np.ndarray] = {
        "w1": rng.normal(0, np.sqrt(2 / d), (d, MLP_HIDDEN)).astype(np.float32),
        "b1": np.zeros(MLP_HIDDEN, np.float32),
        "w2": rng.normal(0, np.sqrt(1 / MLP_HIDDEN), (MLP_HIDDEN, classes)).astype(np.float32),
        "b2": np.zeros(classes, np.float32),
    }
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    onehot = np.eye(classes, dtype=np.float32)[y]
    counts = np.bincount(y, minlength=classes).astype(np.float32)
    sw = (len(y) / (classes * counts))[y]
    sw = (sw / sw.mean() / len(x))[:, None].astype(np.float32)
    lr, b1, b2 = 3e-3, 0.9, 0.999
    for t in range(1, MLP_STEPS + 1):
        h = x @ p["w1"] + p["b1"]
        keep = (rng.random(h.shape) > MLP_DROPOUT) / (1 - MLP_DROPOUT)
        a = np.maximum(h, 0) * keep
        g = (_softmax(a @ p["w2"] + p["b2"]) - onehot) * sw
        ga = (g @ p["w2"].T) * keep * (h > 0)
        grads = {"w2": a.T @ g, "b2": g.sum(0), "w1": x.T @ ga, "b1": ga.sum(0)}
        for k in p:
            gk = grads[k] + MLP_WEIGHT_DECAY * p[k]
            m[k] = b1 * m[k] + (1 - b1) * gk
            v[k] = b2 * v[k] + (1 - b2) * gk**2
            p[k] -= lr * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + 1e-8)
    return p


def mlp_logits(p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ p["w1"] + p["b1"], 0) @ p["w2"] + p["b2"]


@dataclass(frozen=True)
class CloudHead:
    """Calibrated MLP, optionally averaged with the phone's head run on FP32 embeddings.

    ``device_weight`` is the phone head's share of the average. Corpus v3: 0.5 (81.5 % vs the
    MLP's 79.0 % on validation). Corpus v4 (a corpus twice as broad): 0, the MLP alone; the phone's
    head, trained on its 6 templates per intent, pulls out-of-scope requests onto intents
    (validation v4: 82.0 % accuracy at 90.4 % out-of-scope recall alone; 76.0 % at 90.4 % averaged).
    """

    mlp: dict[str, np.ndarray]  # w1 (384, hidden), b1, w2 (hidden, classes), b2
    temperature: float
    oos_threshold: float
    device_w: np.ndarray  # the phone's head (intent_head), FP32 features
    device_b: np.ndarray
    device_weight: float = DEVICE_WEIGHT

    def probabilities(self, emb: np.ndarray) -> np.ndarray:
        p = _softmax(mlp_logits(self.mlp, emb) / self.temperature)
        if self.device_weight == 0:
            return p
        q = _softmax(emb @ self.device_w + self.device_b)
        return (1 - self.device_weight) * p + self.device_weight * q

    def decide(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(label index, confidence): out of scope when unsure; its confidence is 1 - best."""
        return decide(self.probabilities(emb), self.oos_threshold)


def decide(p: np.ndarray, oos_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    oos = LABELS.index(OUT_OF_SCOPE)
    in_scope = p.copy()
    in_scope[:, oos] = -1.0
    best = in_scope.argmax(1)
    best_p = in_scope[np.arange(len(p)), best]
    is_oos = (p.argmax(1) == oos) | (best_p < oos_threshold)
    labels = np.where(is_oos, oos, best)
    conf = np.where(is_oos, 1.0 - best_p, best_p)
    return labels, conf.astype(np.float32)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 200))

    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    return float(min(grid, key=nll))


def balanced_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean of in-scope accuracy and out-of-scope recall."""
    oos = LABELS.index(OUT_OF_SCOPE)
    ins = y != oos
    return float(((pred[ins] == y[ins]).mean() + (pred[~ins] == oos).mean()) / 2)


def choose_oos_threshold(
    p: np.ndarray, y: np.ndarray, min_oos_recall: float | None = None
) -> float:
    """The out-of-scope threshold (0 to 0.95, step 0.01) chosen on validation.

    Without ``min_oos_recall``: the best balanced accuracy. With it: the best accuracy among the
    thresholds whose out-of-scope recall reaches ``min_oos_recall`` (the lowest threshold reaching
    the highest recall when none does), so the recall goal is met first and accuracy is not
    bought with it.
    """
    grid = np.linspace(0.0, 0.95, 96)
    preds = [decide(p, float(t))[0] for t in grid]
    if min_oos_recall is None:
        return float(grid[int(np.argmax([balanced_accuracy(q, y) for q in preds]))])
    oos = LABELS.index(OUT_OF_SCOPE)
    recall = np.array([(q[y == oos] == oos).mean() for q in preds])
    accuracy = np.array([(q == y).mean() for q in preds])
    ok = recall >= min_oos_recall
    if not ok.any():
        return float(grid[int(np.argmax(recall))])
    return float(grid[int(np.argmax(np.where(ok, accuracy, -1.0)))])


def device_head() -> tuple[np.ndarray, np.ndarray]:
    """The phone's trained 20-intent head weights (W, b) from its ONNX file."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_paths("fp32")["head"]))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return init["W"].astype(np.float32), init["b"].astype(np.float32)


def _cache_path(encoder: Path) -> Path:
    st = encoder.stat()
    return built_models_dir() / f"intent-cloud-head-v{CORPUS_VERSION}-{st.st_size}.npz"


def train(
    encoder: ModelRunner, log: Callable[[str], None] = lambda _m: None
) -> tuple[CloudHead, dict]:
    log("embedding the training and validation corpus (FP32)...")
    x, y = corpus_embeddings(encoder, "train")
    vx, vy = corpus_embeddings(encoder, "val")
    mlp = train_mlp(x, y, len(LABELS))
    t = fit_temperature(mlp_logits(mlp, vx), vy)
    dw, db = device_head()
    head = CloudHead(mlp, t, 0.0, dw, db)
    thr = choose_oos_threshold(head.probabilities(vx), vy, OOS_RECALL_TARGET)
    head = CloudHead(mlp, t, thr, dw, db)
    pred, _ = head.decide(vx)
    oos = LABELS.index(OUT_OF_SCOPE)
    ins = vy != oos
    report = {
        "train_requests": len(y),
        "val_requests": len(vy),
        "temperature": t,
        "oos_threshold": thr,
        "oos_rule": f"best accuracy with out-of-scope recall >= {OOS_RECALL_TARGET}",
        "device_weight": head.device_weight,
        "val_accuracy": float((pred == vy).mean()),
        "val_in_scope_accuracy": float((pred[ins] == vy[ins]).mean()),
        "val_oos_recall": float((pred[~ins] == oos).mean()),
    }
    return head, report


def load_or_train(encoder: ModelRunner, log: Callable[[str], None] = lambda _m: None) -> CloudHead:
    """The trained head, cached next to the built models (keyed by the encoder and corpus)."""
    path = _cache_path(encoder.path)
    if path.is_file():
        with np.load(path) as z:
            return CloudHead(
                {k: z[k] for k in ("w1", "b1", "w2", "b2")},
                float(z["temperature"]),
                float(z["oos_threshold"]),
                z["device_w"],
                z["device_b"],
                float(z["device_weight"]),
            )
    head, report = train(encoder, log)
    tmp = path.with_suffix(".tmp.npz")
    arrays: dict[str, object] = {
        **head.mlp,
        "temperature": head.temperature,
        "oos_threshold": head.oos_threshold,
        "device_w": head.device_w,
        "device_b": head.device_b,
        "device_weight": head.device_weight,
        "report": json.dumps(report),
    }
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    log(f"cloud intent head: {report}")
    return head


def training_report() -> dict:
    """What the cached head's training measured on validation ({} before the first training)."""
    enc = model_paths("fp32")["encoder"]
    path = _cache_path(enc) if enc.is_file() else None
    if path is None or not path.is_file():
        return {}
    with np.load(path) as z:
        return dict(json.loads(str(z["report"])))


class CloudIntentClassifier:
    """What the cloud's ``phone-intent`` model runs; importable without the cloud extra."""

    def __init__(self, threads: int = 2, max_tokens: int = CLOUD_MAX_TOKENS) -> None:
        from edgesplit.device.workloads import intent

        paths = model_paths("fp32")
        if not paths["encoder"].is_file() or not paths["head"].is_file():
            intent.build()
        self.encoder = ModelRunner(paths["encoder"], SessionConfig(intra_op_threads=threads))
        self.tokenizer = TextTokenizer(max_tokens=max_tokens)
        self.head = load_or_train(self.encoder)

    def classify(self, texts: Sequence[str | bytes]) -> tuple[list[str], np.ndarray]:
        emb = self.encoder.run(self.tokenizer.encode(texts).feeds())[0]
        labels, conf = self.head.decide(emb)
        return [LABELS[i] for i in labels], conf


def validation_report(threads: int = 1, stride: int = 1) -> dict[str, dict[str, float]]:
    """Device, cloud and cascade on the corpus's validation split (held-out templates, fillers and
    context sentences), through the real phone classifier (INT8), this head and the cascade rule
    of ``tasks.intent_task`` (its ``local`` and ``combine``). No independent set is read here.
    ``stride`` > 1 keeps every stride-th request (a quicker check)."""
    from edgesplit.device.tasks import intent_task

    paths = model_paths("fp32")
    encoder = ModelRunner(paths["encoder"], SessionConfig(intra_op_threads=threads))
    head = load_or_train(encoder)
    texts, y = corpus("val", per_template=VAL_PER_TEMPLATE)
    x, _ = corpus_embeddings(encoder, "val")
    texts, y, x = texts[::stride], y[::stride], x[::stride]
    cloud_labels, cloud_conf = head.decide(x)
    task = intent_task(threads)
    assert task.combine is not None
    device, cascade, escalated = [], [], 0
    for text, cl, cc in zip(texts, cloud_labels, cloud_conf, strict=True):
        label, conf = task.local(text)
        device.append(LABELS.index(label))
        if conf > 0:  # the phone serves it (local reports 0 for what it escalates)
            cascade.append(LABELS.index(label))
            continue
        escalated += 1
        final, _ = task.combine((label, conf), (LABELS[int(cl)], float(cc)))
        cascade.append(LABELS.index(final))
    oos = LABELS.index(OUT_OF_SCOPE)

    def figures(pred: np.ndarray) -> dict[str, float]:
        ins = y != oos
        return {
            "accuracy": float((pred == y).mean()),
            "in_scope_accuracy": float((pred[ins] == y[ins]).mean()),
            "oos_recall": float((pred[~ins] == oos).mean()),
        }

    return {
        "device": figures(np.array(device)),
        "cloud": figures(cloud_labels),
        "cascade": figures(np.array(cascade)) | {"escalated": escalated / len(y)},
        "split": {"requests": float(len(y)), "out_of_scope": float((y == oos).sum())},
    }
