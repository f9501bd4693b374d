"""Thin REST endpoints over the data plane, declared in one route table (as MLServer's rest/app.py).

The FastAPI app here serves metadata, readiness, configuration, the repository index and the
OpenAPI docs. Infer, health and metrics are answered by :class:`edgesplit.cloud.http.FastPath`
before FastAPI is reached; they are declared here too so the schema documents them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgesplit.cloud.dataplane import DataPlane
from edgesplit.cloud.errors import OipError
from edgesplit.cloud.http import ApiKeys, error_body, error_headers
from edgesplit.cloud.limits import describe
from edgesplit.cloud.protocol import (
    HEADER_LENGTH,
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
)
from edgesplit.cloud.triton import triton_config
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("edgesplit.cloud")
SERVER_NAME = "edgesplit-cloud"
SERVER_VERSION = "0.2.0"
EXTENSIONS = ["binary_tensor_data", "model_repository", "metrics", "model_configuration"]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "malformed request (the reason names the field)"},
    401: {"model": ErrorResponse, "description": "missing or wrong API key"},
    404: {"model": ErrorResponse, "description": "unknown model or version"},
    408: {"model": ErrorResponse, "description": "headers or body too slow"},
    413: {"model": ErrorResponse, "description": "declared size over a limit"},
    429: {"model": ErrorResponse, "description": "queue full; see Retry-After"},
    503: {"model": ErrorResponse, "description": "loading, or shutting down"},
    504: {"model": ErrorResponse, "description": "inference did not finish in time"},
}
INFER_DOC = {
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


@dataclass
class Route:
    path: str
    endpoint: Callable[..., Any]
    method: str = "GET"
    secured: bool = True
    options: dict[str, Any] = field(default_factory=dict)


class OipApi(FastAPI):
    """FastAPI whose schema also carries InferenceRequest's nested models (for the $refs)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema:
            return self.openapi_schema
        schema = super().openapi()
        defs = InferenceRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.pop("$defs", {}))
        components["InferenceRequest"] = defs
        return schema


def routes(plane: DataPlane) -> list[Route]:
    """The route table: every endpoint, its method, and whether it needs the API key."""

    async def server_metadata() -> ServerMetadata:
        return ServerMetadata(name=SERVER_NAME, version=SERVER_VERSION, extensions=EXTENSIONS)

    async def live() -> dict:
        return {"live": True}

    async def ready() -> Any:
        if not plane.ready or plane.draining:
            return JSONResponse({"error": "not ready"}, status_code=503)
        return {"ready": True}

    async def model_metadata(name: str) -> ModelMetadata:
        return plane.metadata(name, None)

    async def model_version_metadata(name: str, version: str) -> ModelMetadata:
        return plane.metadata(name, version)

    async def model_ready(name: str) -> dict:
        return {"name": name, "ready": plane.model_ready(name, None)}

    async def model_version_ready(name: str, version: str) -> dict:
        return {"name": name, "ready": plane.model_ready(name, version)}

    async def model_config(name: str) -> dict:
        """Triton's model_config shape: input/output dims and types, batching, instances."""
        entry, v, model = plane.model(name, None)
        ex = plane.executors.get((name, v))
        lim = plane.model_limits.get((name, v))
        inputs = lim.metadata() if lim else model.inputs
        return triton_config(
            entry.config, inputs, model.outputs, bool(ex and ex.batching), model.providers
        )

    async def edgesplit_config(name: str) -> dict:
        """Our own config.yaml as loaded, with the batching decision and the limits in force."""
        entry, v, model = plane.model(name, None)
        ex = plane.executors.get((name, v))
        lim = plane.model_limits.get((name, v))
        return entry.config.model_dump() | {
            "providers": model.providers,
            "batching": bool(ex and ex.batching),
            "batch_efficiency": plane.efficiency.get(name),
            "max_body_bytes": {
                "binary": lim.max_body_bytes(True) if lim else None,
                "json": lim.max_body_bytes(False) if lim else None,
            },
            "server_limits": describe(plane.limits),
        }

    async def repository_index() -> list[dict]:
        return [
            {
                "name": n,
                "version": v,
                "state": "READY" if (n, v) in plane.executors else "LOADING",
            }
            for n, e in sorted(plane.repository.models.items())
            for v in (sorted(e.versions, key=int) or [str(e.config.version)])
        ]

    async def infer_latest(name: str, request: Request) -> Response:  # documented; FastPath serves
        return _unreachable()

    async def infer_version(name: str, version: str, request: Request) -> Response:
        return _unreachable()

    async def metrics() -> Response:
        return _unreachable()

    meta = {"response_model": ModelMetadata, "responses": ERROR_RESPONSES}
    infer = {
        "response_model": InferenceResponse,
        "responses": ERROR_RESPONSES,
        "openapi_extra": INFER_DOC,
    }
    return [
        Route("/v2", server_metadata, options={"response_model": ServerMetadata}),
        Route("/v2/health/live", live, secured=False),
        Route("/v2/health/ready", ready, secured=False, options={"responses": ERROR_RESPONSES}),
        Route("/v2/models/{name}", model_metadata, options=meta),
        Route("/v2/models/{name}/versions/{version}", model_version_metadata, options=meta),
        Route("/v2/models/{name}/ready", model_ready, options={"responses": ERROR_RESPONSES}),
        Route(
            "/v2/models/{name}/versions/{version}/ready",
            model_version_ready,
            options={"responses": ERROR_RESPONSES},
        ),
        Route("/v2/models/{name}/config", model_config, options={"responses": ERROR_RESPONSES}),
        Route(
            "/v2/models/{name}/config/edgesplit",
            edgesplit_config,
            options={"responses": ERROR_RESPONSES},
        ),
        Route(
            "/v2/repository/index", repository_index, "POST", options={"responses": ERROR_RESPONSES}
        ),
        Route("/v2/models/{name}/infer", infer_latest, "POST", options=infer),
        Route("/v2/models/{name}/versions/{version}/infer", infer_version, "POST", options=infer),
        Route("/metrics", metrics, secured=False),
    ]


def _unreachable() -> Response:
    return JSONResponse({"error": "served by the fast path"}, status_code=500)


def create_api(plane: DataPlane, keys: ApiKeys) -> FastAPI:
    app = OipApi(
        title="edgesplit cloud",
        version=SERVER_VERSION,
        description="Open Inference Protocol (KServe v2) REST API with Triton's binary tensor "
        "extension, serving the heavy side of edgesplit's device-cloud split.",
    )

    async def require_key(request: Request) -> None:
        keys.check({k.lower(): v for k, v in request.headers.items()})

    for r in routes(plane):
        deps = [Depends(require_key)] if r.secured else None
        app.add_api_route(r.path, r.endpoint, methods=[r.method], dependencies=deps, **r.options)

    @app.exception_handler(OipError)
    async def oip_error(_request: Request, exc: OipError) -> Response:
        return Response(
            error_body(exc.message),
            status_code=exc.status,
            headers=error_headers(exc),
            media_type="application/json",
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {"error": f"invalid request: {where}: {first.get('msg', 'invalid')}"}, status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    return app
