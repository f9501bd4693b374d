"""Servable models: ONNX Runtime sessions (whole models or split tails) and device pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from edgesplit.cloud.config import ModelConfig
from edgesplit.cloud.datatypes import OIP_TO_NUMPY, ORT_TO_OIP, oip_datatype
from edgesplit.cloud.errors import ModelConfigError, OipError
from edgesplit.cloud.protocol import TensorMetadata
from edgesplit.device.errors import ModelFileError
from edgesplit.device.paths import package_dir

from edgesplit.errors import ConfigError

LEGACY_PACKAGES = {p: f"edgesplit.{p}" for p in ("device", "cloud", "sim")}


def resolve_source(model_dir: Path, ref: str) -> Path:
    """``pkg://package/sub/path`` (inside an installed package) or a path relative to the model."""
    if ref.startswith("pkg://"):
        package, _, rel = ref[len("pkg://") :].partition("/")
        # device/, cloud/ and sim/ install as edgesplit.device, ... (one import name)
        package = LEGACY_PACKAGES.get(package, package)
        try:
            path = package_dir(package, package) / rel
        except ModelFileError:
            raise ModelConfigError(
                f"{model_dir}: package {package!r} of {ref!r} is not installed"
            ) from None
    else:
        path = (model_dir / ref).resolve()
    if not path.is_file():
        raise ModelConfigError(f"{model_dir}: model file {ref!r} not found (looked at {path})")
    return path


def _tensor_meta(node_args, batch: bool) -> list[TensorMetadata]:
    out = []
    for arg in node_args:
        shape = [d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape]
        if batch and shape:
            shape[0] = -1
        out.append(TensorMetadata(name=arg.name, datatype=ORT_TO_OIP[arg.type], shape=shape))
    return out


class OnnxModel:
    """One version of an ONNX model on ONNX Runtime."""

    platform = "onnxruntime"

    def __init__(self, cfg: ModelConfig, version: str, model: Path | bytes) -> None:
        self.cfg, self.version = cfg, version
        available = set(ort.get_available_providers())
        self.providers = [p for p in cfg.execution_providers if p in available]
        if not self.providers:
            raise ModelConfigError(
                f"{cfg.name}: none of execution_providers {cfg.execution_providers} is available "
                f"in this onnxruntime build ({sorted(available)})"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cfg.intra_op_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(source, sess_options=opts, providers=self.providers)
        except Exception as exc:
            raise ModelConfigError(f"{cfg.name} v{version}: cannot load the model: {exc}") from None
        self.providers = self.session.get_providers()
        batch = cfg.max_batch_size > 0
        self.inputs = _tensor_meta(self.session.get_inputs(), batch)
        self.outputs = _tensor_meta(self.session.get_outputs(), batch)
        self.output_names = [o.name for o in self.outputs]

    def validate(self, inputs: dict[str, np.ndarray]) -> int:
        """Check names, datatypes and shapes; returns the batch size (1 if unbatched)."""
        want = {t.name: t for t in self.inputs}
        missing, extra = sorted(set(want) - set(inputs)), sorted(set(inputs) - set(want))
        if missing or extra:
            raise OipError(
                f"model '{self.cfg.name}' takes inputs {sorted(want)}; missing {missing}, "
                f"unexpected {extra}"
            )
        batch = None
        for name, arr in inputs.items():
            spec = want[name]
            if arr.dtype != OIP_TO_NUMPY[spec.datatype]:
                raise OipError(
                    f"input '{name}' has datatype {oip_datatype(arr)}, model '{self.cfg.name}' "
                    f"expects {spec.datatype}"
                )
            if len(arr.shape) != len(spec.shape) or any(
                s != -1 and s != a for s, a in zip(spec.shape, arr.shape, strict=True)
            ):
                raise OipError(
                    f"input '{name}' has shape {list(arr.shape)}, model '{self.cfg.name}' expects "
                    f"{spec.shape} (-1 = any)"
                )
            if self.cfg.max_batch_size:
                if batch is not None and arr.shape[0] != batch:
                    raise OipError("all inputs must have the same batch size (first dimension)")
                batch = arr.shape[0]
        if self.cfg.max_batch_size and not 1 <= (batch or 0) <= self.cfg.max_batch_size:
            raise OipError(
                f"batch size {batch} is outside 1..{self.cfg.max_batch_size} for model "
                f"'{self.cfg.name}' (max_batch_size)"
            )
        return batch or 1

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, outs, strict=True))


def split_tail_model(source: Path, cut_tensor: str) -> bytes:
    """The sub-graph from ``cut_tensor`` to the model's outputs, with a free batch dimension."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(source)))
    names = {o for n in model.graph.node for o in n.output}
    if cut_tensor not in names:
        raise ModelConfigError(f"{source.name}: no tensor named {cut_tensor!r} to cut at")
    outputs = [o.name for o in model.graph.output]
    tail = onnx.utils.Extractor(model).extract_model([cut_tensor], outputs)
    for vi in list(tail.graph.input) + list(tail.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "batch"
    return tail.SerializeToString()


class OcrPipelineModel:
    """``glasses-ocr`` end to end on the server: RGB image in, text out (FP32 PP-OCRv4 det, a
    PP-OCRv4 + PP-OCRv5 recogniser ensemble, optional second detector scale; cloud/ocr_model.py)."""

    platform = "edgesplit-pipeline"

    def __init__(self, cfg: ModelConfig, version: str) -> None:
        from edgesplit.cloud.ocr_model import CLOUD_SIZINGS, CROP_VARIANTS, CloudOcr

        self.cfg, self.version = cfg, version
        params = cfg.parameters
        scales = int(params.get("detector_scales", len(CLOUD_SIZINGS)))
        if not 1 <= scales <= len(CLOUD_SIZINGS):
            raise ModelConfigError(
                f"{cfg.name}: parameters.detector_scales = {scales}: "
                f"expected 1..{len(CLOUD_SIZINGS)}"
            )
        variants = list(params.get("crop_variants", CloudOcr.DEFAULT_VARIANTS))
        unknown = sorted(set(variants) - set(CROP_VARIANTS))
        if unknown:
            raise ModelConfigError(
                f"{cfg.name}: parameters.crop_variants has {unknown}: expected some of "
                f"{sorted(CROP_VARIANTS)}"
            )
        self.pipe = CloudOcr(
            cfg.intra_op_threads,
            sizings=CLOUD_SIZINGS[:scales],
            use_v5=bool(params.get("use_v5_recogniser", True)),
            variants=variants,
            denoise=bool(params.get("low_light_enhance", True)),
            second_detector=bool(params.get("second_detector", True)),
        )
        self.providers = ["CPUExecutionProvider"]
        self.inputs = [TensorMetadata(name="image", datatype="UINT8", shape=[-1, -1, 3])]
        self.outputs = [
            TensorMetadata(name="text", datatype="BYTES", shape=[1]),
            TensorMetadata(name="confidence", datatype="FP32", shape=[1]),
        ]

    def validate(self, inputs: dict[str, np.ndarray]) -> int:
        img = inputs.get("image")
        if set(inputs) != {"image"} or img is None:
            raise OipError(f"model '{self.cfg.name}' takes one input 'image' (UINT8 [H, W, 3])")
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise OipError(
                f"input 'image' must be UINT8 [H, W, 3], got {img.dtype} {list(img.shape)}"
            )
        if not (8 <= img.shape[0] <= 4096 and 8 <= img.shape[1] <= 4096):
            raise OipError(f"input 'image' is {img.shape[1]}x{img.shape[0]} px; 8..4096 supported")
        return 1

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        res = self.pipe(np.ascontiguousarray(inputs["image"]))
        return {
            "text": np.array([res.text.encode()], dtype=object),
            "confidence": np.array([res.confidence], dtype=np.float32),
        }


class IntentPipelineModel:
    """``phone-intent`` on the server: FP32 MiniLM + a trained head with calibrated out-of-scope.

    See ``device/workloads/intent_cloud.py``. Text (BYTES [N]) in; intent (BYTES [N]) and
    confidence (FP32 [N]) out; an out-of-scope answer's confidence is 1 - the best intent's.
    """

    platform = "edgesplit-pipeline"

    def __init__(self, cfg: ModelConfig, version: str) -> None:
        from edgesplit.device.workloads.intent_cloud import CloudIntentClassifier

        self.cfg, self.version = cfg, version
        max_tokens = int(cfg.parameters.get("max_tokens", 256))
        self.clf = CloudIntentClassifier(cfg.intra_op_threads, max_tokens)
        self.tokenizer = self.clf.tokenizer
        self.providers = ["CPUExecutionProvider"]
        self.inputs = [TensorMetadata(name="text", datatype="BYTES", shape=[-1])]
        self.outputs = [
            TensorMetadata(name="intent", datatype="BYTES", shape=[-1]),
            TensorMetadata(name="confidence", datatype="FP32", shape=[-1]),
        ]

    def validate(self, inputs: dict[str, np.ndarray]) -> int:
        text = inputs.get("text")
        if set(inputs) != {"text"} or text is None or text.ndim != 1 or text.dtype != object:
            raise OipError(f"model '{self.cfg.name}' takes one input 'text' (BYTES [N])")
        if not 1 <= len(text) <= 64:
            raise OipError(f"input 'text' has {len(text)} utterances; 1..64 per request")
        for i, t in enumerate(text):
            try:
                self.tokenizer.clean(t)
            except ValueError as exc:
                raise OipError(f"input 'text'[{i}]: {exc}") from None
        return 1

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        labels, conf = self.clf.classify(list(inputs["text"]))
        return {
            "intent": np.array([s.encode() for s in labels], dtype=object),
            "confidence": conf.astype(np.float32),
        }


def pipeline_class(name: str | None) -> type:
    """The model class a workload plugin registered for ``pipeline: name``."""
    from edgesplit.device.workloads.registry import cloud_pipeline

    try:
        return cloud_pipeline(str(name))
    except ConfigError as exc:
        raise ModelConfigError(f"field 'pipeline' = {name!r}: {exc}") from None


def load_model(cfg: ModelConfig, model_dir: Path) -> dict[str, Any]:
    """All versions of one configured model, keyed by version string."""
    if cfg.platform == "edgesplit-pipeline":
        try:
            cls = pipeline_class(cfg.pipeline)
        except ModelConfigError as exc:
            raise ModelConfigError(f"{model_dir}/config.yaml: {exc}") from None
        return {str(cfg.version): cls(cfg, str(cfg.version))}
    versions = {
        d.name: d / "model.onnx"
        for d in sorted(model_dir.iterdir())
        if d.is_dir() and d.name.isdigit() and (d / "model.onnx").is_file()
    }
    if versions:
        return {v: OnnxModel(cfg, v, p) for v, p in versions.items()}
    if cfg.split_tail:
        src = resolve_source(model_dir, cfg.split_tail.source)
        blob = split_tail_model(src, cfg.split_tail.cut_tensor)
        return {str(cfg.version): OnnxModel(cfg, str(cfg.version), blob)}
    if cfg.model_file:
        path = resolve_source(model_dir, cfg.model_file)
        return {str(cfg.version): OnnxModel(cfg, str(cfg.version), path)}
    raise ModelConfigError(
        f"{model_dir}: no version directory with model.onnx, and none of model_file / split_tail"
    )


def batch_key(inputs: dict[str, np.ndarray]) -> tuple:
    """Requests can share a batch when everything but the batch dimension matches."""
    return tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items()))
