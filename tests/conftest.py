"""Shared fixtures: real models, built once per test session with this machine's ONNX Runtime."""

from __future__ import annotations

import pytest

from device import workloads


@pytest.fixture(scope="session")
def kws_workload() -> workloads.Workload:
    wl = workloads.get("earbuds-kws")
    if not wl.int8_ready():
        wl.build_int8()
    return wl


@pytest.fixture(scope="session")
def ocr_workload() -> workloads.Workload:
    wl = workloads.get("glasses-ocr")
    if not wl.int8_ready():
        wl.build_int8()
    return wl


@pytest.fixture(scope="session")
def intent_workload() -> workloads.Workload:
    wl = workloads.get("phone-intent")
    if not wl.int8_ready():
        wl.build_int8()
    return wl
