"""Per-layer split profile on the real KWS graph: cuts are valid, head+tail == whole model."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
from edgesplit.device.bench import merge_profile
from edgesplit.device.profile import PROFILE_SCHEMA, ModelProfile, cut_candidates, split_profile
from edgesplit.device.runtime import ModelRunner
from edgesplit.device.workloads import kws
from onnx.utils import Extractor


def _feed():
    return {"mfcc": np.random.default_rng(0).normal(0, 5, (1, 1, 49, 10)).astype(np.float32)}


def test_cut_candidates_form_a_chain():
    model = onnx.load(str(kws.model_path("fp32")))
    cuts = cut_candidates(model)
    assert len(cuts) >= 8  # at least one per DS-CNN layer
    indices = [c[0] for c in cuts]
    assert indices == sorted(indices)


def test_head_then_tail_equals_whole_model():
    path = kws.model_path("fp32")
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    ex = Extractor(model)
    feed = _feed()
    whole = ModelRunner(path).run(feed)[0]
    for _, tensor, _ in cut_candidates(model)[::3]:
        with tempfile.TemporaryDirectory() as tmp:
            h, t = Path(tmp) / "h.onnx", Path(tmp) / "t.onnx"
            onnx.save(ex.extract_model(["mfcc"], [tensor]), str(h))
            onnx.save(ex.extract_model([tensor], ["logits"]), str(t))
            mid = ModelRunner(h).run(feed)[0]
            out = ModelRunner(t).run({tensor: mid})[0]
        np.testing.assert_allclose(out, whole, rtol=1e-4, atol=1e-4)


def test_split_profile_and_profile_file(tmp_path):
    points = split_profile(kws.model_path("fp32"), _feed(), repeats=5)
    assert points[0].after_op == "input" and points[0].head_median_ms == 0.0
    assert points[-1].after_op == "output" and points[-1].tail_median_ms == 0.0
    assert points[0].tensor_bytes == 49 * 10 * 4
    assert all(
        p.tensor_bytes > 0 and p.head_median_ms >= 0 and p.tail_median_ms >= 0 for p in points
    )
    prof = ModelProfile("earbuds-kws", "fp32", 1, 1.0, 1.0, 1.0, 1960, 48, 1, points)
    path = tmp_path / "p.json"
    merge_profile(path, [prof])
    merge_profile(path, [ModelProfile("glasses-ocr", "fp32", 1, 9.0, 9.0, 9.0, 0, 0, 1)])
    doc = json.loads(path.read_text())
    assert doc["schema"] == PROFILE_SCHEMA
    assert {m["workload"] for m in doc["models"]} == {"earbuds-kws", "glasses-ocr"}
    kws_entry = next(m for m in doc["models"] if m["workload"] == "earbuds-kws")
    assert len(kws_entry["split_points"]) == len(points)
