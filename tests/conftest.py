"""Shared fixtures: real models, built once per test session with this machine's ONNX Runtime."""

from __future__ import annotations

import os

import pytest
from edgesplit.device import workloads


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long evaluations (marked ``full``) run only under ``scripts/test.sh --full``."""
    if os.environ.get("EDGESPLIT_FULL") == "1":
        return
    skip = pytest.mark.skip(reason="long evaluation: run scripts/test.sh --full")
    for item in items:
        if "full" in item.keywords:
            item.add_marker(skip)


def _ready(name: str) -> workloads.Workload:
    wl = workloads.get(name)
    wl.ensure_int8()  # under the workload's build lock: parallel test workers build it once
    return wl


@pytest.fixture(scope="session")
def kws_workload() -> workloads.Workload:
    return _ready("earbuds-kws")


@pytest.fixture(scope="session")
def ocr_workload() -> workloads.Workload:
    return _ready("glasses-ocr")


@pytest.fixture(scope="session")
def intent_workload() -> workloads.Workload:
    return _ready("phone-intent")
