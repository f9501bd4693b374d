"""The quantiser on the real KWS model: QDQ structure, size, agreement with FP32."""

from __future__ import annotations

import json

import onnx
import pytest
from edgesplit.device.audio.kws_data import load_dataset
from edgesplit.device.errors import ModelFileError
from edgesplit.device.quantize import quantize_dynamic_int8, quantize_static_int8
from edgesplit.device.runtime import ModelRunner
from edgesplit.device.workloads import kws


@pytest.fixture(scope="module")
def calibration():
    x, y = load_dataset("train", seed=1, limit=96)
    return x, y


def test_static_qdq_int8(tmp_path, calibration):
    x, _ = calibration
    out = tmp_path / "kws_int8.onnx"
    report = quantize_static_int8(
        kws.model_path("fp32"), out, [{"mfcc": x[i : i + 16, None]} for i in range(0, 96, 16)]
    )
    model = onnx.load(str(out))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 9  # 1 first conv + 4 x (depthwise + pointwise)
    # Per-channel: the pointwise conv weights carry one scale per output channel.
    assert any(
        len(t.dims) == 1 and t.dims[0] == 64
        for t in model.graph.initializer
        if t.name.endswith("_scale")
    )
    assert report["fp32_bytes"] > report["int8_bytes"]
    assert json.loads(out.with_suffix(".json").read_text())["calibration_batches"] == 6

    fp32_logits = ModelRunner(kws.model_path("fp32")).run_single(x[:, None])
    int8_logits = ModelRunner(out).run_single(x[:, None])
    agreement = (fp32_logits.argmax(1) == int8_logits.argmax(1)).mean()
    assert agreement >= 0.9, agreement


def test_kws_deploy_form_is_qoperator_compact_and_3x_smaller(tmp_path, calibration):
    x, y = calibration
    out = tmp_path / "kws_deploy.onnx"
    feeds = [{"mfcc": x[i : i + 16, None]} for i in range(0, 96, 16)]
    report = quantize_static_int8(kws.model_path("fp32"), out, feeds, kws.deploy_settings())
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QLinearConv") == 9 and "Conv" not in ops
    assert [i.name for i in model.graph.input] == ["mfcc"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert all(len(t.name) <= 4 for t in model.graph.initializer)
    assert report["fp32_bytes"] / report["int8_bytes"] >= 3.0
    fp32_logits = ModelRunner(kws.model_path("fp32")).run_single(x[:, None])
    int8_logits = ModelRunner(out).run_single(x[:, None])
    assert (fp32_logits.argmax(1) == int8_logits.argmax(1)).mean() >= 0.9


def test_dynamic_quantisation_is_refused_for_conv_nets(tmp_path):
    with pytest.raises(ValueError, match="contains Conv nodes"):
        quantize_dynamic_int8(kws.model_path("fp32"), tmp_path / "x.onnx")


def test_quantising_a_missing_model(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        quantize_static_int8(tmp_path / "none.onnx", tmp_path / "o.onnx", [{}])


def test_empty_calibration_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        quantize_static_int8(kws.model_path("fp32"), tmp_path / "o.onnx", [])
