"""Open Inference Protocol (KServe v2) REST messages, with Triton's binary tensor extension.

A request body is JSON, optionally followed by raw tensor bytes: the header
``Inference-Header-Content-Length`` gives the JSON's length and each binary input carries
``parameters.binary_data_size``. Responses use the same layout when an output asks for binary data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from edgesplit.cloud.datatypes import OIP_TO_NUMPY, deserialize_bytes, oip_datatype, serialize_bytes
from edgesplit.cloud.errors import OipError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

HEADER_LENGTH = "Inference-Header-Content-Length"

Datatype = str
Parameters = dict[str, Any]


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)
    shape: list[int] = Field(max_length=16)
    datatype: Datatype
    parameters: Parameters | None = None
    data: list[Any] | None = None


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    """POST /v2/models/{name}[/versions/{v}]/infer body (the JSON part)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=64)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ErrorResponse(BaseModel):
    error: str


@dataclass
class ParsedRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    binary_outputs: dict[str, bool]  # requested output name -> binary
    binary_default: bool
    requested: list[str] | None
    parameters: Parameters = field(default_factory=dict)


def _pydantic_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "invalid inference request: " + "; ".join(parts)


def _tensor_from_json(inp: RequestInput, count: int, dtype: np.dtype) -> np.ndarray:
    data = np.array(inp.data, dtype=object).reshape(-1) if inp.data is not None else None
    if data is None or data.size != count:
        got = 0 if data is None else data.size
        raise OipError(
            f"input '{inp.name}': shape {inp.shape} needs {count} elements, data has {got}"
        )
    if inp.datatype == "BYTES":
        return np.array(
            [str(v).encode() if not isinstance(v, bytes) else v for v in data], dtype=object
        ).reshape(inp.shape)
    try:
        if dtype.kind in "iu" and any(
            isinstance(v, float) and not float(v).is_integer() for v in data[:1024]
        ):
            raise ValueError("non-integer value")
        return np.asarray(data.tolist(), dtype=dtype).reshape(inp.shape)
    except (ValueError, TypeError, OverflowError) as exc:
        raise OipError(
            f"input '{inp.name}': data does not convert to {inp.datatype} ({exc})"
        ) from None


def parse_request(body: bytes, header_length: str | None) -> ParsedRequest:
    """Parse and validate an infer request body; raises :class:`OipError` (400) with a reason."""
    if header_length is not None:
        try:
            json_len = int(header_length)
        except ValueError:
            raise OipError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
        if not 0 < json_len <= len(body):
            raise OipError(f"{HEADER_LENGTH}={json_len} but the body has {len(body)} bytes")
    else:
        json_len = len(body)
    try:
        doc = json.loads(body[:json_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OipError(f"request body is not valid JSON: {exc}") from None
    try:
        req = InferenceRequest.model_validate(doc)
    except ValidationError as exc:
        raise OipError(_pydantic_message(exc)) from None

    binary = memoryview(body)[json_len:]
    offset = 0
    inputs: dict[str, np.ndarray] = {}
    for inp in req.inputs:
        if inp.name in inputs:
            raise OipError(f"input '{inp.name}' appears twice")
        dtype = OIP_TO_NUMPY.get(inp.datatype)
        if dtype is None:
            raise OipError(
                f"input '{inp.name}': unknown datatype {inp.datatype!r}; "
                f"expected one of {sorted(OIP_TO_NUMPY)}"
            )
        if any(d < 0 for d in inp.shape):
            raise OipError(f"input '{inp.name}': shape {inp.shape} has a negative dimension")
        count = math.prod(inp.shape)
        size = (inp.parameters or {}).get("binary_data_size")
        if size is None:
            inputs[inp.name] = _tensor_from_json(inp, count, dtype)
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise OipError(
                f"input '{inp.name}': binary_data_size={size!r} overruns the "
                f"{len(binary)} bytes of binary data"
            )
        raw = bytes(binary[offset : offset + size])
        offset += size
        if inp.datatype == "BYTES":
            try:
                inputs[inp.name] = deserialize_bytes(raw, count).reshape(inp.shape)
            except ValueError as exc:
                raise OipError(f"input '{inp.name}': {exc}") from None
        else:
            if size != count * dtype.itemsize:
                raise OipError(
                    f"input '{inp.name}': {inp.datatype} shape {inp.shape} needs "
                    f"{count * dtype.itemsize} bytes, binary_data_size is {size}"
                )
            inputs[inp.name] = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(inp.shape)
    if offset != len(binary):
        raise OipError(f"{len(binary) - offset} bytes of binary data belong to no input")

    params = req.parameters or {}
    binary_default = bool(params.get("binary_data_output", False))
    outs = {
        o.name: bool((o.parameters or {}).get("binary_data", binary_default))
        for o in (req.outputs or [])
    }
    return ParsedRequest(
        id=req.id,
        inputs=inputs,
        binary_outputs=outs,
        binary_default=binary_default,
        requested=[o.name for o in req.outputs] if req.outputs else None,
        parameters=params,
    )


def build_response(
    model_name: str,
    model_version: str,
    request: ParsedRequest,
    outputs: dict[str, np.ndarray],
) -> tuple[bytes, dict[str, str]]:
    """Serialise outputs; returns (body, extra headers)."""
    names = request.requested or list(outputs)
    doc_outputs, blobs = [], []
    for name in names:
        arr = outputs[name]
        entry: dict[str, Any] = {
            "name": name,
            "datatype": oip_datatype(arr),
            "shape": list(arr.shape),
        }
        if request.binary_outputs.get(name, request.binary_default):
            blob = (
                serialize_bytes(arr)
                if entry["datatype"] == "BYTES"
                else (np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes())
            )
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif entry["datatype"] == "BYTES":
            entry["data"] = [
                v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                for v in arr.reshape(-1)
            ]
        else:
            entry["data"] = arr.reshape(-1).tolist()
        doc_outputs.append(entry)
    doc: dict[str, Any] = {
        "model_name": model_name,
        "model_version": model_version,
        "outputs": doc_outputs,
    }
    if request.id is not None:
        doc["id"] = request.id
    head = json.dumps(doc, separators=(",", ":")).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {
        HEADER_LENGTH: str(len(head)),
        "content-type": "application/octet-stream",
    }
