"""Train the earbuds keyword-spotting DS-CNN (MLPerf Tiny shape) and export ONNX.

Synthetic speech, leave-one-family-out (the deployed device model; ~15 min on 2 CPU cores):

    .venv/bin/pip install -e ".[device,train]"
    .venv/bin/python scripts/train_kws.py --out device/models

trains on espeak-ng + festival speech through the real-ear augmentation and reports accuracy on
flite speech (a synthesis family and speakers it never heard) per noise condition and per class,
beside the in-family figure. ``--held-out festival --train-families espeak-ng,flite`` etc. give the
other folds. Google Speech Commands v2, when you have it (standard layout: one folder per word,
``validation_list.txt``, ``testing_list.txt``, ``_background_noise_/``):

    .venv/bin/python scripts/train_kws.py --speech-commands ~/speech_commands_v0.02 --out OUT

The cloud's ``kws-large`` is an ensemble of runs saved with ``--save-state``:

    .venv/bin/python scripts/train_kws.py --ensemble kws_a kws_b --name kws_large --out OUT

The cloud's ``kws-embed`` (audio in) is a head over Google's speech embedding (openwakeword 0.5.1
wheel), combined with ``kws-large``; the weight is chosen on the training families' test banks:

    .venv/bin/python scripts/train_kws.py --cloud-embedding --out cloud/model_repository/kws-embed

Writes ``NAME_fp32.onnx`` and ``NAME.json`` (labels, feature layout, accuracies, recipe). The INT8
model is not committed: ``edgesplit device build`` quantises it with the device's own ORT.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from edgesplit.device.audio import kws_eval
from edgesplit.device.audio.augment import EarAugment
from edgesplit.device.audio.features import FRAMES, MFCC_COEFFS
from edgesplit.device.audio.kws_data import (
    DATASET_VERSION,
    DEPLOY_TRAIN_FAMILIES,
    HELD_OUT_FAMILY,
    LABELS,
    training_set,
)
from edgesplit.device.paths import cache_dir
from torch import nn


class DSCNN(nn.Module):
    """Depthwise-separable CNN from Zhang et al. 'Hello Edge' as used by MLPerf Tiny KWS."""

    def __init__(
        self, n_classes: int = len(LABELS), width: int = 64, blocks: int = 4, cmn: bool = False
    ) -> None:
        super().__init__()
        self.cmn = cmn
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
        if self.cmn:  # cepstral mean normalisation of c1..c9 (c0, the level, tells silence)
            centred = x - x.mean(dim=2, keepdim=True)
            x = torch.cat([x[..., :1], centred[..., 1:]], dim=-1)
        return self.net(x)


class Ensemble(nn.Module):
    """Mean of the members' log-probabilities (a product of experts), exported as one graph."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = [torch.log_softmax(m(x), dim=1) for m in self.members]
        return torch.stack(logp).mean(dim=0)


def spec_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) on MFCCs: one time mask (<=8 frames) and one coefficient
    mask (<=2) per example."""
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


def predictor(model: nn.Module) -> kws_eval.Predict:
    model.eval()
    device = next(model.parameters()).device

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x[:, None]).to(device)).cpu().numpy()

    return predict


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return kws_eval.scores(predictor(model), x, y)["accuracy"]


def fit(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    seed: int,
    device: str,
) -> tuple[float, int]:
    """AdamW + one-cycle, SpecAugment, label smoothing; keeps the best epoch on a 10 % validation
    split of the *training* families (the held-out family is never looked at)."""
    gen = torch.Generator().manual_seed(seed)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = len(x) // 10
    val, train = order[:n_val], order[n_val:]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * ((len(train) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    xt = torch.from_numpy(x[train][:, None]).to(device)
    yt = torch.from_numpy(y[train]).to(device)
    best, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen).to(device)
        for i in range(0, len(perm), 128):
            idx = perm[i : i + 128]
            loss = nn.functional.cross_entropy(
                model(spec_augment(xt[idx], gen)), yt[idx], label_smoothing=0.1
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        val_acc = accuracy(model, x[val], y[val])
        if val_acc >= best:
            best, best_state = val_acc, {k: v.clone() for k, v in model.state_dict().items()}
        print(f"epoch {epoch + 1:3d}  loss {loss.item():.3f}  val {val_acc:.4f}", flush=True)
    assert best_state is not None
    model.load_state_dict(best_state)
    return best, len(train)


def export(model: nn.Module, path: Path) -> None:
    torch.onnx.export(
        model.cpu().eval(),
        torch.zeros(1, 1, FRAMES, MFCC_COEFFS),
        str(path),
        input_names=["mfcc"],
        output_names=["logits"],
        dynamic_axes={"mfcc": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def runs_dir() -> Path:
    path = cache_dir() / "kws-runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def lofo_report(model: nn.Module, held_out: str, train_families: list[str], limit: int | None):
    """Out-of-family (every condition) and in-family (each training family) scores."""
    predict = predictor(model)
    out = kws_eval.family_report(predict, held_out, limit=limit)
    inside = {f: kws_eval.family_report(predict, f, limit=limit) for f in train_families}
    for name, rep in [(f"out-of-family {held_out}", out)] + [
        (f"in-family {f}", r) for f, r in inside.items()
    ]:
        line = "  ".join(
            f"{c} {r['accuracy']:.3f}/{r['keyword_accuracy']:.3f}" for c, r in rep.items()
        )
        print(f"{name:28s} (all/keywords) {line}", flush=True)
    return {
        "held_out_family": held_out,
        "out_of_family": out,
        "out_of_family_summary": kws_eval.summary(out),
        "in_family": inside,
        "in_family_summary": {f: kws_eval.summary(r) for f, r in inside.items()},
    }


REPO = Path(__file__).resolve().parents[1]


class EmbeddingHead(nn.Module):
    """Two 1-D convolutions over the sequence of speech embeddings, max over time (the word may be
    anywhere in the clip), one linear layer. Training drops whole embedding frames (time mask)."""

    def __init__(self, width: int = 128, frame_drop: float = 0.0) -> None:
        super().__init__()
        from edgesplit.device.audio.embedding import EMBEDDING_DIM

        self.frame_drop = frame_drop
        self.net = nn.Sequential(
            nn.Conv1d(EMBEDDING_DIM, width, 3, padding=1),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Conv1d(width, width, 3, padding=1),
            nn.BatchNorm1d(width),
            nn.ReLU(),
        )
        self.out = nn.Sequential(nn.Dropout(0.3), nn.Linear(width, len(LABELS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, windows, 96)
        if self.training and self.frame_drop > 0:
            x = x * (torch.rand(x.shape[0], x.shape[1], 1, device=x.device) > self.frame_drop)
        return self.out(self.net(x.transpose(1, 2)).amax(dim=2))


def fit_head(
    model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int
) -> tuple[float, int]:
    """AdamW + one-cycle, label smoothing; the best epoch on a 10 % validation split of the
    training families' clips (as :func:`fit`)."""
    gen = torch.Generator().manual_seed(seed)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = len(x) // 10
    val, train = order[:n_val], order[n_val:]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
    steps = epochs * ((len(train) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
    best, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(perm), 128):
            idx = perm[i : i + 128]
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            val_acc = float((model(torch.from_numpy(x[val])).argmax(1).numpy() == y[val]).mean())
        if val_acc >= best:
            best, best_state = val_acc, {k: v.clone() for k, v in model.state_dict().items()}
        print(f"epoch {epoch + 1:3d}  loss {loss.item():.3f}  val {val_acc:.4f}", flush=True)
    assert best_state is not None
    model.load_state_dict(best_state)
    return best, len(train)


def export_head(model: nn.Module, path: Path) -> None:
    from edgesplit.device.audio.embedding import EMBEDDING_DIM, WINDOWS

    torch.onnx.export(
        model.cpu().eval(),
        torch.zeros(1, WINDOWS, EMBEDDING_DIM),
        str(path),
        input_names=["embedding"],
        output_names=["logits"],
        dynamic_axes={"embedding": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


class HeadEnsemble(nn.Module):
    """Mean log-probability of heads trained from different seeds, exported as one graph."""

    def __init__(self, heads: list[nn.Module]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.log_softmax(h(x), dim=1) for h in self.heads]).mean(dim=0)


WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))  # embedding expert's weight, searched


def train_cloud_embedding(args: argparse.Namespace, families: list[str]) -> None:
    """``kws-embed``: head over the speech embedding, combined with the MFCC ensemble; the weight
    is the one with the best mean accuracy over the training families' test banks (7 conditions
    each); the held-out family is only reported."""
    from edgesplit.device.audio.embedding import WHEEL
    from edgesplit.device.audio.kws_cloud import CloudKeywordSpotter
    from edgesplit.device.audio.kws_data import CONDITIONS, evaluation_set

    t_start = time.time()
    augment = EarAugment(p_babble=args.p_babble)
    seeds = [int(v) for v in args.data_seeds.split(",")] if args.data_seeds else [args.seed]
    parts_xy = [
        training_set(families, s, args.views, augment=augment, features="embedding") for s in seeds
    ]
    x = np.concatenate([p[0] for p in parts_xy])
    y = np.concatenate([p[1] for p in parts_xy])
    print(f"train+val {len(x)} embedded clips from {families}, data seeds {seeds}", flush=True)
    heads, vals = [], []
    for k in range(args.heads):
        torch.manual_seed(args.seed + k)
        head = EmbeddingHead(width=args.width, frame_drop=args.frame_drop)
        val, n_train = fit_head(head, x, y, args.epochs, args.seed + k)
        heads.append(head.eval())
        vals.append(val)
        print(f"head {k + 1}/{args.heads}: best val {val:.4f}", flush=True)
    model: nn.Module = HeadEnsemble(heads).eval()
    best = round(float(np.mean(vals)), 4)
    args.out.mkdir(parents=True, exist_ok=True)
    head_path = args.out / "head.onnx"
    export_head(model, head_path)
    spotter = CloudKeywordSpotter(head_path, args.mfcc_model, 0.5, args.threads)
    parts: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for fam in [*families, args.held_out]:
        for c in CONDITIONS:
            xe, ye = evaluation_set(fam, c, features="embedding")
            xm, ym = evaluation_set(fam, c)
            if not np.array_equal(ye, ym):
                raise SystemExit(f"{fam}/{c}: embedding and MFCC sets disagree")
            parts[fam, c] = (
                spotter.embedding_log_probs_of(xe),
                spotter.log_probs_mfcc(xm),
                ym,
            )

    def in_family(w: float) -> float:
        return float(
            np.mean(
                [((w * e + (1 - w) * m).argmax(1) == y).mean() for (f, _), (e, m, y) in
                 parts.items() if f != args.held_out]
            )
        )  # fmt: skip

    search = {w: round(in_family(w), 4) for w in WEIGHTS}
    weight = max(WEIGHTS, key=lambda w: (search[w], -abs(w - 0.5)))
    print(f"in-family mean accuracy by embedding weight: {search}; chosen {weight}", flush=True)
    lookup = {}
    for (fam, c), (e, m, yy) in parts.items():
        lookup[fam, c] = (weight * e + (1 - weight) * m, yy)

    def report(fam: str) -> dict[str, dict]:
        out = {}
        for c in CONDITIONS:
            lp, yy = lookup[fam, c]
            out[c] = kws_eval.scores(lambda chunk: chunk, lp, yy)  # log-probs, precomputed
        return out

    out_rep = report(args.held_out)
    inside = {f: report(f) for f in families}
    for name, rep in [(f"out-of-family {args.held_out}", out_rep)] + [
        (f"in-family {f}", r) for f, r in inside.items()
    ]:
        line = "  ".join(
            f"{c} {r['accuracy']:.3f}/{r['keyword_accuracy']:.3f}" for c, r in rep.items()
        )
        print(f"{name:28s} (all/keywords) {line}", flush=True)
    card = {
        "model": "head.onnx (the embedding expert) + the MFCC expert",
        "architecture": f"Google speech embedding (frozen) -> {args.heads} heads (2 conv1d of "
        f"width {args.width} + max over time + linear; mean log-probability), combined with the "
        "DS-CNN ensemble kws-large on MFCC as a weighted product",
        "head_parameters": int(sum(p.numel() for p in model.parameters())),
        "input": {"name": "audio", "shape": ["batch", 16000], "features": "16 kHz audio"},
        "front_end": f"melspectrogram.onnx + embedding_model.onnx from the {WHEEL} wheel",
        "licence": "front end: openWakeWord's README puts every model file in its wheel under "
        "CC BY-NC-SA 4.0 (non-commercial) and names the embedding network a re-implementation "
        "of Google's speech_embedding/1 TFHub module (Apache-2.0); the head is ours",
        "mfcc_expert": str(
            args.mfcc_model.resolve().relative_to(REPO)
            if args.mfcc_model.resolve().is_relative_to(REPO)
            else args.mfcc_model
        ),
        "embedding_weight": weight,
        "weight_search_in_family": {str(k): v for k, v in search.items()},
        "selection": "head epoch: 10 % validation split of the training families' augmented "
        "clips; weight: mean accuracy over the training families' test banks (7 conditions "
        f"each); the held-out {args.held_out} bank was not used to choose",
        "labels": list(LABELS),
        "dataset_version": DATASET_VERSION,
        "train_families": families,
        "views": args.views,
        "data_seeds": seeds,
        "augment": asdict(augment) | {"vtlp": "not applied (audio in)"},
        "val_accuracy": best,
        "train_examples": n_train,
        "epochs": args.epochs,
        "seed": args.seed,
        "torch": torch.__version__,
        "held_out_family": args.held_out,
        "out_of_family": out_rep,
        "out_of_family_summary": kws_eval.summary(out_rep),
        "in_family": inside,
        "in_family_summary": {f: kws_eval.summary(r) for f, r in inside.items()},
        "frame_drop": args.frame_drop,
        "rebuild": f"python scripts/train_kws.py --cloud-embedding --width {args.width} "
        f"--heads {args.heads} --frame-drop {args.frame_drop} "
        f"--epochs {args.epochs} --views {args.views} --seed {args.seed} "
        + (f"--data-seeds {args.data_seeds} " if args.data_seeds else "")
        + f"--train-families {','.join(families)} --held-out {args.held_out} --out {args.out}",
        "train_seconds": round(time.time() - t_start, 1),
    }
    (args.out / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {head_path} ({head_path.stat().st_size} bytes), embedding weight {weight}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("device/models"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--width", type=int, default=64, help="channels per layer")
    ap.add_argument("--blocks", type=int, default=4, help="depthwise-separable blocks")
    ap.add_argument("--cmn", action="store_true", help="per-clip cepstral mean normalisation")
    ap.add_argument("--name", default="kws_dscnn", help="output file prefix")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    ap.add_argument("--train-families", default=",".join(DEPLOY_TRAIN_FAMILIES))
    ap.add_argument("--held-out", default=HELD_OUT_FAMILY, help="family reported out-of-family")
    ap.add_argument("--views", type=int, default=3, help="augmented renderings of each word")
    ap.add_argument("--p-babble", type=float, default=0.4, help="share of noisy clips with babble")
    ap.add_argument("--eval-limit", type=int, default=None, help="clips per evaluation set")
    ap.add_argument("--save-state", action="store_true", help=f"keep weights in {runs_dir()}")
    ap.add_argument("--ensemble", nargs="+", metavar="RUN", help="combine saved runs, no training")
    ap.add_argument("--speech-commands", type=Path, metavar="DIR", help="train on Speech Commands")
    ap.add_argument(
        "--cloud-embedding", action="store_true", help="train kws-embed's head (see above)"
    )
    ap.add_argument("--heads", type=int, default=3, help="kws-embed: heads averaged")
    ap.add_argument("--frame-drop", type=float, default=0.0, help="kws-embed: time-mask share")
    ap.add_argument(
        "--data-seeds", default="", help="kws-embed: augmentation seeds of the training clips (0,1)"
    )
    ap.add_argument(
        "--mfcc-model",
        type=Path,
        default=REPO / "cloud/model_repository/kws-large/1/model.onnx",
        help="the MFCC expert kws-embed is combined with",
    )
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    t_start = time.time()
    families = [f for f in args.train_families.split(",") if f]
    card: dict = {"labels": list(LABELS), "seed": args.seed, "torch": torch.__version__}
    if args.cloud_embedding:
        train_cloud_embedding(args, families)
        return

    if args.ensemble:
        members, recipes = [], []
        for run in args.ensemble:
            saved = torch.load(runs_dir() / f"{run}.pt", weights_only=False)
            member = DSCNN(
                width=saved["width"], blocks=saved["blocks"], cmn=saved.get("cmn", False)
            )
            member.load_state_dict(saved["state"])
            members.append(member)
            recipes.append(saved["recipe"])
            if saved["held_out"] != args.held_out or saved["families"] != families:
                raise SystemExit(f"run {run} was trained for another fold: {saved['held_out']}")
        model: nn.Module = Ensemble(members).eval()
        card |= {"architecture": f"ensemble of {len(members)} DS-CNNs", "members": recipes}
        card |= lofo_report(model, args.held_out, families, args.eval_limit)
    elif args.speech_commands:
        from edgesplit.device.audio.speech_commands import load_speech_commands

        x, y = load_speech_commands(args.speech_commands, "train")
        x_test, y_test = load_speech_commands(args.speech_commands, "test")
        print(f"Speech Commands: train {len(x)}  test {len(x_test)}", flush=True)
        model = DSCNN(width=args.width, blocks=args.blocks, cmn=args.cmn).to(args.device)
        best, n_train = fit(model, x, y, args.epochs, args.seed, args.device)
        test = kws_eval.scores(predictor(model), x_test, y_test)
        print(f"best val {best:.4f}  Speech Commands testing_list {test['accuracy']:.4f}")
        card |= {
            "data": f"Google Speech Commands at {args.speech_commands}",
            "val_accuracy": best,
            "speech_commands_test": test,
            "train_examples": n_train,
        }
    else:
        augment = EarAugment(p_babble=args.p_babble)
        x, y = training_set(families, seed=args.seed, views=args.views, augment=augment)
        print(f"train+val {len(x)} clips from {families}; held out: {args.held_out}", flush=True)
        model = DSCNN(width=args.width, blocks=args.blocks, cmn=args.cmn).to(args.device)
        best, n_train = fit(model, x, y, args.epochs, args.seed, args.device)
        model = model.cpu().eval()
        card |= {
            "data": f"synthetic speech: train {families} (dataset v{DATASET_VERSION}, "
            f"{args.views} augmented views), evaluated on held-out family {args.held_out}",
            "train_families": families,
            "views": args.views,
            "augment": asdict(augment),
            "val_accuracy": best,
            "train_examples": n_train,
        }
        card |= lofo_report(model, args.held_out, families, args.eval_limit)
    if not args.ensemble:
        card["architecture"] = (
            f"DS-CNN (MLPerf Tiny KWS shape), width {args.width}, {args.blocks} blocks"
            + (", cepstral mean normalisation" if args.cmn else "")
        )
        card["epochs"] = args.epochs
        rebuild = f"python scripts/train_kws.py --width {args.width} --blocks {args.blocks} "
        rebuild += "--cmn " if args.cmn else ""
        rebuild += f"--seed {args.seed} " if args.seed else ""
        rebuild += f"--name {args.name} --epochs {args.epochs} --views {args.views} "
        rebuild += f"--p-babble {args.p_babble} " if args.p_babble != EarAugment.p_babble else ""
        rebuild += f"--train-families {','.join(families)} --held-out {args.held_out}"
        if args.speech_commands:
            rebuild += f" --speech-commands {args.speech_commands}"
        card["rebuild"] = rebuild + f" --out {args.out}"
    if args.save_state and not args.ensemble:
        torch.save(
            {
                "state": model.state_dict(),
                "width": args.width,
                "blocks": args.blocks,
                "cmn": args.cmn,
                "held_out": args.held_out,
                "families": families,
                "recipe": card["rebuild"],
            },
            runs_dir() / f"{args.name}.pt",
        )

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / f"{args.name}_fp32.onnx"
    export(model, onnx_path)
    card = {
        "model": onnx_path.name,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "input": {"name": "mfcc", "shape": ["batch", 1, FRAMES, MFCC_COEFFS], "features": "MFCC"},
        "dataset_version": DATASET_VERSION,
        **card,
        "train_seconds": round(time.time() - t_start, 1),
        "device": args.device,
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
