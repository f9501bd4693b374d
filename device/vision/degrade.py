"""What a glasses camera does to a frame: low light with sensor noise, motion blur, JPEG at q30,
perspective. Parameters are drawn from the generator passed in, so a seed fixes the pixels.

Ranges (see docs/REFERENCE.md-style reasoning in each docstring) are chosen so a human still
reads the text: the point is to measure what INT8 loses where FP32 still reads, not to make
frames unreadable.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Post-render degradations; ``small_text`` and ``clutter`` change the rendering instead.
CONDITIONS = (
    "clean",
    "low_light",
    "motion_blur",
    "jpeg_q30",
    "perspective",
    "small_text",
    "clutter",
)
JPEG_QUALITY = 30


def low_light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scene at 4-15 % of the exposure, shot noise (200-500 e- full well) and read noise, then the
    camera's auto-exposure gain (bright end to 45-75 %, at most 8x) that amplifies the noise too."""
    x = image.astype(np.float32) / 255.0
    x = x ** float(rng.uniform(1.0, 1.3)) * float(rng.uniform(0.04, 0.15))
    full_well = float(rng.uniform(200, 500))
    x = rng.poisson(x * full_well).astype(np.float32) / full_well
    x += rng.normal(0.0, float(rng.uniform(0.003, 0.010)), x.shape).astype(np.float32)
    gain = min(8.0, float(rng.uniform(0.45, 0.75)) / max(float(np.percentile(x, 99)), 1e-3))
    return np.clip(x * gain * 255.0 + 0.5, 0, 255).astype(np.uint8)


def motion_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A straight 5-13 px smear at a random angle (head movement during a 1/30 s exposure)."""
    import cv2  # lazily: on a Pi without libGL the device side must still import this module

    length = int(rng.integers(5, 14))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
    kernel = np.asarray(cv2.warpAffine(kernel, rot, (length, length)), np.float32)
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """Re-encode as JPEG (Pillow's 4:2:0 chroma) and decode: block and ringing artefacts."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def perspective(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame seen off-axis: each corner moved by up to 12 % of the frame size."""
    import cv2

    h, w = image.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    jitter = rng.uniform(-0.12, 0.12, (4, 2)) * np.array([w, h], np.float64)
    dst = np.clip(src + jitter, [0, 0], [w, h]).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(
        image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def apply(condition: str, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The post-render degradation of ``condition`` (identity for the rendering-time ones)."""
    if condition not in CONDITIONS:
        raise ValueError(f"condition={condition!r}: expected one of {CONDITIONS}")
    if condition == "low_light":
        return low_light(image, rng)
    if condition == "motion_blur":
        return motion_blur(image, rng)
    if condition == "jpeg_q30":
        return jpeg(image)
    if condition == "perspective":
        return perspective(image, rng)
    return image
