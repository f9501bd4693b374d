"""ONNX Runtime sessions with explicit threading and input checks that give clear errors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from edgesplit.device.errors import ModelFileError, ModelInputError

# ONNX element type strings as ORT reports them -> numpy dtypes.
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class SessionConfig:
    """How a session runs. Threads are explicit: ORT's default grabs every core."""

    intra_op_threads: int = 1
    inter_op_threads: int = 1
    graph_optimization: str = "all"  # one of: disable, basic, extended, all

    def to_session_options(self) -> ort.SessionOptions:
        levels = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        if self.graph_optimization not in levels:
            raise ValueError(
                f"graph_optimization={self.graph_optimization!r}: expected one of {sorted(levels)}"
            )
        if self.intra_op_threads < 1 or self.inter_op_threads < 1:
            raise ValueError(
                f"threads must be >= 1 (got intra={self.intra_op_threads}, "
                f"inter={self.inter_op_threads})"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.intra_op_threads
        opts.inter_op_num_threads = self.inter_op_threads
        opts.graph_optimization_level = levels[self.graph_optimization]
        opts.log_severity_level = 3
        return opts


def default_threads() -> int:
    """One thread per core this process may use, at most 4 (a Pi 4/5 has 4 cores)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def open_session(path: str | Path, config: SessionConfig | None = None) -> ort.InferenceSession:
    """Open a CPU session on ``path``; a missing or corrupt file raises :class:`ModelFileError`."""
    path = Path(path)
    config = config or SessionConfig()
    if not path.is_file():
        raise ModelFileError(
            f"model file not found: {path} (build it with `edgesplit device build`)"
        )
    try:
        return ort.InferenceSession(
            str(path), sess_options=config.to_session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises several exception types for bad files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path} is not a loadable ONNX model: {first_line}") from exc


class ModelRunner:
    """A session plus validation of each call's inputs against the model's declared signature."""

    def __init__(self, path: str | Path, config: SessionConfig | None = None) -> None:
        self.path = Path(path)
        self.session = open_session(self.path, config)
        self.inputs = self.session.get_inputs()
        self.output_names = [o.name for o in self.session.get_outputs()]

    def check(self, feeds: dict[str, np.ndarray]) -> None:
        """Raise :class:`ModelInputError` naming the input whose name, dtype or shape is wrong."""
        expected = {i.name: i for i in self.inputs}
        missing = sorted(set(expected) - set(feeds))
        unknown = sorted(set(feeds) - set(expected))
        if missing or unknown:
            raise ModelInputError(
                f"{self.path.name}: inputs missing {missing}, unexpected {unknown}; "
                f"the model takes {sorted(expected)}"
            )
        for name, value in feeds.items():
            spec = expected[name]
            want_dtype = _ORT_DTYPES.get(spec.type)
            if want_dtype is not None and np.asarray(value).dtype != want_dtype:
                raise ModelInputError(
                    f"{self.path.name}: input {name!r} has dtype {np.asarray(value).dtype}, "
                    f"expected {np.dtype(want_dtype)}"
                )
            shape = np.shape(value)
            if len(shape) != len(spec.shape) or any(
                isinstance(d, int) and d != s for d, s in zip(spec.shape, shape, strict=True)
            ):
                raise ModelInputError(
                    f"{self.path.name}: input {name!r} has shape {list(shape)}, "
                    f"expected {spec.shape} (strings are free dimensions)"
                )

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.check(feeds)
        return self.session.run(self.output_names, feeds)

    def run_single(self, x: np.ndarray) -> np.ndarray:
        """Run a one-input, first-output model."""
        return self.run({self.inputs[0].name: x})[0]
