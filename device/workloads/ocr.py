"""``glasses-ocr``: read text in the scene with PP-OCRv4 (det + cls + rec) from the RapidOCR wheel.

RapidOCR's own pre/post-processing (DB box decoding, crop/rotate, CTC decoding) runs unchanged
except the detector's input size, which we set ourselves (:class:`DetSizing`): RapidOCR 1.4.4
ignores ``det_limit_side_len`` when ``det_limit_type`` is ``max``. FP32 models come from the wheel;
INT8 models are built here, and each stage keeps INT8 only where the measured CER allows
(:func:`choose_precisions`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from edgesplit.device.errors import ModelFileError
from edgesplit.device.metrics import character_error_rate, word_accuracy
from edgesplit.device.paths import built_models_dir
from edgesplit.device.quantize import QuantSettings, quantize_static_int8, settings_for_cpu
from edgesplit.device.runtime import open_session
from edgesplit.device.vision import degrade, evalset, images
from edgesplit.device.vision.render import SceneFrame, frames

STAGES = ("det", "cls", "rec")
FP32_FILES = {
    "det": "ch_PP-OCRv4_det_infer.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "rec": "ch_PP-OCRv4_rec_infer.onnx",
}
# Development frames (render.py): seeds 0.. for the quick check, 10 000.. for latency.
CALIBRATION_SEED, EVAL_SEED = 10_000, 0
# The INT8 build's recipe: a new recipe gets new file names, so a stale build is never reused.
RECIPE = "deg3"
# A stage stays INT8 when, on the validation frames, it costs at most this many CER points
# overall and at most PER_CONDITION_BUDGET on any one condition (the bar is 1 point).
OVERALL_BUDGET, PER_CONDITION_BUDGET = 0.005, 0.01


@dataclass(frozen=True)
class DetSizing:
    """The detector's input: enlarge until the short side is ``min_short_px``, shrink until the
    long side is at most ``max_long_px`` (the cap wins), rounded to multiples of 32."""

    min_short_px: int
    max_long_px: int

    def scale(self, h: int, w: int) -> float:
        up = max(1.0, self.min_short_px / min(h, w))
        return min(up, self.max_long_px / max(h, w))


# Device: a 640x480 frame runs at native size; a small photo (the 384x191 page) is enlarged to a
# 480 px short side, a large one shrunk to a 960 px long side (README, "glasses-ocr").
DEVICE_SIZING = DetSizing(min_short_px=480, max_long_px=960)
# DB box score threshold: RapidOCR's 0.5 drops low-contrast lines on real photos (the page loses
# 4 of 7 lines); 0.3 keeps them (README, "glasses-ocr").
DEVICE_BOX_THRESH = 0.3
# The 180-degree line classifier stays off: glasses frames hold upright text, and on the real
# photo the classifier flipped an upright line (score 0.84 FP32, 0.98 INT8), which the recogniser
# then misread and dropped, costing 17 CER points (README, "glasses-ocr"). ``use_cls=True`` runs it.
DEVICE_USE_CLS = False


def rapidocr_models_dir() -> Path:
    """Found without importing the package: its import loads OpenCV, which may not load."""
    from edgesplit.device.paths import package_dir

    return package_dir("rapidocr_onnxruntime", "rapidocr-onnxruntime==1.4.4") / "models"


def _int8_file(stage: str) -> Path:
    return built_models_dir() / f"ocr_{stage}_int8-{RECIPE}.onnx"


def manifest_path() -> Path:
    return built_models_dir() / f"ocr_int8-{RECIPE}.json"


def chosen_precisions() -> dict[str, str]:
    """Per-stage precision of the INT8 build ('int8' everywhere until a build has chosen)."""
    path = manifest_path()
    if path.is_file():
        return dict(json.loads(path.read_text())["precisions"])
    return dict.fromkeys(STAGES, "int8")


def model_paths(variant: str, precisions: dict[str, str] | None = None) -> dict[str, Path]:
    """``fp32``: the wheel's files. ``int8``: the device build, per stage INT8 or FP32 as chosen."""
    fp32 = {s: rapidocr_models_dir() / f for s, f in FP32_FILES.items()}
    if variant == "fp32":
        return fp32
    if variant == "int8":
        chosen = precisions or chosen_precisions()
        return {s: _int8_file(s) if chosen[s] == "int8" else fp32[s] for s in STAGES}
    raise ValueError(f"variant={variant!r}: expected 'fp32' or 'int8'")


@dataclass
class OcrResult:
    text: str  # lines top to bottom joined by spaces
    lines: list[tuple[str, float]]  # (text, recognition confidence)

    @property
    def confidence(self) -> float:
        return float(min((c for _, c in self.lines), default=0.0))


class _SizedDetPreProcess:
    """RapidOCR's DetPreProcess with our :class:`DetSizing` instead of its limit rules."""

    def __init__(self, sizing: DetSizing, mean: Sequence[float], std: Sequence[float]) -> None:
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

        self.inner = DetPreProcess(736, "min", list(mean), list(std))
        self.sizing = sizing

    def __call__(self, img: np.ndarray) -> np.ndarray:
        import cv2

        h, w = img.shape[:2]
        s = self.sizing.scale(h, w)
        rh, rw = max(32, round(h * s / 32) * 32), max(32, round(w * s / 32) * 32)
        resized = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_LINEAR)
        out = self.inner.permute(self.inner.normalize(resized))
        return np.ascontiguousarray(out[None].astype(np.float32))


class OcrPipeline:
    """PP-OCR through RapidOCR with the given model files and detector sizing.

    ``rec_keys`` names a character list for a recogniser whose ONNX file carries none (PP-OCRv5).
    """

    def __init__(
        self,
        paths: dict[str, Path],
        threads: int = 1,
        sizing: DetSizing = DEVICE_SIZING,
        box_thresh: float = DEVICE_BOX_THRESH,
        rec_keys: Path | None = None,
        use_cls: bool = DEVICE_USE_CLS,
        det_mean_std: tuple[Sequence[float], Sequence[float]] = ((0.5,) * 3, (0.5,) * 3),
    ) -> None:
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
        extra: dict[str, Any] = {"rec_keys_path": str(rec_keys)} if rec_keys else {}
        self.sizing, self.paths = sizing, dict(paths)
        self.engine = RapidOCR(
            det_model_path=str(paths["det"]),
            cls_model_path=str(paths["cls"]),
            rec_model_path=str(paths["rec"]),
            intra_op_num_threads=threads,
            inter_op_num_threads=1,
            det_box_thresh=box_thresh,
            use_cls=use_cls,
            # Global limits RapidOCR applies before detection: we bound inputs ourselves.
            max_side_len=images.MAX_SIDE_PX,
            min_side_len=images.MIN_SIDE_PX,
            **extra,
        )
        self.engine.text_det.postprocess_op.box_thresh = box_thresh
        mean, std = det_mean_std
        pre = _SizedDetPreProcess(sizing, mean, std)
        self.engine.text_det.get_preprocess = lambda _max_wh: pre

    def __call__(self, image: np.ndarray) -> OcrResult:
        image = images.check_image(image)
        # RapidOCR expects OpenCV's BGR order for ndarray input.
        result, _ = self.engine(np.ascontiguousarray(image[:, :, ::-1]))
        lines = [(str(r[1]), float(r[2])) for r in (result or [])]
        return OcrResult(" ".join(t for t, _ in lines), lines)


class _Tap:
    """Wraps a RapidOCR session call and records every input batch it sees (for calibration)."""

    def __init__(self, infer: Callable) -> None:
        self.infer = infer
        self.seen: list[np.ndarray] = []

    def __call__(self, x):
        self.seen.append(np.array(x))
        return self.infer(x)

    def __getattr__(self, name):
        return getattr(self.infer, name)


# Calibration: per condition 4 degraded frames (development fonts and words) + 8 plain ones.
CALIBRATION_PER_CONDITION, CALIBRATION_PLAIN = 4, 8
# Precision choice: 4 validation frames per condition (development fonts, other seeds).
VALIDATION_PER_CONDITION = 4


def calibration_images() -> list[np.ndarray]:
    degraded = evalset.calibration_frames(CALIBRATION_PER_CONDITION)
    plain = frames(CALIBRATION_SEED, CALIBRATION_PLAIN)
    return [f.image for f in degraded + plain]


def calibration_inputs(images_: Sequence[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Run the FP32 device pipeline over ``images_``, capturing each stage's real inputs."""
    pipe = OcrPipeline(model_paths("fp32"), threads=2, use_cls=True)  # cls needs inputs too
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
    for image in images_:
        pipe(image)
    return {s: t.seen for s, t in taps.items()}


def _det_stem_and_head() -> list[str]:
    import onnx

    model = onnx.load(str(model_paths("fp32")["det"]), load_external_data=False)
    convs = [n.name for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    return convs[:1] + convs[-3:]


def stage_candidates(settings: QuantSettings) -> dict[str, list[tuple[str, QuantSettings]]]:
    """Per stage, the INT8 forms to try, smallest first; the first that survives is kept."""
    return {
        # DB det: static INT8 throughout cost 1.2 CER points on motion blur in the validation
        # frames; keeping the stem conv and the three head convs (probability map) FP32 cost none.
        "det": [
            ("static", settings),
            ("static-stem-head-fp32", replace(settings, nodes_to_exclude=_det_stem_and_head())),
        ],
        "cls": [("static", settings)],
        # rec (PP-LCNetV3 convs + SVTR blocks): static INT8 on the MatMuls cost ~7 CER points
        # (README, "Quantisation"); static Conv lost 22 points on motion blur in the degraded
        # validation frames, dynamic MatMul alone lost nothing.
        "rec": [
            (
                "static-conv+dynamic-matmul",
                replace(settings, op_types_to_quantize=["Conv"], dynamic_op_types=["MatMul"]),
            ),
            (
                "dynamic-matmul",
                replace(settings, op_types_to_quantize=[], dynamic_op_types=["MatMul"]),
            ),
        ],
    }


Reader = Callable[[np.ndarray], OcrResult]


def evaluate(pipe: Reader, eval_frames: Sequence[SceneFrame]) -> dict[str, float]:
    preds = [pipe(f.image).text for f in eval_frames]
    refs = [f.text for f in eval_frames]
    return {
        "cer": character_error_rate(preds, refs),
        "word_accuracy": word_accuracy(preds, refs),
    }


def evaluate_conditions(
    pipe: Reader,
    per_condition: int,
    frames_for: Callable[[str, int], list[SceneFrame]] = evalset.evaluation_frames,
    conditions: Sequence[str] = degrade.CONDITIONS,
) -> dict[str, dict[str, float]]:
    """Metrics per condition, plus ``all`` (CER over every frame together)."""
    out: dict[str, dict[str, float]] = {}
    preds: list[str] = []
    refs: list[str] = []
    for cond in conditions:
        fs = frames_for(cond, per_condition)
        p = [pipe(f.image).text for f in fs]
        r = [f.text for f in fs]
        out[cond] = {"cer": character_error_rate(p, r), "word_accuracy": word_accuracy(p, r)}
        preds += p
        refs += r
    out["all"] = {
        "cer": character_error_rate(preds, refs),
        "word_accuracy": word_accuracy(preds, refs),
    }
    return out


def choose_precisions(
    candidates: dict[str, list[tuple[str, Path]]], per_condition: int = VALIDATION_PER_CONDITION
) -> dict[str, Any]:
    """Per stage, the first candidate that, swapped alone into the FP32 pipeline, costs at most
    OVERALL_BUDGET CER overall and PER_CONDITION_BUDGET on every condition of the validation
    frames (development fonts; never the evaluation set); none passing keeps the stage FP32."""
    fp32 = model_paths("fp32")
    base = evaluate_conditions(OcrPipeline(fp32), per_condition, evalset.validation_frames)
    precisions: dict[str, str] = {}
    forms: dict[str, str] = {}
    trials: dict[str, dict[str, dict[str, float]]] = {}
    for stage in STAGES:
        precisions[stage], forms[stage], trials[stage] = "fp32", "fp32", {}
        for form, path in candidates[stage]:
            swapped = evaluate_conditions(
                OcrPipeline(fp32 | {stage: path}), per_condition, evalset.validation_frames
            )
            worst = max(swapped[c]["cer"] - base[c]["cer"] for c in degrade.CONDITIONS)
            overall = swapped["all"]["cer"] - base["all"]["cer"]
            trials[stage][form] = {"overall_delta": overall, "worst_condition_delta": worst}
            if overall <= OVERALL_BUDGET and worst <= PER_CONDITION_BUDGET:
                precisions[stage], forms[stage] = "int8", form
                if path != _int8_file(stage):
                    path.replace(_int8_file(stage))
                    path.with_suffix(".json").replace(_int8_file(stage).with_suffix(".json"))
                break
    return {
        "precisions": precisions,
        "forms": forms,
        "validation_frames": per_condition * len(degrade.CONDITIONS),
        "fp32_validation_cer": {c: m["cer"] for c, m in base.items()},
        "int8_swap_deltas": trials,
    }


def build_int8(settings: QuantSettings | None = None) -> dict[str, Any]:
    """Quantise det, cls and rec (calibrated on degraded development frames), then keep each
    stage INT8 only where its measured CER allows; writes the choice to :func:`manifest_path`."""
    settings = settings or settings_for_cpu()
    captured = calibration_inputs(calibration_images())
    fp32 = model_paths("fp32")
    built: dict[str, list[tuple[str, Path]]] = {}
    reports: dict[str, Any] = {}
    for stage, forms in stage_candidates(settings).items():
        name = open_session(fp32[stage]).get_inputs()[0].name
        feeds = [{name: x.astype(np.float32)} for x in captured[stage]]
        if not feeds:
            raise ModelFileError(f"calibration produced no inputs for the {stage} stage")
        built[stage] = []
        for i, (form, st) in enumerate(forms):
            out = (
                _int8_file(stage)
                if i == 0
                else _int8_file(stage).with_stem(f"ocr_{stage}_int8-{RECIPE}-{form}")
            )
            reports[f"{stage}/{form}"] = quantize_static_int8(fp32[stage], out, feeds, st)
            built[stage].append((form, out))
    manifest = {
        "recipe": RECIPE,
        "device_sizing": asdict(DEVICE_SIZING),
        "calibration_frames": len(degrade.CONDITIONS) * CALIBRATION_PER_CONDITION
        + CALIBRATION_PLAIN,
        **choose_precisions(built),
        "quantisation": reports,
    }
    manifest_path().write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
