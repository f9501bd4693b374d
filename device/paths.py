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
