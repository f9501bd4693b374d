"""Every bound a request meets, server-wide (:class:`Limits`) and per model (:class:`ModelLimits`).

Per-model bounds are derived from the model's declared inputs and its ``config.yaml``, so a
request can be judged from its HTTP headers and its JSON header before its tensors are read:
Triton does the same with ``max_batch_size`` and the model's dims.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from edgesplit.cloud.config import ModelConfig
from edgesplit.cloud.datatypes import OIP_TO_NUMPY
from edgesplit.cloud.errors import OipError, TooLarge
from edgesplit.cloud.protocol import HEADER_LENGTH, RequestHeader, TensorMetadata

KIB, MIB = 1024, 1024 * 1024
# Longest JSON text of one element, with its comma: "-1.2345678901234567e-308," is 25 chars.
JSON_CHARS_PER_ELEMENT = {"BOOL": 6, "UINT8": 4, "INT8": 5, "FP16": 25, "FP32": 25, "FP64": 25}
JSON_CHARS_DEFAULT = 21  # 64-bit integers


@dataclass(frozen=True)
class Limits:
    """Server-wide limits; README "Cloud service" lists each with its default."""

    max_body_bytes: int = 64 * MIB  # any request body
    max_json_bytes: int = 8 * MIB  # a JSON-only body (parsed off the event loop)
    max_header_json_bytes: int = 64 * KIB  # the JSON part of a binary-extension body
    max_json_depth: int = 32  # nesting of [ and {; OIP needs rank + 3
    max_number_chars: int = 64  # one JSON number's text (a 5 000-digit integer is refused)
    max_elements: int = 16 * MIB  # elements of one tensor, from its declared shape
    max_element_bytes: int = 1 * MIB  # one BYTES element (a model's config may lower it)
    max_json_output_elements: int = 8 * MIB  # elements returned as JSON (else ask for binary)
    max_inflight_body_bytes: int = 512 * MIB  # declared bodies admitted and not yet answered
    max_discard_bytes: int = 4 * MIB  # a refused body up to this is read and dropped, not reset
    offload_bytes: int = 64 * KIB  # bodies/outputs above this are (de)coded in a worker thread
    header_timeout_s: float = 10.0  # from connection (or keep-alive reuse) to complete headers
    body_timeout_s: float = 30.0  # from complete headers to the complete body
    keep_alive_s: float = 5.0  # idle keep-alive connection
    max_header_bytes: int = 16 * KIB  # request line + headers
    # Open connections; beyond it new ones get 429 and close. Room for a 10x overload of the
    # largest shipped queue (5 120 clients vs kws-large's 512) each on its own connection: a
    # client refused at connect comes back on a new one, and a storm of those costs more than
    # 429s on connections kept (each later refusal on those is answered from its headers).
    max_connections: int = 8192
    # After a 429, what that connection sends before its Retry-After has passed is read when it
    # has, at most this long after: a client ignoring Retry-After costs no more than one
    # honouring it. Also the longest Retry-After given to spread refused clients' returns
    # (below; the queue's own drain time may make one longer): 5 120 clients against
    # kws-large's 512 places and ~2 700 answers/s here want a mean of 6.8 s; it is held to
    # 10 / 1.5 = 6.7 s, so that the values, spread over 0.5-1.5x it, stay within 3.3-10 s.
    overload_penalty_s: float = 10.0
    # Retry-After is set so that refused clients honouring it come back at about this many per
    # answer (cloud/retry_after.py). Measured here at 10x overload (queue 512, one core busy): a
    # 429 costs the server ~40 us of event loop and ~150 us of CPU in all (the loopback TCP of
    # both reads and writes included), an answer ~370 us: at 0.5 per answer goodput was
    # 0.78-0.86x of saturation; at 0.25 a refusal's cost is ~10 % of the answers'.
    refusals_per_answer: float = 0.25

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                unit = "seconds" if f.name.endswith("_s") else f.name.rsplit("_", 1)[-1]
                raise ValueError(f"limit {f.name}={value!r}: expected > 0 ({unit})")
        if self.max_json_bytes > self.max_body_bytes:
            raise ValueError(
                f"max_json_bytes={self.max_json_bytes} exceeds max_body_bytes="
                f"{self.max_body_bytes} (bytes)"
            )


@dataclass(frozen=True)
class InputSpec:
    name: str
    datatype: str
    dims: list[int]  # -1 = free
    max_dims: list[int]  # -1 = bounded only by Limits.max_elements
    max_element_bytes: int

    @property
    def max_count(self) -> int | None:
        return None if -1 in self.max_dims else math.prod(self.max_dims)


class ModelLimits:
    """The bounds one model version puts on requests, from its metadata and ``config.yaml``."""

    def __init__(self, cfg: ModelConfig, inputs: list[TensorMetadata], limits: Limits) -> None:
        self.name, self.limits, self.max_batch = cfg.name, limits, cfg.max_batch_size
        unknown = sorted(set(cfg.inputs) - {t.name for t in inputs})
        if unknown:
            raise ValueError(f"{cfg.name}/config.yaml: field 'inputs' names no input {unknown}")
        self.specs: dict[str, InputSpec] = {}
        for t in inputs:
            lim = cfg.inputs.get(t.name)
            dims = list(t.shape)
            if lim and lim.dims:
                if len(lim.dims) != len(dims) or any(
                    d != -1 and o not in (-1, d) for d, o in zip(lim.dims, dims, strict=True)
                ):
                    raise ValueError(
                        f"{cfg.name}/config.yaml: field 'inputs.{t.name}.dims' = {lim.dims} "
                        f"does not fit the model's shape {dims}"
                    )
                dims = [o if d == -1 else d for d, o in zip(lim.dims, dims, strict=True)]
            bound = [d if d != -1 else -1 for d in dims]
            if self.max_batch and bound:
                bound[0] = self.max_batch
            if lim and lim.max_dims:
                if len(lim.max_dims) != len(dims):
                    raise ValueError(
                        f"{cfg.name}/config.yaml: field 'inputs.{t.name}.max_dims' = "
                        f"{lim.max_dims} has rank {len(lim.max_dims)}, the input has {len(dims)}"
                    )
                bound = [
                    b if m == -1 else (m if b == -1 else min(b, m))
                    for b, m in zip(bound, lim.max_dims, strict=True)
                ]
            per_elem = (lim.max_element_bytes if lim else None) or limits.max_element_bytes
            self.specs[t.name] = InputSpec(t.name, t.datatype, dims, bound, per_elem)

    def metadata(self) -> list[TensorMetadata]:
        """Inputs as served: the model's shapes narrowed by ``dims``."""
        return [
            TensorMetadata(name=s.name, datatype=s.datatype, shape=s.dims)
            for s in self.specs.values()
        ]

    def _max_input_bytes(self, spec: InputSpec, binary: bool) -> int:
        count = spec.max_count or self.limits.max_elements
        if spec.datatype == "BYTES":  # u32 length + data, or a JSON string with escapes
            return (
                count * (4 + spec.max_element_bytes)
                if binary
                else count * (6 * spec.max_element_bytes + 3)
            )
        if binary:
            return count * OIP_TO_NUMPY[spec.datatype].itemsize
        return count * JSON_CHARS_PER_ELEMENT.get(spec.datatype, JSON_CHARS_DEFAULT)

    def max_body_bytes(self, binary: bool) -> int:
        """The largest body a valid request can have (binary extension or pure JSON)."""
        lim = self.limits
        tensors = sum(self._max_input_bytes(s, binary) for s in self.specs.values())
        if binary:
            return min(lim.max_body_bytes, lim.max_header_json_bytes + tensors)
        return min(lim.max_json_bytes, 64 * KIB + tensors)

    def check_headers(self, content_length: int | None, header_length: str | None) -> int | None:
        """Judge a request by its HTTP headers; returns the JSON header's length (binary only)."""
        json_len = None
        if header_length is not None:
            try:
                json_len = int(header_length)
            except ValueError:
                raise OipError(
                    f"{HEADER_LENGTH} must be an integer, got {header_length!r}"
                ) from None
            if not 0 < json_len <= self.limits.max_header_json_bytes:
                raise TooLarge(
                    f"{HEADER_LENGTH}={json_len}: the JSON header must be 1.."
                    f"{self.limits.max_header_json_bytes} bytes"
                )
            if content_length is not None and json_len > content_length:
                raise OipError(f"{HEADER_LENGTH}={json_len} but Content-Length is {content_length}")
        if content_length is not None:
            binary = json_len is not None
            most = self.max_body_bytes(binary)
            if content_length > most:
                kind = "binary-extension" if binary else "JSON"
                raise TooLarge(
                    f"request body is {content_length} bytes; a {kind} request to model "
                    f"'{self.name}' is at most {most} bytes (limits from its inputs' max dims)"
                )
        return json_len

    def check_request(self, header: RequestHeader, binary_bytes: int) -> None:
        """Names, datatypes, shapes and sizes from the JSON header, before any tensor exists."""
        want = self.specs
        given = [i.name for i in header.request.inputs]
        missing, extra = sorted(set(want) - set(given)), sorted(set(given) - set(want))
        if missing or extra:
            raise OipError(
                f"model '{self.name}' takes inputs {sorted(want)}; missing {missing}, "
                f"unexpected {extra}"
            )
        batch = None
        declared_binary = 0
        for inp in header.request.inputs:
            spec = want[inp.name]
            if inp.datatype != spec.datatype:
                raise OipError(
                    f"input '{inp.name}' has datatype {inp.datatype}, model '{self.name}' "
                    f"expects {spec.datatype}"
                )
            shape = inp.shape
            if len(shape) != len(spec.dims) or any(
                s != -1 and s != a for s, a in zip(spec.dims, shape, strict=True)
            ):
                raise OipError(
                    f"input '{inp.name}' has shape {shape}, model '{self.name}' expects "
                    f"{spec.dims} (-1 = any)"
                )
            if self.max_batch:
                if batch is not None and shape[0] != batch:
                    raise OipError("all inputs must have the same batch size (first dimension)")
                batch = shape[0]
                if not 1 <= batch <= self.max_batch:
                    raise OipError(
                        f"batch size {batch} is outside 1..{self.max_batch} for model "
                        f"'{self.name}' (max_batch_size)"
                    )
            for axis, (s, m) in enumerate(zip(shape, spec.max_dims, strict=True)):
                if m != -1 and s > m:
                    raise OipError(
                        f"input '{inp.name}' dimension {axis} is {s}; model '{self.name}' allows "
                        f"at most {m} (max_dims {spec.max_dims} in its config.yaml)"
                    )
            count = header.counts[inp.name]
            if count > self.limits.max_elements:
                raise TooLarge(
                    f"input '{inp.name}' shape {shape} has {count} elements; the limit is "
                    f"{self.limits.max_elements} elements per tensor"
                )
            size = header.binary_sizes.get(inp.name)
            if size is None:
                continue
            declared_binary += size
            if spec.datatype == "BYTES":
                most = count * (4 + spec.max_element_bytes)
                if size > most:
                    raise TooLarge(
                        f"input '{inp.name}': binary_data_size={size} bytes exceeds {count} "
                        f"BYTES elements of at most {spec.max_element_bytes} bytes each"
                    )
            elif size != (need := count * OIP_TO_NUMPY[spec.datatype].itemsize):
                raise OipError(
                    f"input '{inp.name}': {spec.datatype} shape {shape} needs {need} bytes, "
                    f"binary_data_size is {size}"
                )
        if declared_binary != binary_bytes:
            raise OipError(
                f"binary_data_size values add up to {declared_binary} bytes but the body has "
                f"{binary_bytes} bytes after the JSON header"
            )


def content_length(headers: dict[str, str]) -> int | None:
    raw = headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise OipError(f"Content-Length {raw[:40]!r} is not a byte count")
    return int(raw)


def describe(limits: Limits) -> dict[str, Any]:
    return {f.name: getattr(limits, f.name) for f in fields(limits)}
