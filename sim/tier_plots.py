"""PNG of the three-tier placement sweep: the best placement per (link rate, phone load)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from edgesplit.sim.tier_sweep import SweepRow, best_per_point  # noqa: E402


def placement_map(
    rows: list[SweepRow], metric: str, auto_names: set[str], path: Path, title: str
) -> Path:
    """Left: the winning placement at each grid point; right: every placement's p95 vs rate."""
    best = best_per_point(rows, metric, auto_names)
    rates = sorted({r.link_mbps for r in rows})
    utils = sorted({r.phone_util for r in rows})
    names = sorted({r.placement for r in best.values()})
    grid = np.full((len(utils), len(rates)), np.nan)
    for (mbps, util), r in best.items():
        grid[utils.index(util), rates.index(mbps)] = names.index(r.placement)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    cmap = plt.get_cmap("tab10", max(len(names), 1))
    left.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5, aspect="auto", origin="lower")
    for (mbps, util), r in best.items():
        text = f"{r.p95_ms:.0f} ms" if metric in ("p50", "p95") else f"{-r.value(metric):.1f} h"
        left.text(rates.index(mbps), utils.index(util), text, ha="center", va="center", fontsize=7)
    left.set_xticks(range(len(rates)), [f"{m:g}" for m in rates])
    left.set_yticks(range(len(utils)), [f"{u:.0%}" for u in utils])
    left.set_xlabel("link rate (Mbit/s, both directions)")
    left.set_ylabel("phone cores busy with its own work")
    left.set_title(f"best placement by {metric}")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(names))]
    left.legend(handles, names, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    util0 = utils[0]
    for name in sorted({r.placement for r in rows}):
        pts = sorted(
            (r.link_mbps, r.p95_ms) for r in rows if r.placement == name and r.phone_util == util0
        )
        right.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("link rate (Mbit/s, log)")
    right.set_ylabel("p95 latency (ms, log)")
    right.set_title(f"every placement, phone load {util0:.0%}")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
