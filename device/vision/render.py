"""Render text-in-scene frames (what a glasses camera sees: signs, labels, screens) with Pillow.

Each frame has 1-3 lines of sign-like text in varied fonts, sizes and colours over textured
backgrounds, with small rotations, blur and sensor noise. Ground truth is returned with the image.
Everything is fixed by the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FRAME_SIZE = (640, 480)  # width, height in pixels: a downscaled glasses camera frame

WORDS = (
    "EXIT",
    "Platform",
    "Gate",
    "Coffee",
    "Tea",
    "Open",
    "Closed",
    "Pharmacy",
    "Bakery",
    "Station",
    "Street",
    "Avenue",
    "Museum",
    "Hotel",
    "Parking",
    "Toilets",
    "Tickets",
    "Arrivals",
    "Departures",
    "Bus",
    "Tram",
    "Metro",
    "Taxi",
    "Entrance",
    "Push",
    "Pull",
    "Sale",
    "Fresh",
    "Bread",
    "Milk",
    "Menu",
    "Soup",
    "Salad",
    "Lunch",
    "Dinner",
    "Breakfast",
    "Market",
    "Library",
    "Bank",
    "Police",
    "Hospital",
    "North",
    "South",
    "East",
    "West",
    "Floor",
    "Room",
    "Office",
    "Welcome",
    "Danger",
    "Caution",
    "Wet",
    "Stop",
    "Slow",
    "School",
    "Zone",
    "Only",
    "Staff",
    "Private",
    "Garden",
    "Park",
    "Bridge",
    "Road",
    "Lane",
    "Square",
    "Books",
    "Music",
    "Cinema",
    "Theatre",
    "Check",
    "Baggage",
    "Lost",
    "Found",
    "Help",
    "Info",
    "Service",
    "Delivery",
)

FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype", "/Library/Fonts")


@lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """Upright Latin TrueType fonts installed on the system (DejaVu, Liberation, FreeFont)."""
    found = []
    for d in FONT_DIRS:
        for p in Path(d).rglob("*.ttf") if Path(d).exists() else ():
            name = p.name.lower()
            if any(k in name for k in ("dejavu", "liberation", "free")) and "math" not in name:
                found.append(str(p))
    if not found:
        raise FileNotFoundError(
            "no TrueType fonts found; run `apt-get install fonts-dejavu-core fonts-liberation "
            "fonts-freefont-ttf` (scripts/bootstrap.sh does this)"
        )
    return tuple(sorted(found))


@dataclass(frozen=True)
class SceneFrame:
    image: np.ndarray  # H x W x 3 uint8, RGB
    lines: tuple[str, ...]  # ground truth, top to bottom

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    kind = rng.integers(3)
    base = rng.integers(0, 256, 3).astype(np.float32)
    if kind == 0:  # vertical gradient
        other = rng.integers(0, 256, 3).astype(np.float32)
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        arr = np.broadcast_to(base * (1 - t) + other * t, (h, w, 3))
    elif kind == 1:  # smooth blotches (wall, foliage)
        coarse = rng.normal(0, 40, (h // 40 + 2, w // 40 + 2, 3)).astype(np.float32)
        arr = np.asarray(
            Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8)).resize(
                (w, h), Image.Resampling.BICUBIC
            ),
            dtype=np.float32,
        )
        arr = 0.5 * arr + 0.5 * base
    else:  # flat paint with fine grain
        arr = base + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _line_text(rng: np.random.Generator) -> str:
    words = [str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 4)))]
    if rng.random() < 0.35:
        words.append(str(int(rng.integers(1, 100))))
    return " ".join(words)


def render_frame(seed: int, size: tuple[int, int] = FRAME_SIZE) -> SceneFrame:
    """One frame with ground truth; the same seed always gives the same pixels."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = _background(rng, w, h)
    fonts = font_files()
    n_lines = int(rng.integers(1, 4))
    y = int(rng.integers(20, 60))
    lines: list[str] = []
    for _ in range(n_lines):
        text = _line_text(rng)
        font = ImageFont.truetype(str(rng.choice(fonts)), int(rng.integers(24, 56)))
        left, top, right, bottom = (int(v) for v in font.getbbox(text))
        tw, th = right - left, bottom - top
        if tw > w - 40 or y + th + 20 > h:
            continue
        # A sign plate behind the text, with contrasting ink.
        plate = rng.integers(0, 256, 3)
        ink = 255 - plate if rng.random() < 0.8 else rng.integers(0, 256, 3)
        if np.abs(ink.astype(int) - plate.astype(int)).sum() < 200:
            ink = np.where(plate > 127, 0, 255)
        layer = Image.new("RGBA", (tw + 24, th + 20), (*map(int, plate), 255))
        ImageDraw.Draw(layer).text(
            (12 - left, 10 - top), text, font=font, fill=(*map(int, ink), 255)
        )
        layer = layer.rotate(
            float(rng.uniform(-4, 4)), expand=True, resample=Image.Resampling.BICUBIC
        )
        x = int(rng.integers(10, max(11, w - layer.width - 10)))
        img.paste(layer, (x, y), layer)
        lines.append(text)
        y += layer.height + int(rng.integers(15, 50))
    blur = float(rng.uniform(0, 1.2))
    if blur > 0.3:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(0, 6), (h, w, 3))
    return SceneFrame(np.clip(arr, 0, 255).astype(np.uint8), tuple(lines))


def frames(first_seed: int, count: int) -> list[SceneFrame]:
    return [render_frame(first_seed + i) for i in range(count)]
