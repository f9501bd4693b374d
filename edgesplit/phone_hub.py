"""The phone as a tier of its own: a hub that answers its wearables or escalates to the cloud.

Wearables (earbuds, glasses) send Open Inference Protocol v2 requests to the hub over BLE; the hub
runs its own model (a real ONNX Runtime session), relays the request to the cloud over a cellular
or Wi-Fi link, or answers itself unless unsure (a cascade). Relaying goes through the same request
flow as the device router (``device/flow.py``: timeout, retries, breaker, fallback), which the
three-tier simulator runs for the phone's hop too. Either hop can fail: when the cloud does not
answer in time the hub answers itself, and when the hub cannot be reached a wearable with a model
answers itself; both answers are flagged degraded. Each answer says who gave it
(``X-Edgesplit-Route``: ``phone`` or ``cloud``; ``device`` when the wearable answered itself) so
the live view and the telemetry can show the route.

Standard library HTTP (a phone-class device installs no web framework) with the OIP binary
extension, as ``device/oip_client.py`` speaks it.
"""

from __future__ import annotations

import json
import re
import struct
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgesplit.device.cloud_client import Attempt, CloudClient
from edgesplit.device.flow import Route
from edgesplit.device.oip_client import (
    HEADER_LENGTH,
    OipClient,
    binary_tensors,
    parse_infer_response,
)
from edgesplit.device.policy import LinkEstimator, PolicyConfig, PolicyKind, RequestCosts
from edgesplit.device.resilience import CircuitBreaker
from edgesplit.device.router import Prediction, Router, Task
from edgesplit.device.runtime import ModelRunner, SessionConfig
from edgesplit.errors import InputError, LinkError

HubRoute = Literal["phone", "cloud", "cascade"]
HUB_ROUTES: tuple[str, ...] = ("phone", "cloud", "cascade")
ROUTE_HEADER = "X-Edgesplit-Route"
DEGRADED_HEADER = "X-Edgesplit-Degraded"
_INFER = re.compile(r"^/v2/models/([A-Za-z0-9_.-]+)(?:/versions/[0-9]+)?/infer$")
MAX_BODY_BYTES = 64 * 2**20  # a wearable never sends more than a few frames


def encode_request(inputs: dict[str, np.ndarray]) -> tuple[bytes, int]:
    """An OIP infer body with binary tensors: the payload and its JSON header length."""
    tensors, blobs = binary_tensors(inputs)
    head = json.dumps({"inputs": tensors, "parameters": {"binary_data_output": True}}).encode()
    return head + b"".join(blobs), len(head)


def decode_request(body: bytes, header_length: str | None) -> dict[str, np.ndarray]:
    """The inputs of an OIP infer body (binary or JSON data); InputError names what is wrong."""
    try:
        return parse_infer_response(body, header_length, key="inputs")
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise InputError(f"infer request: not a valid OIP v2 body ({exc})") from None


def encode_response(model: str, outputs: dict[str, np.ndarray]) -> tuple[bytes, int]:
    tensors, blobs = binary_tensors(outputs)
    head = json.dumps({"model_name": model, "outputs": tensors}).encode()
    return head + b"".join(blobs), len(head)


class LocalModel:
    """A model the hub (or a wearable) runs itself: an ORT session, outputs by name."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.runner = ModelRunner(path, SessionConfig(intra_op_threads=threads))

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name; ModelInputError (an InputError) names a wrong input."""
        return dict(zip(self.runner.output_names, self.runner.run(inputs), strict=True))


def kws_tail_model(threads: int = 1) -> LocalModel:
    """The phone's half of a cut KWS: the FP32 DS-CNN from the cut ``kws-tail`` expects.

    The earbud runs ``device/tasks.py``'s head and sends the activation; the phone (or the
    cloud's ``kws-tail``) finishes it. Extracted once next to the built models (as the head is),
    keyed by the source's content, written atomically for parallel runs."""
    import hashlib
    import os

    import onnx

    from edgesplit.device.paths import built_models_dir
    from edgesplit.device.tasks import KWS_CUT_TENSOR
    from edgesplit.device.workloads import kws

    source = kws.model_path("fp32")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    path = built_models_dir() / f"kws-tail-{digest}.onnx"
    if not path.is_file():
        model = onnx.shape_inference.infer_shapes(onnx.load(str(source)))
        outputs = [o.name for o in model.graph.output]
        tail = onnx.utils.Extractor(model).extract_model([KWS_CUT_TENSOR], outputs)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        onnx.save(tail, str(tmp))
        tmp.replace(path)
    return LocalModel(path, threads)


@dataclass
class HubStats:
    phone: int = 0
    cloud: int = 0
    degraded: int = 0
    errors: int = 0


class KwsOnPhone:
    """The phone's answer to the cloud's KWS models (``kws-large``, ``kws-embed``,
    ``kws-embed-opus``): its own FP32 DS-CNN.

    Takes what the earbud sends the cloud (``device/tasks.py``'s ``cloud_inputs``): an MFCC
    window, or 16 kHz audio (raw, or Opus that the phone decodes), whose MFCC the phone computes
    first; so the phone can stand in
    for the cloud whichever front end the earbud's task uses."""

    def __init__(self, model: LocalModel) -> None:
        self.model = model

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from edgesplit.device.audio.features import CLIP_SAMPLES, mfcc

        if len(inputs) != 1:
            raise InputError(f"kws on the phone: expected one input tensor, got {len(inputs)}")
        sent = next(iter(inputs.values()))
        if sent.dtype == np.uint8:  # Opus from the earbud (kws-embed-opus): decode it first
            from edgesplit.device.audio import opus

            sent = opus.decode_clip(sent.tobytes(), CLIP_SAMPLES)
        x = np.asarray(sent, np.float32)
        if x.shape[-2:] != (49, 10):  # raw audio: the phone computes the MFCC window
            audio = x.reshape(-1)[:CLIP_SAMPLES]
            if audio.size < CLIP_SAMPLES:
                audio = np.pad(audio, (0, CLIP_SAMPLES - audio.size))
            x = mfcc(audio)
        name = self.model.runner.inputs[0].name
        return self.model({name: x.reshape(1, 1, 49, 10)})


PhoneModel = LocalModel | KwsOnPhone


def confidence(outputs: dict[str, np.ndarray]) -> float:
    """How sure a model is of its answer: softmax top-1 of ``logits``, else its ``confidence``."""
    if "logits" in outputs:
        z = outputs["logits"].reshape(-1).astype(np.float64)
        p = np.exp(z - z.max())
        return float(p.max() / p.sum())
    if "confidence" in outputs:
        return float(np.asarray(outputs["confidence"]).reshape(-1)[0])
    return 1.0


class HeaderOipClient(OipClient):
    """An OIP client that keeps, per thread, the headers of the last answer (the hub's route)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen = threading.local()

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[bytes, Any]:
        self.seen.headers = None
        raw, got = super()._request(method, path, body, headers)
        self.seen.headers = got
        return raw, got


class RouteClient(CloudClient):
    """A cloud client that says who answered: after each successful attempt, ``box`` (set per
    request by its owner) gets the tier (``route``) and ``degraded`` flag from the hub's headers.

    The box is read when the attempt starts, so a late answer to an abandoned (hedged) call lands
    in its own request's box, never in the next one's."""

    def __init__(self, *args: Any, connect_to: tuple[str, int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.oip = self.header_oip = HeaderOipClient(
            self.oip.base_url,
            self.oip.api_key,
            self.timeout_s,
            ca_cert=kwargs.get("ca_cert"),
            connect_to=connect_to,
        )
        self.box: dict[str, Any] | None = None
        self.seen = threading.local()

    def attempt(
        self, model: str, inputs: dict[str, np.ndarray], timeout_ms: float | None = None
    ) -> Attempt:
        box = self.box
        got = super().attempt(model, inputs, timeout_ms)
        headers = getattr(self.header_oip.seen, "headers", None)  # this thread's call
        if box is not None and got.called.ok and headers is not None:
            box["route"] = headers.get(ROUTE_HEADER, "cloud")
            box["degraded"] = headers.get(DEGRADED_HEADER) == "1"
        self.seen.error = got.called.error
        return got

    def seen_error(self) -> str:
        """This thread's last attempt's error ('' when it succeeded or none was made)."""
        return str(getattr(self.seen, "error", ""))


class _NoPhoneModel(Exception):
    """The flow wanted the phone's own answer and the phone has no model for the request."""


class PhoneHub:
    """An OIP endpoint on loopback: the phone's own model, or the cloud behind it.

    ``models`` maps a model name the wearables ask for to the phone's model; ``cloud_models``
    maps it to the cloud's name for it (the same name when absent). ``route`` is the default
    (a request may ask for one with the ``X-Edgesplit-Route`` header): ``phone`` answers here;
    ``cloud`` relays and ``cascade`` answers here unless unsure (below ``threshold``), both
    through the request flow the device router runs (``device/flow.py``: the client's timeout,
    ``retries`` with backoff, a circuit breaker), so a slow or failed cloud is answered by the
    phone, flagged degraded. ``connect_to`` reaches the cloud through another address (a link
    emulator) while the URL names it (TLS checks its host name)."""

    def __init__(
        self,
        models: dict[str, PhoneModel],
        cloud_url: str | None,
        route: HubRoute = "cloud",
        cloud_models: dict[str, str] | None = None,
        cloud_timeout_s: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        retries: int = 0,
        threshold: float = 0.8,
        connect_to: tuple[str, int] | None = None,
        api_key: str | None = None,
        ca_cert: Path | None = None,
    ) -> None:
        if route not in HUB_ROUTES:
            raise InputError(f"phone hub route {route!r}: expected {' or '.join(HUB_ROUTES)}")
        if cloud_timeout_s <= 0:
            raise InputError(f"cloud_timeout_s = {cloud_timeout_s}: expected > 0 (unit: seconds)")
        if not 0 <= threshold <= 1:
            raise InputError(f"threshold = {threshold}: expected a confidence in 0..1")
        self.models, self.cloud_url, self.route = models, cloud_url, route
        self.cloud_models = cloud_models or {}
        self.cloud_timeout_s, self.threshold = cloud_timeout_s, threshold
        self.client: RouteClient | None = None
        if cloud_url:
            self.client = RouteClient(
                cloud_url,
                api_key,
                timeout_s=cloud_timeout_s,
                retries=retries,
                breaker=CircuitBreaker(3, 3.0),
                connect_to=connect_to,
                ca_cert=ca_cert,
            )
        self.estimator = LinkEstimator(10.0, 10.0, 80.0)  # a cellular prior; observed from then on
        self.stats = HubStats()
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the stats say it
                return

            def do_GET(self) -> None:
                if self.path == "/v2/health/live":
                    self._send(200, b'{"live": true}', {"Content-Type": "application/json"})
                else:
                    self._error(404, f"no route {self.path}")

            def do_POST(self) -> None:
                m = _INFER.match(self.path)
                if not m:
                    self._error(404, f"no route {self.path}")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY_BYTES:
                    self._error(
                        400, f"Content-Length = {length}: expected 1..{MAX_BODY_BYTES} bytes"
                    )
                    return
                body = self.rfile.read(length)
                try:
                    status, payload, headers = hub.handle(m.group(1), body, dict(self.headers))
                except InputError as exc:
                    self._error(400, str(exc))
                    return
                self._send(status, payload, headers)

            def _error(self, status: int, message: str) -> None:
                with hub._lock:
                    hub.stats.errors += 1
                body = json.dumps({"error": message}).encode()
                self._send(status, body, {"Content-Type": "application/json"})

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host: str = str(self.server.server_address[0])
        self.port: int = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def handle(
        self, model: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """One wearable request: (status, body, headers), the route and degraded flag set."""
        want = headers.get(ROUTE_HEADER, self.route)
        if want not in HUB_ROUTES:
            raise InputError(f"{ROUTE_HEADER}: {want!r}: expected {' or '.join(HUB_ROUTES)}")
        local = self.models.get(model)
        t0 = time.perf_counter()
        inputs = decode_request(body, headers.get(HEADER_LENGTH))
        if want == "phone" or self.client is None:
            if local is None:
                raise InputError(
                    f"model {model!r}: not on the phone (has: {', '.join(self.models)})"
                )
            out = local(inputs)  # a wrong input raises ModelInputError: a 400 naming it
            return self._answer(model, out, "phone", want != "phone", t0)
        return self._routed(model, local, inputs, len(body), want, t0)

    def _routed(
        self,
        model: str,
        local: PhoneModel | None,
        inputs: dict[str, np.ndarray],
        body_bytes: int,
        want: str,
        t0: float,
    ) -> tuple[int, bytes, dict[str, str]]:
        """``cloud`` or ``cascade`` through the shared request flow, the phone as its device."""
        assert self.client is not None
        got: dict[str, dict[str, np.ndarray]] = {}

        def on_phone(x: dict[str, np.ndarray]) -> Prediction:
            if local is None:
                raise _NoPhoneModel
            got["out"] = local(x)
            return "phone", confidence(got["out"])

        def from_cloud(out: dict[str, np.ndarray]) -> Prediction:
            got["out"] = out
            return "cloud", confidence(out)

        task = Task(model, on_phone, self.cloud_models.get(model, model), dict, from_cloud)
        kind: PolicyKind = "cascade" if want == "cascade" and local is not None else "cloud-only"
        router = Router(PolicyConfig(kind, self.threshold), self.client, self.estimator)
        costs = RequestCosts(self.cloud_timeout_s * 1e3, body_bytes, 256, 5.0, 5.0)
        try:
            ans = router.handle(task, inputs, costs)
        except _NoPhoneModel:
            why = self.client.seen_error() or "no answer"
            message = f"the cloud did not answer ({why}) and the phone has no model {model!r}"
            body = json.dumps({"error": message}).encode()
            return 503, body, {"Content-Type": "application/json"}
        tier = "cloud" if ans.route in Route.remote() else "phone"
        return self._answer(model, got["out"], tier, ans.degraded, t0)

    def _answer(
        self, model: str, outputs: dict[str, np.ndarray], tier: str, degraded: bool, t0: float
    ) -> tuple[int, bytes, dict[str, str]]:
        payload, n = encode_response(model, outputs)
        with self._lock:
            if tier == "phone":
                self.stats.phone += 1
            else:
                self.stats.cloud += 1
            self.stats.degraded += degraded
        hub_ms = (time.perf_counter() - t0) * 1e3
        return (
            200,
            payload,
            {
                HEADER_LENGTH: str(n),
                "Content-Type": "application/octet-stream",
                ROUTE_HEADER: tier,
                DEGRADED_HEADER: "1" if degraded else "0",
                # The hub's own time (its model, or its relay and the cloud): the wearable's
                # network time is then its own hop alone.
                "Server-Timing": f"infer;dur={hub_ms:.3f}",
            },
        )

    def start(self) -> PhoneHub:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> PhoneHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class WearableAnswer:
    outputs: dict[str, np.ndarray]
    route: str  # device | phone | cloud
    degraded: bool
    total_ms: float
    sent_bytes: int


class Wearable:
    """A wearable's side: send to the hub over its link, or answer itself when it cannot."""

    def __init__(
        self, hub_url: str, local: LocalModel | None = None, timeout_s: float = 2.0
    ) -> None:
        self.hub_url, self.local, self.timeout_s = hub_url.rstrip("/"), local, timeout_s

    def infer_split(
        self,
        head: ModelRunner,
        tail_model: str,
        inputs: dict[str, np.ndarray],
        route: str | None = None,
    ) -> WearableAnswer:
        """A cut across tiers: the head here, the tensor at the cut to the hub (phone or cloud
        finishes it). Route ``device+phone`` or ``device+cloud``; when the hub cannot be reached
        the wearable's whole model answers (the head alone cannot), degraded."""
        act = dict(zip(head.output_names, head.run(inputs), strict=True))
        ans = self.infer(tail_model, act, route, fallback_inputs=inputs)
        if ans.route == "device":
            return ans
        return WearableAnswer(
            ans.outputs, f"device+{ans.route}", ans.degraded, ans.total_ms, ans.sent_bytes
        )

    def infer(
        self,
        model: str,
        inputs: dict[str, np.ndarray],
        route: str | None = None,
        fallback_inputs: dict[str, np.ndarray] | None = None,
    ) -> WearableAnswer:
        payload, n = encode_request(inputs)
        headers = {HEADER_LENGTH: str(n), "Content-Type": "application/octet-stream"}
        if route:
            headers[ROUTE_HEADER] = route
        req = urllib.request.Request(
            f"{self.hub_url}/v2/models/{model}/infer", data=payload, method="POST", headers=headers
        )
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                body = resp.read()
                outputs = parse_infer_response(body, resp.headers.get(HEADER_LENGTH))
                ms = (time.perf_counter() - t0) * 1e3
                return WearableAnswer(
                    outputs,
                    resp.headers.get(ROUTE_HEADER, "phone"),
                    resp.headers.get(DEGRADED_HEADER) == "1",
                    ms,
                    len(payload),
                )
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise InputError(f"phone hub: HTTP {exc.code}: {exc.read()[:200]!r}") from None
        except (OSError, TimeoutError):
            pass
        if self.local is None:
            raise LinkError(
                f"phone hub at {self.hub_url} unreachable and no model on the wearable "
                f"(waited {self.timeout_s:g} s)"
            )
        outputs = self.local(fallback_inputs if fallback_inputs is not None else inputs)
        return WearableAnswer(outputs, "device", True, (time.perf_counter() - t0) * 1e3, 0)
