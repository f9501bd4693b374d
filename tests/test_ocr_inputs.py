"""Bad image files for glasses-ocr: one clear InputError each, naming the file and the problem."""

from __future__ import annotations

import io

import numpy as np
import pytest
from edgesplit.device.vision.images import MAX_PIXELS, check_image, load_image
from PIL import Image

from edgesplit.errors import InputError


def _png(w: int, h: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h)).save(buf, "PNG")
    return buf.getvalue()


def test_a_good_png_loads_as_rgb(tmp_path):
    path = tmp_path / "ok.png"
    path.write_bytes(_png(64, 32, "L"))
    img = load_image(path)
    assert img.shape == (32, 64, 3) and img.dtype == np.uint8


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        ("truncated.png", _png(640, 480)[:200], "corrupt or truncated"),
        ("empty.png", b"", "not an image"),
        (
            "noise.png",
            bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
            "not an image",
        ),
        ("strip.png", _png(8000, 1), "8000x1 px"),
        # 8000 x 6000 = 48 MP from a ~6 KB file: refused from the header, never decoded.
        ("bomb.png", _png(8000, 6000, "1"), f"at most {MAX_PIXELS}"),
        ("huge.png", _png(9000, 9000, "1"), "9000x9000 px"),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path, name, data, match):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError, match=match) as err:
        load_image(path)
    assert name in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "none.png")


def test_zero_size_array_is_refused():
    with pytest.raises(InputError, match="0x0 px"):
        check_image(np.zeros((0, 0, 3), np.uint8))
