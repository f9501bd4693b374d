"""Leave-one-family-out evaluation of a keyword spotter: per condition (noise, SNR) and per class.

``predict`` maps MFCC features (N, 49, 10) to logits (N, 12); it can be a torch model during
training or an ONNX Runtime session on the device, so every figure is computed the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from edgesplit.device.audio.kws_data import (
    CONDITIONS,
    KEYWORDS,
    LABELS,
    evaluation_set,
)

Predict = Callable[[np.ndarray], np.ndarray]


def scores(predict: Predict, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy over all 12 classes, over keyword clips only, and per class."""
    logits = np.concatenate([predict(x[i : i + 256]) for i in range(0, len(x), 256)])
    right = logits.argmax(axis=1) == y
    kw = y < len(KEYWORDS)
    return {
        "accuracy": round(float(right.mean()), 4),
        "keyword_accuracy": round(float(right[kw].mean()), 4),
        "examples": len(y),
        "per_class": {
            LABELS[k]: round(float(right[y == k].mean()), 4)
            for k in range(len(LABELS))
            if (y == k).any()
        },
    }


def family_report(
    predict: Predict,
    family: str,
    conditions: Sequence[str] = CONDITIONS,
    limit: int | None = None,
    workers: int = 2,
) -> dict[str, dict]:
    """Scores on ``family``'s test bank under each condition."""
    return {
        c: scores(predict, *evaluation_set(family, c, limit=limit, workers=workers))
        for c in conditions
    }


def summary(report: dict[str, dict]) -> dict[str, float]:
    """Mean accuracy over the clean condition, the noisy ones (all SNRs) and the 10-20 dB ones."""
    noisy = [c for c in report if c != "clean"]
    mid = [c for c in noisy if c.endswith(("10", "20"))]

    def mean(cs: list[str], key: str) -> float:
        return round(float(np.mean([report[c][key] for c in cs])), 4) if cs else float("nan")

    out = {}
    for key in ("accuracy", "keyword_accuracy"):
        out[f"clean_{key}"] = report["clean"][key] if "clean" in report else float("nan")
        out[f"noisy_{key}"] = mean(noisy, key)
        out[f"snr10_20_{key}"] = mean(mid, key)
    return out


def onnx_predict(path: str, threads: int = 1) -> Predict:
    """An ONNX Runtime session on ``path`` (input ``mfcc`` [N, 1, 49, 10]) as a predictor."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"mfcc": x[:, None]})[0]


def markdown(reports: dict[str, dict[str, dict]]) -> str:
    """Per-condition table (all 12 classes / the 10 keywords' clips) and per-class table (clean)."""
    names = list(reports)
    conds = list(next(iter(reports.values())))
    lines = ["| condition | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for c in conds:
        cells = [
            f"{100 * reports[n][c]['accuracy']:.1f} / {100 * reports[n][c]['keyword_accuracy']:.1f}"
            for n in names
        ]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "| class (clean) | " + " | ".join(names) + " |"]
    lines.append("|---" * (len(names) + 1) + "|")
    for label in reports[names[0]]["clean"]["per_class"]:
        cells = [f"{100 * reports[n]['clean']['per_class'][label]:.1f}" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def embed_report(
    folder: Path, family: str, conditions: Sequence[str] = CONDITIONS, workers: int = 2
) -> dict[str, dict]:
    """kws-embed (``folder``: its head.onnx and model_card.json) on the clips' audio."""
    from edgesplit.device.audio.kws_cloud import CloudKeywordSpotter

    card = json.loads((folder / "model_card.json").read_text())
    spotter = CloudKeywordSpotter(
        folder / "head.onnx", Path(card["mfcc_expert"]), float(card["embedding_weight"])
    )
    return {
        c: scores(
            spotter.log_probs_audio,
            *evaluation_set(family, c, workers=workers, features="audio"),
        )
        for c in conditions
    }


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m edgesplit.device.audio.kws_eval --family flite NAME=MODEL.onnx ...``"""
    import argparse

    ap = argparse.ArgumentParser(description="KWS accuracy per condition and class, as Markdown")
    ap.add_argument("models", nargs="*", metavar="NAME=MODEL.onnx")
    ap.add_argument("--family", default="flite", help="whose test bank (the held-out family)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument(
        "--kws-embed",
        type=Path,
        metavar="DIR",
        help="also the cloud's kws-embed (DIR: head.onnx + model_card.json) on the clips' audio",
    )
    args = ap.parse_args(argv)
    conds = tuple(args.conditions.split(","))
    reports = {}
    for spec in args.models:
        name, _, path = spec.partition("=")
        reports[name] = family_report(onnx_predict(path or name), args.family, conds)
    if args.kws_embed:
        reports["kws-embed"] = embed_report(args.kws_embed, args.family, conds)
    if not reports:
        ap.error("name at least one model or --kws-embed DIR")
    print(f"{args.family} test bank, accuracy % (all 12 classes / keyword clips only)\n")
    print(markdown(reports))


if __name__ == "__main__":
    main()
