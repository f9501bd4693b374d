"""Open Inference Protocol (KServe v2) REST messages, with Triton's binary tensor extension.

A request body is JSON, optionally followed by raw tensor bytes: the header
``Inference-Header-Content-Length`` gives the JSON's length and each binary input carries
``parameters.binary_data_size``. Responses use the same layout when an output asks for binary data.
"""

from __future__ import annotations

import json
import math
import re
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


@dataclass
class RequestHeader:
    """The JSON part of a request, validated, with tensor data kept out of pydantic (no copy)."""

    request: InferenceRequest
    data: dict[str, Any]  # input name -> JSON data (nested lists), absent for binary inputs
    counts: dict[str, int]  # input name -> elements from its declared shape
    binary_sizes: dict[str, int]  # input name -> binary_data_size


def _pydantic_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "invalid inference request: " + "; ".join(parts)


class JsonLimitError(ValueError):
    pass


# A JSON string, unrolled so long strings cost one pass (no per-character alternation).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
DEFAULT_MAX_DEPTH, DEFAULT_MAX_NUMBER_CHARS = 32, 64


def json_depth(buf: bytes) -> int:
    """Deepest nesting of [ and { outside strings, in C/NumPy speed (no recursion)."""
    if b'"' in buf:
        buf = _JSON_STRING.sub(b'""', buf)
    a = np.frombuffer(buf, np.uint8)
    delta = (a == 91).view(np.int8) + (a == 123).view(np.int8)
    delta -= (a == 93).view(np.int8) + (a == 125).view(np.int8)
    return int(np.cumsum(delta, dtype=np.int32).max(initial=0)) if a.size else 0


def loads_bounded(
    buf: bytes, max_depth: int = DEFAULT_MAX_DEPTH, max_number_chars: int = DEFAULT_MAX_NUMBER_CHARS
) -> Any:
    """``json.loads`` with a nesting limit and a number-length limit; raises :class:`OipError`."""
    depth = json_depth(buf)
    if depth > max_depth:
        raise OipError(f"request JSON nests {depth} levels deep; the limit is {max_depth} levels")

    def number(kind: type) -> Any:
        def convert(text: str) -> Any:  # a Python call per number also lets other threads run
            if len(text) > max_number_chars:
                raise JsonLimitError(
                    f"a JSON number has {len(text)} characters; the limit is {max_number_chars}"
                )
            return kind(text)

        return convert

    def constant(name: str) -> float:
        raise JsonLimitError(f"JSON has {name}, which is not valid JSON")

    try:
        return json.loads(
            buf, parse_int=number(int), parse_float=number(float), parse_constant=constant
        )
    except JsonLimitError as exc:
        raise OipError(f"request body: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OipError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # unreachable after the depth check; kept as a 400, never a 500
        raise OipError("request JSON nests too deep") from None


def parse_header(
    buf: bytes, max_depth: int = DEFAULT_MAX_DEPTH, max_number_chars: int = DEFAULT_MAX_NUMBER_CHARS
) -> RequestHeader:
    """Parse and validate the JSON part of an infer request (400 with a reason on failure)."""
    doc = loads_bounded(buf, max_depth, max_number_chars)
    data: dict[str, Any] = {}
    if isinstance(doc, dict) and isinstance(doc.get("inputs"), list):
        stripped = []
        for i, inp in enumerate(doc["inputs"]):
            if isinstance(inp, dict) and "data" in inp:
                inp = dict(inp)
                data[f"#{i}"] = inp.pop("data")
            stripped.append(inp)
        doc = doc | {"inputs": stripped}
    try:
        req = InferenceRequest.model_validate(doc)
    except ValidationError as exc:
        raise OipError(_pydantic_message(exc)) from None
    named: dict[str, Any] = {}
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for i, inp in enumerate(req.inputs):
        if inp.name in counts:
            raise OipError(f"input '{inp.name}' appears twice")
        if inp.datatype not in OIP_TO_NUMPY:
            raise OipError(
                f"input '{inp.name}': unknown datatype {inp.datatype!r}; "
                f"expected one of {sorted(OIP_TO_NUMPY)}"
            )
        if any(d < 0 for d in inp.shape):
            raise OipError(f"input '{inp.name}': shape {inp.shape} has a negative dimension")
        counts[inp.name] = math.prod(inp.shape)
        size = (inp.parameters or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise OipError(f"input '{inp.name}': binary_data_size={size!r} is not a byte count")
            sizes[inp.name] = size
        elif f"#{i}" in data:
            named[inp.name] = data[f"#{i}"]
        else:
            raise OipError(f"input '{inp.name}' has neither data nor binary_data_size")
    return RequestHeader(req, named, counts, sizes)


def _tensor_from_json(
    name: str, datatype: str, shape: list[int], count: int, data: Any
) -> np.ndarray:
    dtype = OIP_TO_NUMPY[datatype]
    if datatype == "BYTES":
        flat = np.array(data, dtype=object).reshape(-1) if isinstance(data, list) else None
        if flat is None or flat.size != count:
            got = 0 if flat is None else flat.size
            raise OipError(f"input '{name}': shape {shape} needs {count} elements, data has {got}")
        return np.array(
            [v if isinstance(v, bytes) else str(v).encode() for v in flat], dtype=object
        ).reshape(shape)
    try:
        arr = np.asarray(data)
    except ValueError:  # ragged nesting
        raise OipError(f"input '{name}': data is not a regular array of numbers") from None
    if arr.size != count:
        raise OipError(f"input '{name}': shape {shape} needs {count} elements, data has {arr.size}")
    if arr.size and arr.dtype.kind not in "biuf":
        raise OipError(f"input '{name}': data does not convert to {datatype} (not all numbers)")
    if dtype.kind in "iu" and arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
        raise OipError(f"input '{name}': data does not convert to {datatype} (non-integer value)")
    if dtype.kind in "iu" and arr.size and arr.dtype.kind in "iuf":
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise OipError(
                f"input '{name}': data does not convert to {datatype} "
                f"(values outside {info.min}..{info.max})"
            )
    return arr.astype(dtype, copy=False).reshape(shape)


def decode_inputs(header: RequestHeader, binary: memoryview | bytes) -> dict[str, np.ndarray]:
    """Tensors from a validated header and the binary part (sizes were checked by admission)."""
    binary = memoryview(binary)
    offset = 0
    inputs: dict[str, np.ndarray] = {}
    for inp in header.request.inputs:
        count = header.counts[inp.name]
        size = header.binary_sizes.get(inp.name)
        if size is None:
            inputs[inp.name] = _tensor_from_json(
                inp.name, inp.datatype, inp.shape, count, header.data[inp.name]
            )
            continue
        if offset + size > len(binary):
            raise OipError(
                f"input '{inp.name}': binary_data_size={size!r} overruns the "
                f"{len(binary)} bytes of binary data"
            )
        raw = binary[offset : offset + size]
        offset += size
        dtype = OIP_TO_NUMPY[inp.datatype]
        if inp.datatype == "BYTES":
            try:
                inputs[inp.name] = deserialize_bytes(bytes(raw), count).reshape(inp.shape)
            except ValueError as exc:
                raise OipError(f"input '{inp.name}': {exc}") from None
            continue
        if size != count * dtype.itemsize:
            raise OipError(
                f"input '{inp.name}': {inp.datatype} shape {inp.shape} needs "
                f"{count * dtype.itemsize} bytes, binary_data_size is {size}"
            )
        inputs[inp.name] = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(inp.shape)
    if offset != len(binary):
        raise OipError(f"{len(binary) - offset} bytes of binary data belong to no input")
    return inputs


def to_parsed(header: RequestHeader, inputs: dict[str, np.ndarray]) -> ParsedRequest:
    req = header.request
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


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    if header_length is None:
        return body, memoryview(b"")
    try:
        json_len = int(header_length)
    except ValueError:
        raise OipError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
    if not 0 < json_len <= len(body):
        raise OipError(f"{HEADER_LENGTH}={json_len} but the body has {len(body)} bytes")
    return body[:json_len], memoryview(body)[json_len:]


def parse_request(body: bytes, header_length: str | None) -> ParsedRequest:
    """Parse and validate a whole infer request body; raises :class:`OipError` (400)."""
    head, binary = split_body(body, header_length)
    header = parse_header(head)
    return to_parsed(header, decode_inputs(header, binary))


JSON_CHUNK_ELEMENTS = 8192  # ~2 ms of float formatting: the GIL can change hands between chunks


def _json_array_parts(flat: np.ndarray, bytes_type: bool) -> list[bytes]:
    if bytes_type:
        items = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat]
        return [json.dumps(items, separators=(",", ":")).encode()]
    parts = [b"["]
    for i in range(0, flat.size, JSON_CHUNK_ELEMENTS):
        text = json.dumps(flat[i : i + JSON_CHUNK_ELEMENTS].tolist(), separators=(",", ":"))
        parts.append((("," if i else "") + text[1:-1]).encode())
    parts.append(b"]")
    return parts


def build_response(
    model_name: str,
    model_version: str,
    request: ParsedRequest,
    outputs: dict[str, np.ndarray],
    max_json_elements: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Serialise outputs; returns (body, extra headers)."""
    parts, headers = build_response_parts(
        model_name, model_version, request, outputs, max_json_elements
    )
    return b"".join(parts), headers


def build_response_parts(
    model_name: str,
    model_version: str,
    request: ParsedRequest,
    outputs: dict[str, np.ndarray],
    max_json_elements: int | None = None,
) -> tuple[list[bytes], dict[str, str]]:
    """Serialise outputs as body chunks (sent as they are); JSON data is formatted in chunks."""
    names = request.requested or list(outputs)
    doc_outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    arrays: dict[str, tuple[np.ndarray, bool]] = {}
    json_elements = 0
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
        else:
            json_elements += arr.size
            if max_json_elements is not None and json_elements > max_json_elements:
                raise OipError(
                    f"output '{name}' brings the JSON response to {json_elements} elements; the "
                    f"limit is {max_json_elements}: request binary outputs "
                    "(parameters.binary_data_output=true)"
                )
            token = f"@@data{len(arrays)}@@"
            arrays[token] = (arr.reshape(-1), entry["datatype"] == "BYTES")
            entry["data"] = token
        doc_outputs.append(entry)
    doc: dict[str, Any] = {
        "model_name": model_name,
        "model_version": model_version,
        "outputs": doc_outputs,
    }
    if request.id is not None:
        doc["id"] = request.id
    # The JSON skeleton is small; each array is spliced in as its own chunks, so no step copies
    # or scans the whole (possibly 80 MB) body while holding the GIL.
    rest = json.dumps(doc, separators=(",", ":"))
    parts: list[bytes] = []
    for token, (flat, is_bytes) in arrays.items():
        before, _, rest = rest.partition(f'"{token}"')
        parts.append(before.encode())
        parts.extend(_json_array_parts(flat, is_bytes))
    parts.append(rest.encode())
    head_len = sum(len(p) for p in parts)
    if not blobs:
        return parts, {"content-type": "application/json"}
    return parts + blobs, {
        HEADER_LENGTH: str(head_len),
        "content-type": "application/octet-stream",
    }
