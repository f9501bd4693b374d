"""Scene-text OCR with the real PP-OCRv4 models from the RapidOCR wheel, FP32 and INT8."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from edgesplit.device.errors import ModelFileError
from edgesplit.device.metrics import character_error_rate
from edgesplit.device.vision import degrade, evalset, fonts, phrases, render
from edgesplit.device.vision.render import frames, render_frame
from edgesplit.device.workloads import ocr

from edgesplit.errors import InputError


def test_render_is_deterministic():
    a, b = render_frame(3), render_frame(3)
    assert a.lines == b.lines and np.array_equal(a.image, b.image)
    assert a.image.shape == (480, 640, 3) and a.image.dtype == np.uint8
    assert render_frame(4).lines != a.lines or not np.array_equal(render_frame(4).image, a.image)


def test_evaluation_fonts_and_text_are_disjoint_from_calibration():
    cal, ev = set(fonts.calibration_fonts()), set(fonts.evaluation_fonts())
    assert len(ev) >= 14 and not cal & ev
    for path in ev:
        assert not any(k in path.lower() for k in fonts.CALIBRATION_FAMILIES), path
    # Phrases are not sequences of the development vocabulary.
    words = set(render.WORDS)
    assert sum(all(w in words for w in p.split()) for p in phrases.PHRASES) == 0


def test_every_condition_renders_deterministically():
    clean = evalset.evaluation_frames("clean", 1)[0]
    for cond in degrade.CONDITIONS:
        a, b = evalset.evaluation_frames(cond, 1)[0], evalset.evaluation_frames(cond, 1)[0]
        assert np.array_equal(a.image, b.image) and a.lines and a.image.shape == (480, 640, 3)
        if cond != "clean":
            assert not np.array_equal(a.image, clean.image), cond
    # Calibration, validation and evaluation frames never share a seed, hence never a frame.
    cal = evalset.calibration_frames(1)
    assert len(cal) == len(degrade.CONDITIONS)
    ev = [evalset.evaluation_frames(k, 1)[0] for k in degrade.CONDITIONS]
    assert not any(np.array_equal(c.image, e.image) for c, e in zip(cal, ev, strict=True))


def test_low_light_is_dark_and_noisy():
    rng = np.random.default_rng(0)
    img = np.full((64, 64, 3), 200, np.uint8)
    out = degrade.low_light(img, rng)
    assert out.mean() < 200 and out.std() > 2


def test_detector_sizing_rules():
    s = ocr.DetSizing(min_short_px=480, max_long_px=960)
    assert s.scale(480, 640) == 1.0  # a glasses frame runs at native size
    assert s.scale(191, 384) == pytest.approx(960 / 384)  # small photo: enlarged, capped
    assert s.scale(3000, 4000) == pytest.approx(960 / 4000)  # large photo: shrunk


def test_int8_within_reach_of_fp32_on_degraded_frames(ocr_workload):
    """One evaluation frame per condition (evaluation fonts and phrases); the full per-condition
    table is tests/test_ocr_eval.py (``full``)."""
    fp32 = ocr.evaluate_conditions(ocr.OcrPipeline(ocr.model_paths("fp32")), 1)
    int8 = ocr.evaluate_conditions(ocr.OcrPipeline(ocr.model_paths("int8")), 1)
    assert fp32["all"]["cer"] <= 0.15, fp32
    assert int8["all"]["cer"] <= fp32["all"]["cer"] + 0.03, (fp32, int8)


def test_int8_reads_development_frames(ocr_workload):
    metrics = ocr.evaluate(ocr.OcrPipeline(ocr.model_paths("int8")), frames(ocr.EVAL_SEED, 3))
    assert metrics["cer"] <= 0.10, metrics


def test_device_reads_a_real_photo(ocr_workload):
    """scikit-image's photographed book page: RapidOCR's default box threshold and no enlarging
    lost 47 % of it; the device sizing reads it."""
    photo = evalset.real_photos()[0]
    pred = ocr.OcrPipeline(ocr.model_paths("int8"))(photo.image).text
    assert character_error_rate([pred], [photo.text]) <= 0.10, pred


def test_int8_build_records_its_choice(ocr_workload):
    manifest = json.loads(ocr.manifest_path().read_text())
    assert set(manifest["precisions"]) == set(ocr.STAGES)
    assert manifest["calibration_frames"] >= 2 * len(degrade.CONDITIONS)
    paths = ocr.model_paths("int8")
    fp32 = ocr.model_paths("fp32")
    assert sum(p.stat().st_size for p in paths.values()) < sum(
        p.stat().st_size for p in fp32.values()
    )
    for stage, precision in manifest["precisions"].items():
        model = onnx.load(str(paths[stage]))
        ops = {n.op_type for n in model.graph.node}
        quantised = bool(ops & {"QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger"})
        assert quantised == (precision == "int8"), (stage, ops)
        if stage == "rec":
            assert "character" in {p.key for p in model.metadata_props}


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((48, 64), np.uint8), "H x W x 3 uint8"),
        (np.zeros((0, 0, 3), np.uint8), "0x0 px"),
        (np.zeros((1, 8000, 3), np.uint8), "8000x1 px"),
        (np.zeros((48, 64, 3), np.float32), "dtype float32"),
    ],
)
def test_bad_image_arrays(image, match):
    pipe = ocr.OcrPipeline(ocr.model_paths("fp32"))
    with pytest.raises(InputError, match=match):
        pipe(image)


def test_missing_model_is_a_clear_error(tmp_path):
    paths = ocr.model_paths("fp32") | {"rec": tmp_path / "rec.onnx"}
    with pytest.raises(ModelFileError, match="rec.onnx"):
        ocr.OcrPipeline(paths)
