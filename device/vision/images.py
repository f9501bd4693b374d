"""Image inputs for glasses-ocr: decode a file or check an array, with one clear error per problem.

Bounds: each side 8..8192 px and at most 40 megapixels (a 12 MP phone photo fits; Pillow's own
bomb limit is ~89 MP). A side below 8 px holds no readable text, and RapidOCR would otherwise
enlarge a 1x8000 strip to 30x240000 px before failing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgesplit.errors import InputError

MIN_SIDE_PX = 8
MAX_SIDE_PX = 8192
MAX_PIXELS = 40_000_000


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return ``image`` as a contiguous H x W x 3 uint8 RGB array, or raise InputError."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(
            f"{name}: must be H x W x 3 uint8 RGB, got shape {image.shape} dtype {image.dtype}"
        )
    check_size(image.shape[1], image.shape[0], name)
    return np.ascontiguousarray(image)


def check_size(w: int, h: int, name: str = "image") -> None:
    if min(h, w) < MIN_SIDE_PX or max(h, w) > MAX_SIDE_PX:
        raise InputError(
            f"{name}: {w}x{h} px (width x height); each side must be "
            f"{MIN_SIDE_PX}..{MAX_SIDE_PX} px"
        )
    if h * w > MAX_PIXELS:
        raise InputError(
            f"{name}: {w}x{h} px = {h * w} pixels, over the pixel limit (decompression-bomb "
            f"guard): at most {MAX_PIXELS} supported"
        )


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB uint8; truncated, empty, non-image and oversized files (a
    decompression bomb is refused from its header, before any pixel is decoded) raise InputError."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                check_size(*im.size, str(path))  # from the header, before decoding
                rgb = np.asarray(im.convert("RGB"))
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        _check_png_header(path)  # Pillow refuses a 0x0 PNG as unidentified: say why
        raise InputError(f"{path}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{path}: refused as a decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise InputError(f"{path}: corrupt or truncated image data ({exc})") from None
    return check_image(rgb, str(path))


def _check_png_header(path: Path) -> None:
    """A PNG whose header declares a size out of bounds gets that message, not 'not an image'."""
    import struct

    head = path.read_bytes()[:24]
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        w, h = struct.unpack(">II", head[16:24])
        check_size(w, h, f"{path}: PNG declares")
