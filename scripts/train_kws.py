"""Train the earbuds keyword-spotting DS-CNN (MLPerf Tiny shape) on espeak-ng speech; export ONNX.

Rebuild the committed artefact with:

    .venv/bin/pip install -e ".[device,train]"
    .venv/bin/python scripts/train_kws.py --out device/models

Writes ``kws_dscnn_fp32.onnx`` and ``kws_dscnn.json`` (labels, feature layout, accuracies, recipe).
The INT8 model is not committed: ``edgesplit device build`` quantises it with the device's own ORT.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from edgesplit.device.audio.features import FRAMES, MFCC_COEFFS
from edgesplit.device.audio.kws_data import DATASET_VERSION, LABELS, load_dataset
from torch import nn


class DSCNN(nn.Module):
    """Depthwise-separable CNN from Zhang et al. 'Hello Edge' as used by MLPerf Tiny KWS."""

    def __init__(self, n_classes: int = len(LABELS), width: int = 64, blocks: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(1, width, (10, 4), stride=(2, 2), padding=(5, 1), bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Dropout(0.2),
        ]
        for _ in range(blocks):
            layers += [
                nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
        layers += [
            nn.Dropout(0.4),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, n_classes),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def spec_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One time mask (<=8 frames) and one coefficient mask (<=2) per example."""
    n = x.shape[0]
    t0 = torch.randint(0, FRAMES - 8, (n, 1), generator=gen)
    tw = torch.randint(0, 9, (n, 1), generator=gen)
    f0 = torch.randint(0, MFCC_COEFFS - 2, (n, 1), generator=gen)
    fw = torch.randint(0, 3, (n, 1), generator=gen)
    t = torch.arange(FRAMES)[None, :]
    f = torch.arange(MFCC_COEFFS)[None, :]
    keep_t = ~((t >= t0) & (t < t0 + tw))  # (n, FRAMES)
    keep_f = ~((f >= f0) & (f < f0 + fw))  # (n, MFCC_COEFFS)
    keep = (keep_t[:, :, None] & keep_f[:, None, :]).to(x.device)
    return x * keep[:, None]


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = torch.cat(
            [
                model(torch.from_numpy(x[i : i + 512, None]).to(device))
                for i in range(0, len(x), 512)
            ]
        )
    return float((logits.argmax(1).cpu().numpy() == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("device/models"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--width", type=int, default=64, help="channels per layer")
    ap.add_argument("--blocks", type=int, default=4, help="depthwise-separable blocks")
    ap.add_argument("--name", default="kws_dscnn", help="output file prefix")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)

    t_start = time.time()
    x, y = load_dataset("train", seed=args.seed)
    x_test, y_test = load_dataset("test", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(x))
    n_val = len(x) // 10
    val, train = order[:n_val], order[n_val:]
    print(f"train {len(train)}  val {n_val}  test (held-out voices) {len(x_test)}", flush=True)

    model = DSCNN(width=args.width, blocks=args.blocks).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = args.epochs * ((len(train) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    xt = torch.from_numpy(x[train][:, None]).to(args.device)
    yt = torch.from_numpy(y[train]).to(args.device)
    best, best_state = -1.0, None
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen).to(args.device)
        for i in range(0, len(perm), 128):
            idx = perm[i : i + 128]
            loss = nn.functional.cross_entropy(
                model(spec_augment(xt[idx], gen)), yt[idx], label_smoothing=0.05
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        val_acc = accuracy(model, x[val], y[val])
        if val_acc >= best:
            best, best_state = val_acc, {k: v.clone() for k, v in model.state_dict().items()}
        print(f"epoch {epoch + 1:3d}  loss {loss.item():.3f}  val {val_acc:.4f}", flush=True)

    model.load_state_dict(best_state)
    model = model.cpu().eval()
    test_acc = accuracy(model, x_test, y_test)
    print(f"best val {best:.4f}  held-out-voice test {test_acc:.4f}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / f"{args.name}_fp32.onnx"
    torch.onnx.export(
        model,
        torch.zeros(1, 1, FRAMES, MFCC_COEFFS),
        str(onnx_path),
        input_names=["mfcc"],
        output_names=["logits"],
        dynamic_axes={"mfcc": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    card = {
        "model": onnx_path.name,
        "architecture": f"DS-CNN (MLPerf Tiny KWS shape), width {args.width}, {args.blocks} blocks",
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "labels": list(LABELS),
        "input": {"name": "mfcc", "shape": ["batch", 1, FRAMES, MFCC_COEFFS], "features": "MFCC"},
        "dataset_version": DATASET_VERSION,
        "seed": args.seed,
        "epochs": args.epochs,
        "val_accuracy": best,
        "heldout_voice_test_accuracy": test_acc,
        "train_examples": int(len(train)),
        "torch": torch.__version__,
        "train_seconds": round(time.time() - t_start, 1),
        "device": args.device,
        "rebuild": f"python scripts/train_kws.py --width {args.width} --blocks {args.blocks} "
        f"--name {args.name} --epochs {args.epochs} --out {args.out}",
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
