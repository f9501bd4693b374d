"""Static INT8 quantisation with ONNX Runtime's tooling, with calibration from workload data.

Conv nets get *static* quantisation (``quant_pre_process`` then ``quantize_static``, per-channel
weights). Dynamic quantisation is for transformers/RNNs and makes conv nets many times slower, so
this module refuses to apply it to a model containing Conv nodes.
"""

from __future__ import annotations

import contextlib
import json
import platform
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort
from edgesplit.device.cpuinfo import CpuInfo, read_cpuinfo
from edgesplit.device.errors import ModelFileError
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process


@dataclass
class QuantSettings:
    """What ``quantize_static`` is told; :func:`settings_for_cpu` picks them per CPU."""

    per_channel: bool = True
    reduce_range: bool = False
    activation_type: str = "QUInt8"
    weight_type: str = "QInt8"
    calibrate_method: str = "MinMax"
    op_types_to_quantize: list[str] | None = None
    nodes_to_exclude: list[str] = field(default_factory=list)
    # Op types left float by the static pass and then dynamically quantised (weights INT8,
    # activations quantised at run time): the transformer MatMuls inside a conv net, whose
    # activation ranges a static calibration captures badly (PP-OCRv4 rec's SVTR blocks).
    # With ``op_types_to_quantize=[]`` (not None, which means all) the static pass is skipped.
    dynamic_op_types: list[str] = field(default_factory=list)
    # QDQ (Q/DQ pairs around float ops; ORT fuses them at load) or QOperator (QLinearConv etc.,
    # the fused form stored directly: fewer nodes and no per-bias scale/zero-point tensors).
    quant_format: str = "QDQ"
    # Short ids for tensor/node names: in tiny models the names are a large part of the file.
    compact_names: bool = False


def settings_for_cpu(cpu: CpuInfo | None = None) -> QuantSettings:
    """ORT's advice: U8S8 everywhere; on x86 without VNNI add ``reduce_range`` (7-bit weights)
    to avoid saturation in the AVX2 u8*s8 instruction path."""
    cpu = cpu or read_cpuinfo()
    x86 = cpu.machine.lower() in ("x86_64", "amd64", "i686")
    return QuantSettings(reduce_range=x86 and not cpu.fast_int8)


class ListCalibrationReader(CalibrationDataReader):
    """Feeds a fixed list of input dicts to the calibrator."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]) -> None:
        self._feeds = list(feeds)
        if not self._feeds:
            raise ValueError("calibration needs at least one input batch")
        self._it = iter(self._feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)


def _load(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        return onnx.load(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path} is not a valid ONNX file: {exc}") from exc


# Per-channel DequantizeLinear (an ``axis`` attribute) needs opset 13.
MIN_OPSET_PER_CHANNEL = 13


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def compact_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rename internal tensors to short hex ids, drop node names and value_info (in place).

    Graph input/output names are kept, so callers see the same signature.
    """
    graph = model.graph
    keep = {i.name for i in graph.input} | {o.name for o in graph.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, format(len(names), "x"))

    for init in graph.initializer:
        init.name = short(init.name)
    for node in graph.node:
        node.name = ""
        node.doc_string = ""
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def _copy_metadata(src: onnx.ModelProto, dst_path: Path) -> None:
    """Quantisation drops ``metadata_props`` (PP-OCR keeps its character list there)."""
    if not src.metadata_props:
        return
    dst = onnx.load(str(dst_path))
    have = {p.key for p in dst.metadata_props}
    for prop in src.metadata_props:
        if prop.key not in have:
            dst.metadata_props.append(prop)
    onnx.save(dst, str(dst_path))


def quantize_static_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: Sequence[dict[str, np.ndarray]],
    settings: QuantSettings | None = None,
) -> dict:
    """Pre-process and statically quantise ``fp32_path`` to INT8 at ``out_path``.

    Returns a report (settings, versions, sizes) that is also written next to the model as JSON.
    """
    fp32_path, out_path = Path(fp32_path).resolve(), Path(out_path).resolve()
    src = _load(fp32_path)
    settings = settings or settings_for_cpu()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = fp32_path
        if settings.per_channel and _opset(src) < MIN_OPSET_PER_CHANNEL:
            source = Path(tmp) / "opset.onnx"
            onnx.save(onnx.version_converter.convert_version(src, MIN_OPSET_PER_CHANNEL), source)
        pre = Path(tmp) / "pre.onnx"
        # chdir: ORT's symbolic shape inference drops a temp file in the CWD when it gives up.
        with contextlib.chdir(tmp):
            try:
                quant_pre_process(str(source), str(pre), skip_symbolic_shape=False)
            except Exception:
                # Symbolic shape inference fails on some graphs; ONNX shape inference suffices.
                quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        skip_static = settings.op_types_to_quantize == []
        if skip_static and not settings.dynamic_op_types:
            raise ValueError("op_types_to_quantize=[] and no dynamic_op_types: nothing to quantise")
        static_out = Path(tmp) / "static.onnx" if settings.dynamic_op_types else out_path
        if skip_static:
            static_out = pre
        else:
            quantize_static(
                str(pre),
                str(static_out),
                ListCalibrationReader(calibration),
                quant_format=QuantFormat[settings.quant_format],
                per_channel=settings.per_channel,
                reduce_range=settings.reduce_range,
                activation_type=QuantType[settings.activation_type],
                weight_type=QuantType[settings.weight_type],
                calibrate_method=CalibrationMethod[settings.calibrate_method],
                op_types_to_quantize=settings.op_types_to_quantize,
                nodes_to_exclude=settings.nodes_to_exclude,
            )
        if settings.dynamic_op_types:
            quantize_dynamic(
                str(static_out),
                str(out_path),
                op_types_to_quantize=settings.dynamic_op_types,
                weight_type=QuantType.QInt8,
                reduce_range=settings.reduce_range,
            )
    if settings.compact_names:
        onnx.save(compact_names(onnx.load(str(out_path))), str(out_path))
    _copy_metadata(src, out_path)
    fmt = "" if skip_static else f"{settings.quant_format} static INT8"
    if settings.dynamic_op_types:
        dyn = f"dynamic INT8 for {'/'.join(settings.dynamic_op_types)}"
        fmt = f"{fmt} + {dyn}" if fmt else dyn
    report = {
        "source": fp32_path.name,
        "format": fmt,
        "settings": asdict(settings),
        "calibration_batches": len(calibration),
        "onnxruntime": ort.__version__,
        "machine": platform.machine(),
        "fp32_bytes": fp32_path.stat().st_size,
        "int8_bytes": out_path.stat().st_size,
    }
    out_path.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def quantize_dynamic_int8(fp32_path: str | Path, out_path: str | Path) -> dict:
    """Dynamic INT8 (weights only, activations at run time): for transformers, never conv nets."""
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    src = _load(fp32_path)
    if any(n.op_type == "Conv" for n in src.graph.node):
        raise ValueError(
            f"{fp32_path.name} contains Conv nodes: use quantize_static_int8; dynamic "
            "quantisation makes conv nets many times slower"
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(fp32_path), str(out_path), weight_type=QuantType.QInt8)
    _copy_metadata(src, out_path)
    return {
        "source": fp32_path.name,
        "format": "dynamic INT8",
        "onnxruntime": ort.__version__,
        "fp32_bytes": fp32_path.stat().st_size,
        "int8_bytes": out_path.stat().st_size,
    }
