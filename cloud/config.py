"""Model repository configuration: one ``config.yaml`` per model directory.

Errors name the file, the field, the value and the unit expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from edgesplit.cloud.errors import ModelConfigError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

UNITS = {
    "max_batch_size": "samples per batch (0 = no batch dimension)",
    "max_queue_delay_ms": "milliseconds",
    "max_queue_size": "requests",
    "standing_queue_target_ms": "milliseconds (0 = never shed)",
    "intra_op_threads": "threads",
    "instances": "concurrent executions",
    "version": "positive integer",
    "dims": "elements per dimension (-1 = free)",
    "max_dims": "elements per dimension",
    "max_element_bytes": "bytes per BYTES element",
    "max_efficiency": "time(batch n) / (n x time(batch 1))",
}


class DynamicBatching(BaseModel):
    """Merge concurrent requests; with ``auto`` only if a probe at load shows batches pay."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    max_queue_delay_ms: float = Field(2.0, ge=0, le=10_000)
    # Probe at load: batch only if time(batch n) <= max_efficiency * n * time(batch 1). The
    # queue, merge and split cost something too: on a 2-core CPU a forced batcher served kws at
    # 0.29-0.57x of unbatched end to end while the ORT-level probe read 0.7-1.0 (README), so a
    # batch must at least halve the cost per sample.
    auto: bool = True
    max_efficiency: float = Field(0.5, gt=0, le=1)
    # Shape of one sample (no batch dimension) for the probe, for inputs with free dims.
    probe_dims: dict[str, list[int]] = {}


class InputLimits(BaseModel):
    """Per-input bounds, checked from the request's JSON header before any tensor is allocated.

    ``dims`` narrows the model's declared shape (e.g. ocr-rec's free height to 48);
    ``max_dims`` bounds each dimension (-1 = only the server-wide element limit).
    """

    model_config = ConfigDict(extra="forbid")
    dims: list[int] | None = Field(None, max_length=16)
    max_dims: list[int] | None = Field(None, max_length=16)
    max_element_bytes: int | None = Field(None, ge=1, le=1 << 30)  # BYTES inputs


class SplitTail(BaseModel):
    """Serve layers k..end of ``source``: the graph from ``cut_tensor`` to the outputs."""

    model_config = ConfigDict(extra="forbid")
    source: str
    cut_tensor: str


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    platform: Literal["onnxruntime", "edgesplit-pipeline"] = "onnxruntime"
    model_file: str | None = None  # path relative to the model dir, or pkg://package/path
    split_tail: SplitTail | None = None
    pipeline: str | None = None  # for platform edgesplit-pipeline: "glasses-ocr"
    version: int = Field(1, ge=1)
    max_batch_size: int = Field(0, ge=0, le=4096)
    dynamic_batching: DynamicBatching | None = None
    # Tried in order; those this ORT build lacks are skipped (CUDA needs onnxruntime-gpu).
    execution_providers: list[str] = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    intra_op_threads: int = Field(1, ge=1, le=256)
    instances: int = Field(1, ge=1, le=64)
    # Requests allowed to wait for an instance or a batch; beyond it the server answers 429.
    max_queue_size: int = Field(256, ge=1, le=1_000_000)
    # While it is refusing requests, the model admits fewer than max_queue_size if even the
    # shortest wait for a run stays over this (cloud/standing_queue.py; RFC 8289's 5 ms): a
    # standing queue under overload only delays those admitted. 0 (the default): every place
    # kept. Off unless measured: for kws-large (runs of ~0.2 ms, the event loop its limit) it
    # cut admitted p99 ~10x at the same goodput; for ocr-rec (runs of ~8 ms, bodies of 184 KB
    # read and decoded while others run) 5 ms cost 21-35 % of goodput under overload.
    standing_queue_target_ms: float = Field(0.0, ge=0, le=60_000)
    parameters: dict[str, Any] = {}
    inputs: dict[str, InputLimits] = {}


def _explain(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        unit = UNITS.get(str(err["loc"][-1]), "") if err["loc"] else ""
        value = err.get("input")
        lines.append(
            f"{path}: field '{loc}' = {value!r}: {err['msg']}"
            + (f" (unit: {unit})" if unit else "")
        )
    return "\n".join(lines)


def load_config(path: Path) -> ModelConfig:
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ModelConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ModelConfigError(f"{path}: expected a mapping of fields, got {type(doc).__name__}")
    try:
        cfg = ModelConfig.model_validate(doc)
    except ValidationError as exc:
        raise ModelConfigError(_explain(path, exc)) from None
    if cfg.name != path.parent.name:
        raise ModelConfigError(
            f"{path}: field 'name' = {cfg.name!r} must equal the directory name "
            f"{path.parent.name!r}"
        )
    if cfg.platform == "edgesplit-pipeline" and not cfg.pipeline:
        raise ModelConfigError(f"{path}: field 'pipeline' is required for edgesplit-pipeline")
    if cfg.dynamic_batching and cfg.dynamic_batching.enabled and cfg.max_batch_size < 1:
        raise ModelConfigError(
            f"{path}: field 'dynamic_batching' needs 'max_batch_size' >= 1 "
            f"(got {cfg.max_batch_size}; unit: {UNITS['max_batch_size']})"
        )
    for name, lim in cfg.inputs.items():
        if lim.dims and lim.max_dims and len(lim.dims) != len(lim.max_dims):
            raise ModelConfigError(
                f"{path}: field 'inputs.{name}': dims {lim.dims} and max_dims {lim.max_dims} "
                "have different ranks"
            )
    return cfg
