"""The glasses-ocr evaluation behind the README table: 10 frames per condition of the independent
degraded set (evaluation fonts, hand-written phrases) plus the real photo; ``full`` only."""

from __future__ import annotations

import pytest
from edgesplit.cloud import ocr_report
from edgesplit.device.vision import degrade

HARD = ("low_light", "motion_blur", "small_text")


@pytest.mark.full
def test_int8_tracks_fp32_and_the_cloud_is_the_ceiling(ocr_workload):
    report = ocr_report.measure(per_condition=10)
    s = report["systems"]
    for cond in degrade.CONDITIONS:
        gap = s["int8"][cond]["cer"] - s["fp32"][cond]["cer"]
        assert gap <= 0.01, (cond, gap)
    for cond in HARD:
        assert s["cloud"][cond]["cer"] < s["int8"][cond]["cer"], cond
    assert s["int8"]["skimage-page"]["cer"] <= 0.10
