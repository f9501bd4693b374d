"""tiny-sum's cloud model: imported only by the cloud (named in the plugin by string)."""

from __future__ import annotations

import numpy as np
from edgesplit.cloud.errors import OipError
from edgesplit.cloud.protocol import TensorMetadata
from edgesplit.device.runtime import ModelRunner, SessionConfig

from tests.plugin_workload import build_fp32, model_path, predict


class TinySumModel:
    """The cloud side: the same graph, FP32, a larger scale. No FastAPI needed to import it."""

    platform = "edgesplit-pipeline"

    def __init__(self, cfg, version: str) -> None:  # noqa: ANN001 - cloud.config.ModelConfig
        self.cfg, self.version = cfg, version
        if not model_path("fp32").is_file():
            build_fp32()
        self.runner = ModelRunner(model_path("fp32"), SessionConfig(intra_op_threads=1))
        self.scale = float(cfg.parameters.get("scale", 20.0))
        self.providers = ["CPUExecutionProvider"]
        self.inputs = [TensorMetadata(name="x", datatype="FP32", shape=[1, 4])]
        self.outputs = [
            TensorMetadata(name="label", datatype="BYTES", shape=[1]),
            TensorMetadata(name="confidence", datatype="FP32", shape=[1]),
        ]

    def validate(self, inputs: dict[str, np.ndarray]) -> int:
        x = inputs.get("x")
        if set(inputs) != {"x"} or x is None or x.shape != (1, 4) or x.dtype != np.float32:
            raise OipError(f"model '{self.cfg.name}' takes one input 'x' (FP32 [1, 4])")
        return 1

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        label, conf = predict(self.runner, inputs["x"], self.scale)
        return {
            "label": np.array([label.encode()], dtype=object),
            "confidence": np.array([conf], np.float32),
        }
