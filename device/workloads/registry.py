"""Workload plugins: one module registers everything a workload needs; the rest discovers it.

A :class:`WorkloadPlugin` carries a workload's
- ``workload``: FP32/INT8 models, INT8 build, bench call and metric (``edgesplit device bench``);
- ``read_file`` / ``read_text``: inputs from files and typed text (``edgesplit device run``);
- ``task``: the router's hooks, local model + cloud model (+ split path), (router, run, demo);
- ``stream``: a seeded live source with truth (the demo);
- ``eval_set``: held-out labelled inputs for ``edgesplit eval`` (cascade vs device-only);
- ``demo``: the device class it runs on in the demo: links, policy, deadline, cloud models;
- ``model_repository``: the plugin's cloud model entries, served beside the built-in repository;
- ``cloud_pipelines``: pipeline name -> ``"module:Class"`` of the server-side model, imported only
  by the cloud (so ``device/`` never imports ``edgesplit.cloud``; as MLServer's
  ``implementation:`` it needs no server change).

Discovery, at first use: the built-in plugins, then every ``edgesplit.workloads`` entry point of
installed distributions, then the modules named in ``$EDGESPLIT_WORKLOADS`` (comma-separated).
Each such module calls :func:`register` at import. Tests call :func:`register` directly.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgesplit.errors import ConfigError

if TYPE_CHECKING:
    from edgesplit.device.router import Task
    from edgesplit.device.workloads import Workload

BUILTIN = ("edgesplit.device.workloads.builtin",)
ENTRY_POINT_GROUP = "edgesplit.workloads"
ENV_VAR = "EDGESPLIT_WORKLOADS"


@dataclass
class Item:
    """One labelled input: what the task takes, the truth, and whether an answer is right."""

    x: Any
    truth: str
    check: Callable[[str], bool]


def equals(truth: str) -> Callable[[str], bool]:
    """The usual ``Item.check``: the answer is exactly the truth."""
    return lambda answer: answer == truth


@dataclass(frozen=True)
class Input:
    """One input read from a file: ``where`` says which part (``line 3``, ``0.52-1.31 s``)."""

    x: Any
    where: str = ""


@dataclass(frozen=True)
class EvalSet:
    name: str  # says which data the accuracy is measured on
    items: list[Item]


@dataclass(frozen=True)
class DemoSpec:
    device: str  # the device class: glasses | earbuds | phone | ...
    links: tuple[str, ...]  # link technologies from the device to the cloud, in order
    policy: str
    deadline_ms: float
    cloud_models: tuple[str, ...]  # model repository entries the device's task calls
    threshold: float = 0.5  # cascade: escalate below this confidence
    interval_s: float = 1.0  # the demo's pace: one request per interval


@dataclass(frozen=True)
class WorkloadPlugin:
    name: str
    workload: Callable[[], Workload]
    task: Callable[[int], Task]  # threads -> router task
    read_file: Callable[[Path], list[Input]]  # raises InputError naming the problem
    demo: DemoSpec
    stream: Callable[[int, int], list[Item]]  # (n, seed) -> live inputs with truth
    eval_set: Callable[[bool], EvalSet]  # quick -> held-out labelled inputs
    read_text: Callable[[str], Input] | None = None  # typed input (``device run --text``)
    file_types: str = ""  # for --help: what files ``read_file`` takes
    cloud_pipelines: dict[str, str] = field(default_factory=dict)  # pipeline -> "module:Class"
    # A model repository directory the plugin ships (``NAME/config.yaml``), served next to the
    # built-in one; the built-in workloads' entries live in cloud/model_repository.
    model_repository: Path | None = None


_PLUGINS: dict[str, WorkloadPlugin] = {}
_state = {"discovered": False}


def register(plugin: WorkloadPlugin, replace: bool = False) -> WorkloadPlugin:
    """Add a workload; a second plugin of the same name is an error unless ``replace``."""
    if plugin.name in _PLUGINS and not replace and _PLUGINS[plugin.name] is not plugin:
        raise ConfigError(f"workload {plugin.name!r} is registered twice")
    _PLUGINS[plugin.name] = plugin
    return plugin


def unregister(name: str) -> None:
    _PLUGINS.pop(name, None)


def _import(module: str, origin: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"workload plugin module {module!r} ({origin}) cannot be imported: {exc}"
        ) from None


def discover() -> None:
    """Import the built-in plugins, entry points and ``$EDGESPLIT_WORKLOADS`` (once per process)."""
    if _state["discovered"]:
        return
    _state["discovered"] = True
    for module in BUILTIN:
        _import(module, "built-in")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _import(ep.value.partition(":")[0], f"entry point {ep.name!r}")
    for module in filter(None, (m.strip() for m in os.environ.get(ENV_VAR, "").split(","))):
        _import(module, f"${ENV_VAR}")


def plugins() -> dict[str, WorkloadPlugin]:
    discover()
    return dict(sorted(_PLUGINS.items()))


def plugin(name: str) -> WorkloadPlugin:
    found = plugins()
    if name not in found:
        raise ConfigError(f"unknown workload {name!r}; known: {', '.join(found)}")
    return found[name]


def by_device(device: str) -> WorkloadPlugin:
    """The workload a device class runs in the demo (``glasses`` -> glasses-ocr)."""
    for p in plugins().values():
        if p.demo.device == device:
            return p
    devices = ", ".join(p.demo.device for p in plugins().values())
    raise ConfigError(f"unknown device {device!r}; known: {devices}")


def cloud_pipeline(name: str) -> type:
    """The server-side model class a plugin registered for ``pipeline: name`` (imported here)."""
    for p in plugins().values():
        if name in p.cloud_pipelines:
            module, _, cls = p.cloud_pipelines[name].partition(":")
            return getattr(importlib.import_module(module), cls)
    known = sorted(k for p in plugins().values() for k in p.cloud_pipelines)
    raise ConfigError(f"pipeline {name!r} is not registered by any workload; known: {known}")


def model_repositories() -> list[Path]:
    """Model repository directories shipped by plugins."""
    return [p.model_repository for p in plugins().values() if p.model_repository is not None]


def pipeline_names() -> list[str]:
    return sorted(k for p in plugins().values() for k in p.cloud_pipelines)
