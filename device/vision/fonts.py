"""Font sets for OCR frames, split by family so calibration and evaluation never share a face.

Calibration (and the original development frames) use DejaVu, Liberation and FreeFont; the
independent evaluation set uses other families from other Debian packages (Noto, Roboto, Lato,
Open Sans, Carlito/Caladea, URW base35, Cantarell, Linux Biolinum/Libertine). A test checks the two
sets share no file and no family.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype", "/Library/Fonts")

CALIBRATION_FAMILIES = ("dejavu", "liberation", "free")
# File-name stems (upright faces only; italics, thin and condensed faces left out).
EVAL_FACES = (
    "NotoSans-Regular",
    "NotoSans-Bold",
    "NotoSerif-Regular",
    "NotoSerif-Bold",
    "Roboto-Regular",
    "Roboto-Medium",
    "Roboto-Bold",
    "Lato-Regular",
    "Lato-Bold",
    "Lato-Black",
    "OpenSans-Regular",
    "OpenSans-Bold",
    "Carlito-Regular",
    "Carlito-Bold",
    "Caladea-Regular",
    "Caladea-Bold",
    "NimbusSans-Regular",
    "NimbusSans-Bold",
    "NimbusRoman-Regular",
    "URWGothic-Book",
    "URWGothic-Demi",
    "C059-Roman",
    "P052-Roman",
    "NimbusMonoPS-Bold",
    "Cantarell-Regular",
    "Cantarell-Bold",
    "LinBiolinum_R",
    "LinLibertine_R",
)
EVAL_PACKAGES = (
    "fonts-noto-core fonts-urw-base35 fonts-roboto fonts-open-sans fonts-lato fonts-cantarell "
    "fonts-crosextra-carlito fonts-crosextra-caladea fonts-linuxlibertine"
)


def _all_font_files() -> list[Path]:
    found: list[Path] = []
    for d in FONT_DIRS:
        root = Path(d)
        if root.exists():
            found += [p for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".otf")]
    return sorted(found)


@lru_cache(maxsize=1)
def calibration_fonts() -> tuple[str, ...]:
    """Upright Latin DejaVu, Liberation and FreeFont faces (the development fonts)."""
    found = [
        str(p)
        for p in _all_font_files()
        if p.suffix.lower() == ".ttf"
        and any(k in p.name.lower() for k in CALIBRATION_FAMILIES)
        and "math" not in p.name.lower()
    ]
    if not found:
        raise FileNotFoundError(
            "no TrueType fonts found; run `apt-get install fonts-dejavu-core fonts-liberation "
            "fonts-freefont-ttf` (scripts/bootstrap.sh does this)"
        )
    return tuple(found)


@lru_cache(maxsize=1)
def evaluation_fonts() -> tuple[str, ...]:
    """The evaluation faces that are installed; at least half of EVAL_FACES must be."""
    by_stem: dict[str, str] = {}
    for p in _all_font_files():
        if p.stem in EVAL_FACES and "unhinted" not in p.parts[-3:-1]:
            by_stem.setdefault(p.stem, str(p))
    for p in _all_font_files():  # Roboto ships only under an 'unhinted' folder on some releases
        if p.stem in EVAL_FACES:
            by_stem.setdefault(p.stem, str(p))
    if len(by_stem) < len(EVAL_FACES) // 2:
        raise FileNotFoundError(
            f"only {len(by_stem)} of the {len(EVAL_FACES)} OCR evaluation fonts are installed; run "
            f"`apt-get install {EVAL_PACKAGES}` (scripts/bootstrap.sh does this)"
        )
    return tuple(by_stem[s] for s in EVAL_FACES if s in by_stem)
