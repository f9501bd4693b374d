"""Real ORT sessions: clear errors for missing/corrupt models and wrong inputs."""

from __future__ import annotations

import numpy as np
import pytest
from edgesplit.device.errors import ModelFileError, ModelInputError
from edgesplit.device.runtime import ModelRunner, SessionConfig, open_session
from edgesplit.device.workloads import kws


def test_missing_model_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelFileError, match="not found: .*nope.onnx"):
        open_session(missing)


def test_corrupt_onnx_file_is_reported(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    good = kws.model_path("fp32").read_bytes()
    bad.write_bytes(good[: len(good) // 3])  # a truncated download
    with pytest.raises(ModelFileError, match="corrupt.onnx is not a loadable ONNX model"):
        open_session(bad)


def test_garbage_file_is_reported(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"this is not protobuf" * 10)
    with pytest.raises(ModelFileError):
        ModelRunner(bad)


def test_wrong_shape_names_input_and_expected_shape():
    runner = ModelRunner(kws.model_path("fp32"))
    with pytest.raises(ModelInputError, match=r"input 'mfcc' has shape \[1, 1, 40, 10\]"):
        runner.run({"mfcc": np.zeros((1, 1, 40, 10), np.float32)})


def test_wrong_dtype_is_reported():
    runner = ModelRunner(kws.model_path("fp32"))
    with pytest.raises(ModelInputError, match="dtype float64, expected float32"):
        runner.run({"mfcc": np.zeros((1, 1, 49, 10), np.float64)})


def test_wrong_input_name_is_reported():
    runner = ModelRunner(kws.model_path("fp32"))
    with pytest.raises(ModelInputError, match=r"missing \['mfcc'\], unexpected \['audio'\]"):
        runner.run({"audio": np.zeros((1, 1, 49, 10), np.float32)})


def test_valid_input_runs_and_batches():
    runner = ModelRunner(kws.model_path("fp32"), SessionConfig(intra_op_threads=1))
    out = runner.run_single(np.zeros((3, 1, 49, 10), np.float32))
    assert out.shape == (3, len(kws.labels()))
    assert np.isfinite(out).all()


def test_session_config_rejects_bad_values():
    with pytest.raises(ValueError, match="graph_optimization"):
        SessionConfig(graph_optimization="max").to_session_options()
    with pytest.raises(ValueError, match="threads must be >= 1"):
        SessionConfig(intra_op_threads=0).to_session_options()
