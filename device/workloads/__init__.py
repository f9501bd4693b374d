"""Workloads: per workload, its FP32 source, INT8 build, bench call and metric.

Each workload is registered as a plugin (:mod:`edgesplit.device.workloads.registry`); the
built-in three are in :mod:`edgesplit.device.workloads.builtin`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("fp32", "int8")


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    metric: str  # the headline accuracy metric key returned by ``evaluate``
    higher_is_better: bool
    model_files: Callable[[str], list[Path]]
    build_int8: Callable[[], Any]
    open: Callable[[str, int], Any]  # (variant, threads) -> predictor
    latency_call: Callable[[Any], Callable[[], object]]  # predictor -> one representative call
    evaluate: Callable[[Any, bool], dict[str, float]]  # (predictor, quick) -> metrics
    split_feed: Callable[[], dict[str, np.ndarray]] | None = None  # for per-layer profiles
    # Extra latency cases timed beside the headline call, e.g. {"64 tokens": ...}.
    latency_cases: Callable[[Any], dict[str, Callable[[], object]]] | None = None

    def int8_ready(self) -> bool:
        return all(p.is_file() for v in VARIANTS for p in self.model_files(v))


def names() -> list[str]:
    """Every registered workload (built-in, entry points, ``$EDGESPLIT_WORKLOADS``)."""
    from edgesplit.device.workloads.registry import plugins

    return list(plugins())


def get(name: str) -> Workload:
    """The bench/build view of a registered workload; KeyError names the known ones."""
    from edgesplit.device.workloads.registry import plugins

    found = plugins()
    if name not in found:
        raise KeyError(f"unknown workload {name!r}; known: {', '.join(found)}")
    return found[name].workload()
