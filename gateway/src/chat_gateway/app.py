"""The gateway application: REST, SSE and WebSocket routes, GraphQL, OpenAPI and the chat page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from grpclib.const import Status
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from chat_gateway.bodies import BodyLimit
from chat_gateway.config import GatewayConfig, UpstreamAddress
from chat_gateway.errors import GatewayError, status_body
from chat_gateway.graphql import GraphQLLimits, graphql_router
from chat_gateway.openapi import openapi_document
from chat_gateway.rest import RestRoutes
from chat_gateway.schema import rpcs
from chat_gateway.upstream import Upstream

log = logging.getLogger("chat_gateway")

_HTTP_TO_STATUS = {404: Status.NOT_FOUND, 405: Status.UNIMPLEMENTED}


def app_factory(upstream: UpstreamAddress, config: GatewayConfig | None = None) -> FastAPI:
    """Build the gateway in front of the gRPC services at ``upstream`` (for tests and benchmarks too)."""
    settings = config or GatewayConfig(upstream=upstream)
    channel = Upstream(
        upstream, unary_timeout=settings.unary_timeout, tls=settings.upstream_tls, pool=settings.pool
    )
    limits = GraphQLLimits(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_tokens=settings.graphql_max_tokens,
        introspection=settings.graphql_introspection,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await channel.close()

    app = FastAPI(
        title="chat.v1 gateway",
        lifespan=lifespan,
        openapi_url=None,  # the document is generated from the schema, served below
        docs_url=None,
        redoc_url=None,
    )
    schema_rpcs = rpcs()
    RestRoutes(channel).install(app.router, schema_rpcs)
    app.include_router(graphql_router(channel, limits), prefix="/graphql")
    document = openapi_document(schema_rpcs)
    _install_docs(app, document)
    _install_page(app)
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.body_limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["authorization", "content-type"],
        )
    return app


def _install_docs(app: FastAPI, document: dict[str, Any]) -> None:
    """``/openapi.json`` and Swagger UI at ``/docs``, its files served from the fastapi-offline wheel."""
    assets = files("fastapi_offline").joinpath("static")

    async def openapi(_: Request) -> Response:
        return JSONResponse(document)

    async def docs(_: Request) -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="chat.v1 gateway",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    app.router.add_route("/openapi.json", openapi, methods=["GET"], include_in_schema=False)
    app.router.add_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")


def _install_page(app: FastAPI) -> None:
    page = files("chat_gateway").joinpath("page")

    async def index(_: Request) -> Response:
        return FileResponse(str(page.joinpath("index.html")))

    app.router.add_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount("/page", StaticFiles(directory=str(page)), name="page")


def _install_error_handlers(app: FastAPI) -> None:
    async def gateway_error(_: Request, error: Exception) -> Response:
        if not isinstance(error, GatewayError):  # registered for GatewayError only
            raise TypeError(f"the GatewayError handler got a {type(error).__name__}")
        return JSONResponse(
            status_body(error.status, error.message, error.details),
            status_code=error.http_status,
            headers=error.headers,
        )

    async def http_error(_: Request, error: Exception) -> Response:
        if not isinstance(error, HTTPException):  # registered for HTTPException only
            raise TypeError(f"the HTTPException handler got a {type(error).__name__}")
        status = _HTTP_TO_STATUS.get(error.status_code, Status.UNKNOWN)
        message = "no such route" if error.status_code == 404 else str(error.detail)
        return JSONResponse(
            status_body(status, message), status_code=error.status_code, headers=error.headers
        )

    async def unexpected(_: Request, error: Exception) -> Response:
        log.error("unexpected error", exc_info=error)
        return JSONResponse(status_body(Status.INTERNAL, "internal gateway error"), status_code=500)

    app.add_exception_handler(GatewayError, gateway_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
