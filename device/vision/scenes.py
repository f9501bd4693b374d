"""A second scene generator, independent of ``render.py``'s: free-form phrases, text on plates or
straight on the wall, clutter, small text, then a camera degradation (``degrade.py``).

``render.py`` makes the development frames (DejaVu/Liberation/FreeFont, a fixed sign-word list,
always on a plate). This module takes the fonts and the text source as arguments, so the same code
draws calibration frames (development fonts and words) and evaluation frames (other font families,
phrases written by hand in ``phrases.py``) without sharing either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from edgesplit.device.vision import degrade
from edgesplit.device.vision.render import FRAME_SIZE, SceneFrame, _background
from PIL import Image, ImageDraw, ImageFont

# Text height in pixels: normal signage at glasses distance vs. small print (labels, screens).
NORMAL_FONT_PX = (22, 48)
SMALL_FONT_PX = (11, 16)


def _clutter(img: Image.Image, rng: np.random.Generator) -> None:
    """Non-text distractors: boxes, discs, poles, cables, stripes (what a street scene adds)."""
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(int(rng.integers(20, 45))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = int(rng.integers(-40, w)), int(rng.integers(-40, h))
        x1, y1 = x0 + int(rng.integers(8, 160)), y0 + int(rng.integers(8, 160))
        kind = int(rng.integers(5))
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), outline=colour, width=int(rng.integers(1, 6)))
        elif kind == 2:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 5)))
        elif kind == 3:
            pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(4)]
            draw.line(pts, fill=colour, width=int(rng.integers(1, 3)))
        else:
            for k in range(int(rng.integers(3, 9))):
                draw.line((x0 + 6 * k, y0, x0 + 6 * k, y1), fill=colour, width=2)


def _ink_for(plate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ink = rng.integers(0, 256, 3)
    if np.abs(ink.astype(int) - plate.astype(int)).sum() < 240:
        ink = np.where(plate.mean() > 127, rng.integers(0, 70, 3), rng.integers(190, 256, 3))
    return ink


def compose(
    seed: int,
    condition: str,
    fonts: Sequence[str],
    line_text: Callable[[np.random.Generator], str],
    size: tuple[int, int] = FRAME_SIZE,
) -> SceneFrame:
    """One frame for ``condition`` with its ground truth; same arguments, same pixels."""
    if condition not in degrade.CONDITIONS:
        raise ValueError(f"condition={condition!r}: expected one of {degrade.CONDITIONS}")
    rng = np.random.default_rng(seed)
    w, h = size
    img = _background(rng, w, h)
    if condition == "clutter":
        _clutter(img, rng)
    lo, hi = SMALL_FONT_PX if condition == "small_text" else NORMAL_FONT_PX
    n_lines = int(rng.integers(2, 5)) if condition == "small_text" else int(rng.integers(1, 4))
    y = int(rng.integers(15, 60))
    lines: list[str] = []
    for _ in range(n_lines):
        text = line_text(rng)
        font = ImageFont.truetype(str(rng.choice(list(fonts))), int(rng.integers(lo, hi + 1)))
        left, top, right, bottom = (int(v) for v in font.getbbox(text))
        tw, th = right - left, bottom - top
        pad_x, pad_y = max(4, th // 3), max(3, th // 4)
        if tw + 2 * pad_x > w - 20 or y + th + 2 * pad_y + 10 > h:
            continue
        x = int(rng.integers(10, max(11, w - tw - 2 * pad_x - 10)))
        region = np.asarray(img, np.float32)[y : y + th + 2 * pad_y, x : x + tw + 2 * pad_x]
        on_plate = rng.random() < 0.6 or condition == "clutter"
        plate = rng.integers(0, 256, 3) if on_plate else region.reshape(-1, 3).mean(0)
        ink = _ink_for(plate, rng)
        layer = Image.new(
            "RGBA",
            (tw + 2 * pad_x, th + 2 * pad_y),
            (*map(int, plate), 255 if on_plate else 0),
        )
        ImageDraw.Draw(layer).text(
            (pad_x - left, pad_y - top), text, font=font, fill=(*map(int, ink), 255)
        )
        layer = layer.rotate(
            float(rng.uniform(-5, 5)), expand=True, resample=Image.Resampling.BICUBIC
        )
        img.paste(layer, (x, y), layer)
        lines.append(text)
        y += layer.height + int(rng.integers(8, 40))
    if not lines:  # nothing fitted: one short line is always possible
        return compose(seed + 1_000_003, condition, fonts, line_text, size)
    arr = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(0, 3), (h, w, 3))
    image = degrade.apply(condition, np.clip(arr, 0, 255).astype(np.uint8), rng)
    return SceneFrame(image, tuple(lines))
