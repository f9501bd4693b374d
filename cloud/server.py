"""The FastAPI application: Open Inference Protocol v2 REST endpoints, security and limits."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from edgesplit.cloud.batcher import Executor
from edgesplit.cloud.errors import InferenceTimeout, OipError, Overloaded
from edgesplit.cloud.metrics import Metrics
from edgesplit.cloud.protocol import (
    HEADER_LENGTH,
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
    build_response,
    parse_request,
)
from edgesplit.cloud.repository import Repository
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

SERVER_NAME = "edgesplit-cloud"
SERVER_VERSION = "0.1.0"
EXTENSIONS = ["binary_tensor_data", "model_repository", "metrics"]

log = logging.getLogger("edgesplit.cloud")


@dataclass
class ServerSettings:
    api_keys: list[str] = field(default_factory=list)  # empty = no authentication
    max_body_bytes: int = 64 * 1024 * 1024
    request_timeout_s: float = 30.0
    drain_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes={self.max_body_bytes}: expected >= 1024 bytes")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s={self.request_timeout_s}: expected > 0 seconds")
        if any(len(k) < 16 for k in self.api_keys):
            raise ValueError("API keys must be at least 16 characters long")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: structured logs a collector can index."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "msg": record.getMessage(),
        }
        doc.update(getattr(record, "fields", {}))
        return json.dumps(doc)


ERROR_RESPONSES = {
    400: {"model": ErrorResponse, "description": "malformed request (the reason names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong API key"},
    404: {"model": ErrorResponse, "description": "unknown model or version"},
    413: {"model": ErrorResponse, "description": "request body over the size limit"},
    429: {"model": ErrorResponse, "description": "queue full; see Retry-After"},
    503: {"model": ErrorResponse, "description": "shutting down"},
    504: {"model": ErrorResponse, "description": "inference did not finish in time"},
}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(repository: Repository, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    metrics = Metrics()
    workers = sum(e.config.instances * len(e.versions) for e in repository.models.values())
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ort")
    executors: dict[tuple[str, str], Executor] = {}
    state = {"ready": False}
    keys = [k.encode() for k in settings.api_keys]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for name, entry in repository.models.items():
            for version, model in entry.versions.items():
                ex = Executor(model, pool, metrics, name)
                ex.start()
                executors[(name, version)] = ex
        state["ready"] = True
        log.info("ready", extra={"fields": {"models": sorted(repository.models)}})
        yield
        state["ready"] = False
        await asyncio.gather(*(ex.drain(settings.drain_timeout_s) for ex in executors.values()))
        pool.shutdown(wait=True)
        log.info("stopped")

    async def require_key(request: Request) -> None:
        if not keys:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-api-key")
        given_b = (given or "").encode()
        # Compare against every key, in constant time per key.
        ok = False
        for key in keys:
            ok |= hmac.compare_digest(given_b, key)
        if not ok:
            raise OipError("missing or invalid API key (send 'Authorization: Bearer KEY')", 401)

    app = FastAPI(
        title="edgesplit cloud",
        version=SERVER_VERSION,
        description="Open Inference Protocol (KServe v2) REST API with Triton's binary tensor "
        "extension, serving the heavy side of edgesplit's device-cloud split.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.executors = executors
    secured = [Depends(require_key)]

    @app.exception_handler(OipError)
    async def oip_error(_request: Request, exc: OipError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, Overloaded):
            headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
        return _error(exc.status, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, f"invalid request: {where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return _error(500, f"internal error: {type(exc).__name__}")

    @app.get("/v2", response_model=ServerMetadata, dependencies=secured, responses=ERROR_RESPONSES)
    async def server_metadata() -> ServerMetadata:
        return ServerMetadata(name=SERVER_NAME, version=SERVER_VERSION, extensions=EXTENSIONS)

    @app.get("/v2/health/live")
    async def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready", responses={503: {"model": ErrorResponse}})
    async def ready():
        if not state["ready"]:
            return _error(503, "not ready")
        return {"ready": True}

    def metadata(name: str, version: str | None) -> ModelMetadata:
        entry, v, model = repository.get(name, version)
        return ModelMetadata(
            name=name,
            versions=sorted(entry.versions, key=int),
            platform=model.platform,
            inputs=model.inputs,
            outputs=model.outputs,
        )

    @app.get(
        "/v2/models/{name}",
        response_model=ModelMetadata,
        dependencies=secured,
        responses=ERROR_RESPONSES,
    )
    async def model_metadata(name: str) -> ModelMetadata:
        return metadata(name, None)

    @app.get(
        "/v2/models/{name}/versions/{version}",
        response_model=ModelMetadata,
        dependencies=secured,
        responses=ERROR_RESPONSES,
    )
    async def model_version_metadata(name: str, version: str) -> ModelMetadata:
        return metadata(name, version)

    def model_ready(name: str, version: str | None) -> dict:
        repository.get(name, version)
        return {"name": name, "ready": state["ready"]}

    @app.get("/v2/models/{name}/ready", dependencies=secured, responses=ERROR_RESPONSES)
    async def ready_model(name: str) -> dict:
        return model_ready(name, None)

    @app.get(
        "/v2/models/{name}/versions/{version}/ready",
        dependencies=secured,
        responses=ERROR_RESPONSES,
    )
    async def ready_model_version(name: str, version: str) -> dict:
        return model_ready(name, version)

    @app.get("/v2/models/{name}/config", dependencies=secured, responses=ERROR_RESPONSES)
    async def model_config(name: str) -> dict:
        entry, v, model = repository.get(name, None)
        return entry.config.model_dump() | {"providers": model.providers}

    @app.post("/v2/repository/index", dependencies=secured, responses=ERROR_RESPONSES)
    async def repository_index() -> list[dict]:
        return [
            {"name": n, "version": v, "state": "READY" if state["ready"] else "UNAVAILABLE"}
            for n, e in sorted(repository.models.items())
            for v in sorted(e.versions, key=int)
        ]

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise OipError(
                f"request body is {declared} bytes; the limit is {settings.max_body_bytes} bytes",
                413,
            )
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > settings.max_body_bytes:
                raise OipError(f"request body exceeds {settings.max_body_bytes} bytes", 413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def infer(request: Request, name: str, version: str | None) -> Response:
        t0 = time.monotonic()
        status = 500
        metrics.inflight.inc()
        try:
            entry, v, model = repository.get(name, version)
            body = await read_body(request)
            t_body = time.monotonic()  # the server's own time starts once the body is in
            parsed = parse_request(body, request.headers.get(HEADER_LENGTH))
            size = model.validate(parsed.inputs)
            timeout = settings.request_timeout_s
            if (
                isinstance(parsed.parameters.get("timeout"), int | float)
                and parsed.parameters["timeout"] > 0
            ):
                timeout = min(timeout, parsed.parameters["timeout"] / 1e6)  # Triton: microseconds
            unknown = [
                o for o in parsed.requested or [] if o not in {t.name for t in model.outputs}
            ]
            if unknown:
                raise OipError(f"model '{name}' has no outputs {unknown}")
            try:
                async with asyncio.timeout(timeout):  # no extra task, unlike wait_for
                    outputs = await executors[(name, v)].infer(parsed.inputs, size)
            except TimeoutError:
                raise InferenceTimeout(f"inference did not finish within {timeout:g} s") from None
            body, headers = build_response(name, v, parsed, outputs)
            # W3C Server-Timing: lets a client tell network time from server time.
            headers["Server-Timing"] = f"infer;dur={(time.monotonic() - t_body) * 1e3:.3f}"
            status = 200
            return Response(content=body, headers=headers, status_code=200)
        except OipError as exc:
            status = exc.status
            raise
        finally:
            metrics.inflight.dec()
            elapsed = time.monotonic() - t0
            metrics.requests.labels(name, str(status)).inc()
            metrics.latency.labels(name).observe(elapsed)
            fields = {
                "model": name,
                "version": version,
                "status": status,
                "latency_ms": round(elapsed * 1e3, 3),
            }
            log.info("infer", extra={"fields": fields})

    infer_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "description": f"JSON header + binary tensors (set {HEADER_LENGTH})",
                },
            },
        }
    }

    @app.post(
        "/v2/models/{name}/infer",
        response_model=InferenceResponse,
        dependencies=secured,
        responses=ERROR_RESPONSES,
        openapi_extra=infer_doc,
    )
    async def infer_latest(name: str, request: Request) -> Response:
        return await infer(request, name, None)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        response_model=InferenceResponse,
        dependencies=secured,
        responses=ERROR_RESPONSES,
        openapi_extra=infer_doc,
    )
    async def infer_version(name: str, version: str, request: Request) -> Response:
        return await infer(request, name, version)

    @app.get("/metrics", include_in_schema=True)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # InferenceRequest's nested models must appear under components for the $refs above.
    original_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original_openapi()
        defs = InferenceRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.pop("$defs", {}))
        components["InferenceRequest"] = defs
        return schema

    app.openapi = openapi
    return app
