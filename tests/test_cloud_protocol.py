"""OIP request parsing/response building and model configuration errors (no server needed)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from edgesplit.cloud.config import load_config
from edgesplit.cloud.errors import ModelConfigError, OipError
from edgesplit.cloud.protocol import build_response, parse_request
from edgesplit.cloud.repository import Repository

from tests.cloud_helpers import KWS_SMALL, write_repo


def body(doc) -> bytes:
    return json.dumps(doc).encode()


def test_json_tensor():
    req = parse_request(
        body(
            {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
        ),
        None,
    )
    np.testing.assert_array_equal(req.inputs["x"], np.array([[1, 2], [3, 4]], np.float32))
    assert req.inputs["x"].dtype == np.float32


def test_binary_tensors_and_bytes():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    s = b"".join(struct.pack("<I", len(w)) + w for w in (b"hi", b"there"))
    head = body(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 3],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 24},
                },
                {
                    "name": "s",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(s)},
                },
            ]
        }
    )
    req = parse_request(head + x.tobytes() + s, str(len(head)))
    np.testing.assert_array_equal(req.inputs["x"], x)
    assert list(req.inputs["s"]) == [b"hi", b"there"]


@pytest.mark.parametrize(
    "doc,header,match",
    [
        (b"{nope", None, "not valid JSON"),
        (body({"inputs": []}), None, "inputs: List should have at least 1 item"),
        (body({"inputz": []}), None, "inputs: Field required"),
        (
            body({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}]}),
            None,
            "needs 3 elements, data has 2",
        ),
        (
            body({"inputs": [{"name": "x", "shape": [1], "datatype": "FP33", "data": [1]}]}),
            None,
            "unknown datatype 'FP33'",
        ),
        (
            body({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}),
            None,
            "negative dimension",
        ),
        (
            body({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": ["a"]}]}),
            None,
            "does not convert to INT32",
        ),
        (
            body(
                {
                    "inputs": [
                        {
                            "name": "x",
                            "shape": [2],
                            "datatype": "FP32",
                            "parameters": {"binary_data_size": 8},
                        }
                    ]
                }
            ),
            "json",
            "overruns",
        ),
        (
            body({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}),
            "999",
            "but the body has",
        ),
    ],
)
def test_malformed_requests_name_the_problem(doc, header, match):
    if header == "json":  # a binary request whose JSON part is the whole body
        header = str(len(doc))
    with pytest.raises(OipError, match=match) as info:
        parse_request(doc, header)
    assert info.value.status == 400


def test_leftover_binary_bytes_rejected():
    head = body(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 4},
                }
            ]
        }
    )
    with pytest.raises(OipError, match="2 bytes of binary data belong to no input"):
        parse_request(head + b"\0" * 6, str(len(head)))


def test_response_json_and_binary():
    doc = {
        "id": "r1",
        "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}, {"name": "t"}],
    }
    req = parse_request(body(doc), None)
    out = {"y": np.array([[1.5, 2.5]], np.float32), "t": np.array([b"ok"], dtype=object)}
    raw, headers = build_response("m", "1", req, out)
    n = int(headers["Inference-Header-Content-Length"])
    doc = json.loads(raw[:n])
    assert doc["id"] == "r1" and doc["outputs"][1]["data"] == ["ok"]
    assert doc["outputs"][0]["parameters"]["binary_data_size"] == 8
    np.testing.assert_array_equal(np.frombuffer(raw[n:], np.float32), [1.5, 2.5])


def test_config_errors_name_file_field_value_and_unit(tmp_path):
    write_repo(
        tmp_path,
        {"m": {**KWS_SMALL, "max_batch_size": 8, "dynamic_batching": {"max_queue_delay_ms": -3}}},
    )
    with pytest.raises(ModelConfigError) as info:
        load_config(tmp_path / "m" / "config.yaml")
    msg = str(info.value)
    assert "m/config.yaml" in msg and "dynamic_batching.max_queue_delay_ms" in msg
    assert "-3" in msg and "milliseconds" in msg


def test_config_other_errors(tmp_path):
    write_repo(tmp_path, {"a": {**KWS_SMALL, "dynamic_batching": {}}})
    with pytest.raises(ModelConfigError, match="needs 'max_batch_size' >= 1"):
        Repository(tmp_path)
    (tmp_path / "a" / "config.yaml").write_text("name: b\nmodel_file: x.onnx\n")
    with pytest.raises(ModelConfigError, match="must equal the directory name 'a'"):
        Repository(tmp_path)
    (tmp_path / "a" / "config.yaml").write_text("name: a\nmodel_file: x.onnx\n")
    with pytest.raises(ModelConfigError, match="model file 'x.onnx' not found"):
        Repository(tmp_path)
    (tmp_path / "a" / "config.yaml").write_text("name: a\nmodel_file: pkg://nopkg/m.onnx\n")
    with pytest.raises(ModelConfigError, match="package 'nopkg'"):
        Repository(tmp_path)
    (tmp_path / "a" / "config.yaml").write_text("name: a\nmax_batch_size: lots\n")
    with pytest.raises(ModelConfigError, match="'max_batch_size' = 'lots'.*samples per batch"):
        Repository(tmp_path)
    (tmp_path / "a" / "config.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ModelConfigError, match="not valid YAML"):
        Repository(tmp_path)


def test_json_limits_refuse_before_building_objects():
    from edgesplit.cloud.protocol import json_depth, loads_bounded

    assert json_depth(b'{"a": [[1], "[[[[", {"b": "\\"]"}]}') == 3  # brackets in strings ignored
    with pytest.raises(OipError, match="nests 10000 levels deep; the limit is 32"):
        loads_bounded(b"[" * 10_000 + b"]" * 10_000)
    with pytest.raises(OipError, match="a JSON number has 5000 characters; the limit is 64"):
        loads_bounded(b"[" + b"9" * 5000 + b"]")
    with pytest.raises(OipError, match="NaN"):
        loads_bounded(b"[NaN]")
    assert loads_bounded(b'{"x": [1, 2.5]}') == {"x": [1, 2.5]}


def test_model_limits_from_config_and_shapes(tmp_path):
    from edgesplit.cloud.errors import TooLarge
    from edgesplit.cloud.limits import Limits, ModelLimits
    from edgesplit.cloud.protocol import TensorMetadata, parse_header

    cfg_path = tmp_path / "rec" / "config.yaml"
    cfg_path.parent.mkdir()
    cfg_path.write_text(
        "name: rec\nmax_batch_size: 4\ninputs:\n  x:\n    dims: [-1, 3, 48, -1]\n"
        "    max_dims: [4, 3, 48, 100]\n"
    )
    cfg = load_config(cfg_path)
    lim = ModelLimits(
        cfg, [TensorMetadata(name="x", datatype="FP32", shape=[-1, 3, -1, -1])], Limits()
    )
    assert lim.metadata()[0].shape == [-1, 3, 48, -1]
    assert lim.max_body_bytes(binary=True) == 64 * 1024 + 4 * 3 * 48 * 100 * 4
    with pytest.raises(TooLarge, match="is at most"):
        lim.check_headers(10**9, None)
    header = parse_header(
        body(
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 3, 48, 101],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": 58176},
                    }
                ]
            }
        )
    )
    with pytest.raises(OipError, match=r"dimension 3 is 101; model 'rec' allows at most 100"):
        lim.check_request(header, 58176)


def test_triton_config_shape():
    from edgesplit.cloud.config import ModelConfig
    from edgesplit.cloud.protocol import TensorMetadata
    from edgesplit.cloud.triton import triton_config

    cfg = ModelConfig(name="m", max_batch_size=8, dynamic_batching={"max_queue_delay_ms": 2})
    doc = triton_config(
        cfg,
        [TensorMetadata(name="a", datatype="FP32", shape=[-1, 10])],
        [TensorMetadata(name="b", datatype="BYTES", shape=[-1])],
        batching=True,
        providers=["CPUExecutionProvider"],
    )
    assert doc["input"] == [{"name": "a", "data_type": "TYPE_FP32", "dims": [10]}]
    assert doc["output"] == [{"name": "b", "data_type": "TYPE_STRING", "dims": []}]
    assert doc["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
    assert doc["instance_group"] == [{"name": "m", "kind": "KIND_CPU", "count": 1}]
