"""``glasses-ocr``: read text in the scene with PP-OCRv4 (det + cls + rec) from the RapidOCR wheel.

RapidOCR's own pre/post-processing (DB box decoding, crop/rotate, CTC decoding) runs unchanged; we
hand it our model paths (FP32 from the wheel, INT8 built here) and explicit thread counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from edgesplit.device.errors import ModelFileError
from edgesplit.device.metrics import character_error_rate, word_accuracy
from edgesplit.device.paths import built_models_dir
from edgesplit.device.quantize import QuantSettings, quantize_static_int8, settings_for_cpu
from edgesplit.device.runtime import open_session
from edgesplit.device.vision.render import SceneFrame, frames

STAGES = ("det", "cls", "rec")
FP32_FILES = {
    "det": "ch_PP-OCRv4_det_infer.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "rec": "ch_PP-OCRv4_rec_infer.onnx",
}
# Seeds: calibration frames never overlap evaluation frames.
CALIBRATION_SEED, EVAL_SEED = 10_000, 0
# On the device the detector sees the 640x480 frame at native size (long side 640 px).
DEVICE_DET_LIMIT = {"det_limit_type": "max", "det_limit_side_len": 640}


def rapidocr_models_dir() -> Path:
    """Found without importing the package: its import loads OpenCV, which may not load."""
    from edgesplit.device.paths import package_dir

    return package_dir("rapidocr_onnxruntime", "rapidocr-onnxruntime==1.4.4") / "models"


def model_paths(variant: str) -> dict[str, Path]:
    if variant == "fp32":
        return {s: rapidocr_models_dir() / f for s, f in FP32_FILES.items()}
    if variant == "int8":
        return {s: built_models_dir() / f"ocr_{s}_int8.onnx" for s in STAGES}
    raise ValueError(f"variant={variant!r}: expected 'fp32' or 'int8'")


@dataclass
class OcrResult:
    text: str  # lines top to bottom joined by spaces
    lines: list[tuple[str, float]]  # (text, recognition confidence)

    @property
    def confidence(self) -> float:
        return float(min((c for _, c in self.lines), default=0.0))


class OcrPipeline:
    """PP-OCRv4 through RapidOCR with the given model files."""

    def __init__(self, paths: dict[str, Path], threads: int = 1, **det_options) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:  # a fresh Pi: OpenCV's libGL.so.1 / libgthread-2.0.so.0
            from edgesplit.device.errors import ToolMissingError

            raise ToolMissingError(
                f"glasses-ocr: RapidOCR does not load ({exc}); install the libraries OpenCV "
                "needs: sudo apt-get install libgl1 libglib2.0-0"
            ) from None

        for path in paths.values():
            open_session(path)  # a clear ModelFileError for a missing/corrupt file, early
        options = DEVICE_DET_LIMIT | det_options
        self.engine = RapidOCR(
            det_model_path=str(paths["det"]),
            cls_model_path=str(paths["cls"]),
            rec_model_path=str(paths["rec"]),
            intra_op_num_threads=threads,
            inter_op_num_threads=1,
            **options,
        )

    def __call__(self, image: np.ndarray) -> OcrResult:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image must be H x W x 3 uint8 RGB, got shape {image.shape} dtype {image.dtype}"
            )
        # RapidOCR expects OpenCV's BGR order for ndarray input.
        result, _ = self.engine(np.ascontiguousarray(image[:, :, ::-1]))
        lines = [(str(r[1]), float(r[2])) for r in (result or [])]
        return OcrResult(" ".join(t for t, _ in lines), lines)


class _Tap:
    """Wraps a RapidOCR session call and records every input batch it sees (for calibration)."""

    def __init__(self, infer: Callable) -> None:
        self.infer, self.seen = infer, []

    def __call__(self, x):
        self.seen.append(np.array(x))
        return self.infer(x)

    def __getattr__(self, name):
        return getattr(self.infer, name)


def calibration_inputs(n_frames: int = 24) -> dict[str, list[np.ndarray]]:
    """Run the FP32 pipeline over calibration frames, capturing each stage's real inputs."""
    pipe = OcrPipeline(model_paths("fp32"), threads=2)
    eng = pipe.engine
    taps = {
        "det": _Tap(eng.text_det.infer),
        "cls": _Tap(eng.text_cls.infer),
        "rec": _Tap(eng.text_rec.session),
    }
    eng.text_det.infer, eng.text_cls.infer, eng.text_rec.session = (
        taps["det"],
        taps["cls"],
        taps["rec"],
    )
    for frame in frames(CALIBRATION_SEED, n_frames):
        pipe(frame.image)
    return {s: t.seen for s, t in taps.items()}


def build_int8(settings: QuantSettings | None = None, n_frames: int = 24) -> dict[str, dict]:
    """Quantise det, cls and rec (static QDQ, per-channel) with calibration from rendered frames."""
    settings = settings or settings_for_cpu()
    per_stage = {
        "det": settings,
        "cls": settings,
        # Static INT8 on rec's SVTR MatMuls cost ~7 CER points in our measurements; static Conv +
        # dynamic MatMul costs <0.5 (README, "Quantisation").
        "rec": replace(settings, op_types_to_quantize=["Conv"], dynamic_op_types=["MatMul"]),
    }
    captured = calibration_inputs(n_frames)
    fp32, int8 = model_paths("fp32"), model_paths("int8")
    reports = {}
    for stage in STAGES:
        name = open_session(fp32[stage]).get_inputs()[0].name
        feeds = [{name: x.astype(np.float32)} for x in captured[stage]]
        if not feeds:
            raise ModelFileError(f"calibration produced no inputs for the {stage} stage")
        reports[stage] = quantize_static_int8(fp32[stage], int8[stage], feeds, per_stage[stage])
    return reports


def evaluate(pipe: OcrPipeline, eval_frames: list[SceneFrame]) -> dict[str, float]:
    preds = [pipe(f.image).text for f in eval_frames]
    refs = [f.text for f in eval_frames]
    return {
        "cer": character_error_rate(preds, refs),
        "word_accuracy": word_accuracy(preds, refs),
    }
