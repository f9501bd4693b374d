"""The model repository: a directory of model directories, each with ``config.yaml``.

Configs are read at once (a bad one fails the start); model sessions can load later, in the
background, so the server is live while they load (``load=False`` then :meth:`load`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesplit.cloud.config import ModelConfig, load_config
from edgesplit.cloud.errors import ModelConfigError, NotFound, Unavailable

DEFAULT_REPOSITORY = Path(__file__).resolve().parent / "model_repository"


@dataclass
class ModelEntry:
    config: ModelConfig
    directory: Path
    versions: dict[str, Any] = field(default_factory=dict)  # version -> OnnxModel | pipeline

    @property
    def latest(self) -> str:
        return max(self.versions, key=int)

    @property
    def loaded(self) -> bool:
        return bool(self.versions)


class Repository:
    def __init__(self, root: Path, only: list[str] | None = None, load: bool = True) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ModelConfigError(f"model repository {self.root} is not a directory")
        self.models: dict[str, ModelEntry] = {}
        for cfg_path in self._config_files():
            if only is not None and cfg_path.parent.name not in only:
                continue
            cfg = load_config(cfg_path)
            self.models[cfg.name] = ModelEntry(cfg, cfg_path.parent)
        if only is not None and (missing := sorted(set(only) - set(self.models))):
            raise ModelConfigError(f"{self.root}: no model directories named {missing}")
        if not self.models:
            raise ModelConfigError(f"{self.root}: no */config.yaml found")
        if load:
            for name in self.models:
                self.load(name)

    def load(self, name: str) -> ModelEntry:
        """Load every version of one model (blocking: ONNX Runtime sessions)."""
        from edgesplit.cloud.models import load_model  # ONNX Runtime: imported after the port opens

        entry = self.models[name]
        if not entry.loaded:
            entry.versions = load_model(entry.config, entry.directory)
        return entry

    @property
    def loaded(self) -> bool:
        return all(e.loaded for e in self.models.values())

    def _config_files(self) -> list[Path]:
        """The repository's entries; the built-in repository also serves workload plugins'."""
        files = sorted(self.root.glob("*/config.yaml"))
        if self.root.resolve() == DEFAULT_REPOSITORY.resolve():
            from edgesplit.device.workloads.registry import model_repositories

            for extra in model_repositories():
                files += sorted(Path(extra).glob("*/config.yaml"))
        return files

    def get(self, name: str, version: str | None = None):
        entry = self.models.get(name)
        if entry is None:
            raise NotFound(f"unknown model '{name[:100]}'; this server has {sorted(self.models)}")
        if not entry.loaded:
            raise Unavailable(f"model '{name}' is loading; see /v2/health/ready")
        v = version or entry.latest
        if v not in entry.versions:
            raise NotFound(
                f"model '{name}' has no version '{v[:40]}'; it has {sorted(entry.versions)}"
            )
        return entry, v, entry.versions[v]
