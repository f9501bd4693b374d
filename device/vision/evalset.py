"""The OCR evaluation set and the calibration/validation frames, kept apart by font family, text
source and seed.

| set          | fonts (``fonts.py``)        | text                     | seeds              |
|--------------|-----------------------------|--------------------------|--------------------|
| evaluation   | Noto, Roboto, Lato, URW ... | ``phrases.PHRASES``      | 500 000 + ...      |
| calibration  | DejaVu, Liberation, FreeFont| ``render.WORDS``         | 900 000 + ...      |
| validation   | DejaVu, Liberation, FreeFont| ``render.WORDS``         | 700 000 + ...      |

Validation frames choose each stage's precision (``ocr.choose_precisions``); the evaluation set is
only ever measured. Each set covers every condition in ``degrade.CONDITIONS``. Real photos come from
scikit-image's bundled data (a photographed book page).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from edgesplit.device.vision import degrade, fonts, phrases, render, scenes
from edgesplit.device.vision.render import SceneFrame

EVAL_SEED, VALIDATION_SEED, CALIBRATION_SEED = 500_000, 700_000, 900_000
SEEDS_PER_CONDITION = 10_000


def _first_seed(base: int, condition: str) -> int:
    return base + degrade.CONDITIONS.index(condition) * SEEDS_PER_CONDITION


def evaluation_frames(condition: str, count: int) -> list[SceneFrame]:
    """``count`` evaluation frames of one condition (evaluation fonts, hand-written phrases)."""
    first = _first_seed(EVAL_SEED, condition)
    return [
        scenes.compose(first + i, condition, fonts.evaluation_fonts(), phrases.phrase_line)
        for i in range(count)
    ]


def _dev_frames(base: int, condition: str, count: int) -> list[SceneFrame]:
    first = _first_seed(base, condition)
    return [
        scenes.compose(first + i, condition, fonts.calibration_fonts(), render._line_text)
        for i in range(count)
    ]


def validation_frames(condition: str, count: int) -> list[SceneFrame]:
    """Development fonts and words, degraded like the device sees them: for choosing precisions."""
    return _dev_frames(VALIDATION_SEED, condition, count)


def calibration_frames(per_condition: int) -> list[SceneFrame]:
    """Development fonts and words under every condition, interleaved (calibration order)."""
    by_condition = [_dev_frames(CALIBRATION_SEED, c, per_condition) for c in degrade.CONDITIONS]
    return [f for group in zip(*by_condition, strict=True) for f in group]


@dataclass(frozen=True)
class RealPhoto:
    name: str
    image: np.ndarray  # H x W x 3 uint8 RGB
    text: str


# scikit-image's data.page(): a 384x191 greyscale photo of a printed book page. Transcribed by
# hand; the cropped last line ("Image pro...", cut by the frame edge) is left out.
PAGE_TEXT = (
    "Region-based segmentation "
    "Let us first determine markers of the coins and the "
    "background. These markers are pixels that we can label "
    "unambiguously as either object or background. Here, "
    "the markers are found at the two extreme parts of the "
    "histogram of grey values: "
    ">>> markers = np.zeros_like(coins)"
)


def real_photos() -> list[RealPhoto]:
    """The photographed page at its native 384x191 and bicubically enlarged 4x (1536x764, the
    size a camera frame would have), so the detector's input-size rule meets both."""
    from PIL import Image
    from skimage import data

    grey = data.page()
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    big = np.asarray(
        Image.fromarray(rgb).resize((rgb.shape[1] * 4, rgb.shape[0] * 4), Image.Resampling.BICUBIC)
    )
    return [RealPhoto("skimage-page", rgb, PAGE_TEXT), RealPhoto("skimage-page-x4", big, PAGE_TEXT)]
