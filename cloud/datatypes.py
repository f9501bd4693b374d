"""OIP tensor datatypes <-> NumPy and ONNX Runtime types, and BYTES (de)serialisation."""

from __future__ import annotations

import struct

import numpy as np

OIP_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
NUMPY_TO_OIP = {v: k for k, v in OIP_TO_NUMPY.items() if k != "BYTES"}

ORT_TO_OIP = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def oip_datatype(array: np.ndarray) -> str:
    if array.dtype == object or array.dtype.kind in ("U", "S"):
        return "BYTES"
    return NUMPY_TO_OIP[array.dtype]


def serialize_bytes(array: np.ndarray) -> bytes:
    """Triton's BYTES wire form: each element as u32 little-endian length + bytes."""
    out = bytearray()
    for item in array.reshape(-1):
        b = item if isinstance(item, bytes) else str(item).encode()
        out += struct.pack("<I", len(b)) + b
    return bytes(out)


def deserialize_bytes(buf: bytes, count: int) -> np.ndarray:
    items, pos = [], 0
    for _ in range(count):
        if pos + 4 > len(buf):
            raise ValueError("BYTES tensor data ends inside an element length")
        (n,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        if pos + n > len(buf):
            raise ValueError("BYTES tensor data ends inside an element")
        items.append(bytes(buf[pos : pos + n]))
        pos += n
    if pos != len(buf):
        raise ValueError(f"BYTES tensor has {len(buf) - pos} bytes after its {count} elements")
    return np.array(items, dtype=object)
