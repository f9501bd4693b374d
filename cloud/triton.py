"""A model's configuration in Triton's ``model_config`` JSON shape (``GET /v2/models/{m}/config``).

Triton tools (``tritonclient``'s ``get_model_config``, ``perf_analyzer``, model analyzer) read
this shape: dims exclude the batch dimension when ``max_batch_size`` > 0, datatypes are
``TYPE_*``, queue and delay live under ``dynamic_batching``.
"""

from __future__ import annotations

from typing import Any

from edgesplit.cloud.protocol import TensorMetadata

TRITON_TYPES = {
    "BOOL": "TYPE_BOOL",
    "UINT8": "TYPE_UINT8",
    "UINT16": "TYPE_UINT16",
    "UINT32": "TYPE_UINT32",
    "UINT64": "TYPE_UINT64",
    "INT8": "TYPE_INT8",
    "INT16": "TYPE_INT16",
    "INT32": "TYPE_INT32",
    "INT64": "TYPE_INT64",
    "FP16": "TYPE_FP16",
    "FP32": "TYPE_FP32",
    "FP64": "TYPE_FP64",
    "BYTES": "TYPE_STRING",
}


def _tensors(items: list[TensorMetadata], batched: bool) -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "data_type": TRITON_TYPES[t.datatype],
            "dims": t.shape[1:] if batched and t.shape else list(t.shape),
        }
        for t in items
    ]


def triton_config(
    cfg: Any,
    inputs: list[TensorMetadata],
    outputs: list[TensorMetadata],
    batching: bool,
    providers: list[str],
) -> dict[str, Any]:
    batched = cfg.max_batch_size > 0
    gpu = any(p.startswith(("CUDA", "Tensorrt")) for p in providers)
    doc: dict[str, Any] = {
        "name": cfg.name,
        "platform": "onnxruntime_onnx" if cfg.platform == "onnxruntime" else "",
        "backend": "onnxruntime" if cfg.platform == "onnxruntime" else "python",
        "version_policy": {"latest": {"num_versions": 1}},
        "max_batch_size": cfg.max_batch_size,
        "input": _tensors(inputs, batched),
        "output": _tensors(outputs, batched),
        "instance_group": [
            {"name": cfg.name, "kind": "KIND_GPU" if gpu else "KIND_CPU", "count": cfg.instances}
        ],
        "parameters": {
            "intra_op_thread_count": {"string_value": str(cfg.intra_op_threads)},
            "max_queue_size": {"string_value": str(cfg.max_queue_size)},
        },
    }
    if batching and cfg.dynamic_batching:
        doc["dynamic_batching"] = {
            "max_queue_delay_microseconds": round(cfg.dynamic_batching.max_queue_delay_ms * 1000),
            "default_queue_policy": {"max_queue_size": cfg.max_queue_size},
        }
    return doc
