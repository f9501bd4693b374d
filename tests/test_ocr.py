"""Scene-text OCR with the real PP-OCRv4 models from the RapidOCR wheel, FP32 and INT8."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from edgesplit.device.errors import ModelFileError
from edgesplit.device.vision.render import frames, render_frame
from edgesplit.device.workloads import ocr


def test_render_is_deterministic():
    a, b = render_frame(3), render_frame(3)
    assert a.lines == b.lines and np.array_equal(a.image, b.image)
    assert a.image.shape == (480, 640, 3) and a.image.dtype == np.uint8
    assert render_frame(4).lines != a.lines or not np.array_equal(render_frame(4).image, a.image)


def test_int8_reads_scene_text(ocr_workload):
    pipe = ocr.OcrPipeline(ocr.model_paths("int8"))
    metrics = ocr.evaluate(pipe, frames(ocr.EVAL_SEED, 4))
    assert metrics["cer"] <= 0.10, metrics
    assert metrics["word_accuracy"] >= 0.8, metrics


def test_int8_models_are_smaller_and_keep_the_charset(ocr_workload):
    fp32, int8 = ocr.model_paths("fp32"), ocr.model_paths("int8")
    total32 = sum(p.stat().st_size for p in fp32.values())
    total8 = sum(p.stat().st_size for p in int8.values())
    assert total32 / total8 >= 3.0
    rec = onnx.load(str(int8["rec"]))
    assert "character" in {p.key for p in rec.metadata_props}
    assert any(n.op_type == "QuantizeLinear" for n in rec.graph.node)


def test_bad_image_input():
    pipe = ocr.OcrPipeline(ocr.model_paths("fp32"))
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        pipe(np.zeros((48, 64), np.uint8))


def test_missing_model_is_a_clear_error(tmp_path):
    paths = ocr.model_paths("fp32") | {"rec": tmp_path / "rec.onnx"}
    with pytest.raises(ModelFileError, match="rec.onnx"):
        ocr.OcrPipeline(paths)
