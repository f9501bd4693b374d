"""PNG plots: latency CDF per policy, latency-vs-energy Pareto, split-point sweep."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from edgesplit.sim.model import RunResult  # noqa: E402
from edgesplit.sim.splits import SplitRow  # noqa: E402


def latency_cdf(runs: list[RunResult], path: Path, deadline_ms: float | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run in runs:
        lat, frac = run.stats.latency_ms.cdf()  # streamed: a histogram, not every request
        ax.plot(np.maximum(lat, 1e-3), frac, label=run.policy)
    if deadline_ms:
        ax.axvline(deadline_ms, color="grey", ls="--", lw=1, label=f"deadline {deadline_ms:g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("end-to-end latency (ms, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(f"{runs[0].scenario.name}: latency CDF per policy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def pareto(summaries: list[dict], path: Path) -> Path:
    """Latency (p95) against device energy per request; the non-dominated policies joined."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    pts = [
        (s["energy_j"]["per_request"] * 1e3, s["latency_ms"]["p95"], s["policy"]) for s in summaries
    ]
    front = sorted(
        p for p in pts if not any(q[0] <= p[0] and q[1] <= p[1] and q[:2] != p[:2] for q in pts)
    )
    names: dict[tuple[float, float], list[str]] = {}
    for e, lat, name in pts:  # policies that coincide share one point and one label
        names.setdefault((round(e, 6), round(lat, 6)), []).append(name)
    for (e, lat), group in names.items():
        ax.scatter(e, lat, s=40, zorder=3)
        ax.annotate(
            " = ".join(group), (e, lat), textcoords="offset points", xytext=(5, 4), fontsize=8
        )
    if len(front) > 1:
        ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=1, label="Pareto front")
        ax.legend(fontsize=8)
    ax.set_xlabel("device energy per request (mJ: compute + radio + idle share)")
    ax.set_ylabel("p95 latency (ms)")
    ax.set_title(f"{summaries[0]['scenario']}: latency vs energy")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def split_sweep(rows: list[SplitRow], path: Path, title: str) -> Path:
    """Neurosurgeon-style: per cut, latency by stage (stacked) and device energy."""
    x = np.arange(len(rows))
    labels = [r.label for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(7, 0.35 * len(rows) + 3), 6), sharex=True)
    bottom_acc = np.zeros(len(rows))
    for attr, name in (
        ("device_ms", "device"),
        ("uplink_ms", "uplink"),
        ("cloud_ms", "cloud"),
        ("downlink_ms", "downlink"),
    ):
        vals = np.array([getattr(r, attr) for r in rows])
        top.bar(x, vals, bottom=bottom_acc, label=name)
        bottom_acc += vals
    best = int(np.argmin([r.latency_ms for r in rows]))
    top.annotate("best", (best, bottom_acc[best]), ha="center", va="bottom", fontsize=8)
    top.set_ylabel("mean latency (ms)")
    top.set_title(title)
    top.legend(fontsize=8, ncol=4)
    top.grid(axis="y", alpha=0.3)
    bottom.bar(x, [r.device_energy_mj for r in rows], color="tab:green")
    bottom.set_ylabel("device energy (mJ/request)")
    bottom.set_xlabel("split after layer (0 = send the input); device-only = no round trip")
    bottom.set_xticks(x, labels, fontsize=7, rotation=45)
    bottom.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
