"""Workloads: per workload, its FP32 source, INT8 build, bench call and metric.

Each workload is registered as a plugin (:mod:`edgesplit.device.workloads.registry`); the
built-in three are in :mod:`edgesplit.device.workloads.builtin`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib
import inspect
from collections.abc import Callable, Iterator
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
    # Modules the INT8 build also reads (e.g. a corpus its head is trained on): a change to
    # them rebuilds as a change to the recipe's own module does.
    recipe_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Every INT8 build records which FP32 sources it was made from (see int8_ready).
        object.__setattr__(self, "build_int8", _stamping(self.name, self.build_int8, self))

    def int8_ready(self) -> bool:
        """INT8 files exist *and* were built from today's FP32 sources.

        Built models live in a cache shared by every checkout on the machine and keyed by the ORT
        version only; a retrained FP32 model must not be served by a stale INT8 build.
        """
        if not all(p.is_file() for v in VARIANTS for p in self.model_files(v)):
            return False
        stamp = _stamp_path(self.name)
        return stamp.is_file() and stamp.read_text().strip() == self.source_digest()

    def ensure_int8(self) -> bool:
        """Build the INT8 files unless they are ready; True if this call built them.

        Safe when several processes ask at once (parallel tests, a demo beside `device run`):
        the first builds under the workload's lock, the others wait and find them ready.
        """
        if self.int8_ready():
            return False
        with _build_lock(self.name):
            if self.int8_ready():
                return False
            self.build_int8.__wrapped__()  # type: ignore[attr-defined]  # unlocked: we hold it
            _write_stamp(self)
        return True

    def source_digest(self) -> str:
        """SHA-256 over the FP32 sources and the module holding the INT8 recipe.

        The recipe's module is included so that a changed calibration set or quantisation setting
        also rebuilds.
        """
        files = sorted(str(p) for p in self.model_files("fp32"))
        recipe = inspect.getsourcefile(inspect.unwrap(self.build_int8))
        extra = [inspect.getsourcefile(importlib.import_module(m)) for m in self.recipe_modules]
        return _digest(tuple(files + [f for f in [recipe, *extra] if f]))


@contextlib.contextmanager
def _build_lock(name: str) -> Iterator[None]:
    """An exclusive lock on the built-models cache for one workload (released on exit or death)."""
    from edgesplit.device.paths import built_models_dir

    lock_path = built_models_dir() / f"{name}.build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _stamp_path(name: str) -> Path:
    from edgesplit.device.paths import built_models_dir

    return built_models_dir() / f"{name}.int8-source.sha256"


def _write_stamp(workload: Workload) -> None:
    _stamp_path(workload.name).write_text(workload.source_digest() + "\n")


@functools.lru_cache(maxsize=32)
def _digest_file(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _digest(paths: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(_digest_file(p, st.st_size, st.st_mtime_ns).encode())
    return h.hexdigest()


def _stamping(name: str, build: Callable[[], Any], workload: Workload) -> Callable[[], Any]:
    if getattr(build, "_stamps", False):
        return build

    @functools.wraps(build)
    def build_and_stamp() -> Any:
        # One build at a time per workload on this machine: the cache is shared by every
        # checkout, and two processes writing the same ONNX file would leave a torn model.
        with _build_lock(name):
            result = build()
            _write_stamp(workload)
        return result

    build_and_stamp._stamps = True  # type: ignore[attr-defined]
    return build_and_stamp


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
