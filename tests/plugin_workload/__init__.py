"""A tiny workload added as a plugin, with zero edits to edgesplit's files: the proof of issue 17.

``tiny-sum`` decides whether four numbers sum to a positive or a negative value. The device runs a
real ONNX model (one MatMul, logits = scale * [-sum, +sum]) and its dynamic INT8 build; the cloud
serves the same graph with a larger scale (so it is more confident) as a pipeline this module
registers (its class in ``cloud.py``, named by string: the device side never imports the cloud).
Everything edgesplit needs is registered here: ``register(WorkloadPlugin(...))``.
Tests import it directly; subprocesses find it through ``$EDGESPLIT_WORKLOADS``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from edgesplit.device.paths import cache_dir
from edgesplit.device.quantize import quantize_dynamic_int8
from edgesplit.device.router import Prediction, Task
from edgesplit.device.runtime import ModelRunner, SessionConfig
from edgesplit.device.workloads import Workload
from edgesplit.device.workloads.registry import (
    DemoSpec,
    EvalSet,
    Input,
    Item,
    WorkloadPlugin,
    register,
)
from onnx import TensorProto, helper, numpy_helper

from edgesplit.errors import InputError

NAME = "tiny-sum"
LABELS = ("negative", "positive")
DEVICE_SCALE = 2.0  # small: inputs that sum to about zero get low confidence and escalate


def model_path(variant: str) -> Path:
    return cache_dir() / "plugins" / NAME / f"sum_{variant}.onnx"


def build_fp32() -> Path:
    w = np.array([[-1.0, 1.0]] * 4, np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["logits"])],
        NAME,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = model_path("fp32")
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_int8() -> dict:
    return quantize_dynamic_int8(build_fp32(), model_path("int8"))


def predict(runner: ModelRunner, x: np.ndarray, scale: float) -> Prediction:
    logits = scale * runner.run({"x": np.asarray(x, np.float32).reshape(1, 4)})[0][0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    k = int(p.argmax())
    return LABELS[k], float(p[k])


def workload() -> Workload:
    def open_(variant: str, threads: int) -> ModelRunner:
        return ModelRunner(model_path(variant), SessionConfig(intra_op_threads=threads))

    def evaluate(runner: ModelRunner, quick: bool) -> dict[str, float]:
        items = eval_set(quick).items
        return {
            "accuracy": float(np.mean([it.check(predict(runner, it.x, 1.0)[0]) for it in items]))
        }

    def latency_call(runner: ModelRunner) -> Callable[[], object]:
        return lambda: predict(runner, np.ones(4, np.float32), 1.0)

    return Workload(
        name=NAME,
        description="Sign of a sum of four numbers (test plugin)",
        metric="accuracy",
        higher_is_better=True,
        model_files=lambda v: [model_path(v)],
        build_int8=build_int8,
        open=open_,
        latency_call=latency_call,
        evaluate=evaluate,
    )


def items(n: int, seed: int) -> list[Item]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.normal(0, 1, 4).astype(np.float32)
        truth = LABELS[int(x.sum() > 0)]
        out.append(Item(x, truth, lambda a, t=truth: a == t))
    return out


def eval_set(quick: bool) -> EvalSet:
    n = 20 if quick else 200
    return EvalSet(f"seeded normal vectors, {n}", items(n, 123))


def read_file(path: Path) -> list[Input]:
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            x = np.array([float(v) for v in line.split()], np.float32)
        except ValueError:
            raise InputError(f"{path}: line {i} is not four numbers: {line!r}") from None
        if x.shape != (4,) or not np.isfinite(x).all():
            raise InputError(f"{path}: line {i} must hold four finite numbers, got {line!r}")
        out.append(Input(x, f"line {i}"))
    return out


def task(threads: int) -> Task:
    if not model_path("int8").is_file():
        build_int8()
    runner = ModelRunner(model_path("int8"), SessionConfig(intra_op_threads=threads))

    def parse(out: dict[str, np.ndarray]) -> Prediction:
        label = out["label"].reshape(-1)[0]
        return label.decode(), float(out["confidence"].reshape(-1)[0])

    return Task(
        NAME,
        lambda x: predict(runner, x, DEVICE_SCALE),
        NAME,
        lambda x: {"x": np.asarray(x, np.float32).reshape(1, 4)},
        parse,
    )


PLUGIN = register(
    WorkloadPlugin(
        name=NAME,
        workload=workload,
        task=task,
        read_file=read_file,
        file_types=".txt, four numbers a line",
        demo=DemoSpec("tiny", ("wifi",), "cascade", 500.0, (NAME,), threshold=0.9),
        stream=items,
        eval_set=eval_set,
        cloud_pipelines={NAME: f"{__name__}.cloud:TinySumModel"},
        model_repository=Path(__file__).parent / "model_repository",
    ),
    replace=True,
)
