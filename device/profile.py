"""Device profiles: what `sim/` reads to model this device's compute.

A profile holds, per workload and variant, the measured whole-model latency, and for models whose
graph can be cut, the Neurosurgeon-style per-split-point table: latency of layers 0..k on the
device, latency of layers k..end, and the size of the tensor crossing the cut. Units are in the key
names.
"""

from __future__ import annotations

import functools
import json
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from edgesplit.device.cpuinfo import read_cpuinfo
from edgesplit.device.runtime import ModelRunner, SessionConfig
from edgesplit.device.stats import time_calls
from onnx.utils import Extractor

PROFILE_SCHEMA = "edgesplit.device-profile/1"


@dataclass
class SplitPoint:
    index: int  # 0 = before the first node (send the raw input), n = after the last node
    tensor: str
    after_op: str
    shape: list[int]
    dtype: str
    tensor_bytes: int
    head_median_ms: float  # device runs layers 0..k
    tail_median_ms: float  # the other side runs layers k..end


@dataclass
class ModelProfile:
    workload: str
    variant: str
    model_bytes: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    input_bytes: int
    output_bytes: int
    threads: int
    split_points: list[SplitPoint] = field(default_factory=list)


def cut_candidates(model: onnx.ModelProto) -> list[tuple[int, str, str]]:
    """Tensors that alone carry all state between the nodes before and after them.

    Walks the (topologically sorted) graph; after node i, a tensor is *live* if produced so far
    and still consumed later or a graph output. A single live activation is a valid cut.
    """
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    graph_inputs = [i.name for i in graph.input if i.name not in inits]
    outputs = {o.name for o in graph.output}
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in inits:
                last_use[name] = i
    cuts = []
    live = set(graph_inputs)
    for i, node in enumerate(graph.node):
        live |= {o for o in node.output if o}
        live = {t for t in live if last_use.get(t, -1) > i or t in outputs}
        constants = all(not n or n in inits for n in node.input)
        if len(live) == 1 and not constants:
            (tensor,) = live
            if tensor not in outputs:
                cuts.append((i + 1, tensor, node.op_type))
    return cuts


def split_profile(
    path: Path, feed: dict[str, np.ndarray], repeats: int = 50, threads: int = 1
) -> list[SplitPoint]:
    """Time head (0..k) and tail (k..end) sub-models at every valid cut of the graph."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    extractor = Extractor(model)
    in_names = list(feed)
    out_names = [o.name for o in model.graph.output]
    cfg = SessionConfig(intra_op_threads=threads)
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, tensor, op in cut_candidates(model):
            head_p, tail_p = Path(tmp) / "head.onnx", Path(tmp) / "tail.onnx"
            try:
                onnx.save(extractor.extract_model(in_names, [tensor]), str(head_p))
                onnx.save(extractor.extract_model([tensor], out_names), str(tail_p))
            except Exception:
                # ONNX shape inference knows no contrib ops (QGemm, QLinear*): such a tensor has no
                # declared type, so the sub-model cannot be cut there. Skip that cut.
                continue
            head = ModelRunner(head_p, cfg)
            mid = head.run(feed)[0]
            tail = ModelRunner(tail_p, cfg)
            h = time_calls(functools.partial(head.run, feed), repeats)
            t = time_calls(functools.partial(tail.run, {tensor: mid}), repeats)
            points.append(
                SplitPoint(
                    index=index,
                    tensor=tensor,
                    after_op=op,
                    shape=list(mid.shape),
                    dtype=str(mid.dtype),
                    tensor_bytes=int(mid.nbytes),
                    head_median_ms=h.median_ms,
                    tail_median_ms=t.median_ms,
                )
            )
    full = ModelRunner(path, cfg)
    whole = time_calls(lambda: full.run(feed), repeats)
    x = next(iter(feed.values()))
    y = full.run(feed)[0]
    ends = [
        SplitPoint(
            0,
            in_names[0],
            "input",
            list(x.shape),
            str(x.dtype),
            int(x.nbytes),
            0.0,
            whole.median_ms,
        ),
        SplitPoint(
            len(model.graph.node),
            out_names[0],
            "output",
            list(y.shape),
            str(y.dtype),
            int(y.nbytes),
            whole.median_ms,
            0.0,
        ),
    ]
    return [ends[0], *points, ends[1]]


def write_profile(profiles: list[ModelProfile], path: Path) -> dict:
    """Write the device profile JSON (the machine, its CPU and every measured model)."""
    doc = {
        "schema": PROFILE_SCHEMA,
        "device": {
            "hostname": platform.node(),
            "cpu": read_cpuinfo().to_dict(),
            "onnxruntime": ort.__version__,
            "python": platform.python_version(),
        },
        "models": [asdict(p) for p in profiles],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return doc
