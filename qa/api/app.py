"""The app factory: load the model and index once, map errors, mount the routes and the page."""

import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from qa import __version__
from qa.api import admin, chat, queries
from qa.api.deps import MULTIPART_SLACK
from qa.api.errors import (
    AdminDisabledError,
    ConflictError,
    InsufficientStorageError,
    NotFoundError,
    NotReadyError,
    StorageError,
    UnauthorizedError,
    UnsupportedTypeError,
    UploadError,
    UploadTooLargeError,
)
from qa.api.freshness import IndexWatcher
from qa.api.jobs import IngestJobs
from qa.api.service import load_service
from qa.config import Settings
from qa.errors import (
    IndexMismatchError,
    IndexNotFoundError,
    IngestError,
    QAError,
    ReadError,
    SourceError,
    UnknownDocumentError,
)
from qa.mcp_server import HttpEndpoint, build_server, transport_security
from qa.pipeline import QA, load_embedder

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Largest JSON body: a question is at most 2,000 characters; a chat history of a few hundred
# turns fits (only the standalone question counts against the question limit). Uploads
# (POST /documents) are limited by QA_MAX_UPLOAD_BYTES instead.
MAX_BODY_BYTES = 1_000_000

# The one place domain errors become HTTP statuses; a subclass takes its nearest listed base.
ERROR_STATUS: dict[type[QAError], int] = {
    UploadError: 400,
    UnauthorizedError: 401,
    AdminDisabledError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    IngestError: 409,  # another ingest holds the lock
    UploadTooLargeError: 413,
    UnsupportedTypeError: 415,
    ReadError: 422,
    UnknownDocumentError: 422,
    InsufficientStorageError: 507,
    StorageError: 503,
    SourceError: 503,  # corpus/sources.toml is broken: the server's configuration
    NotReadyError: 503,
    IndexNotFoundError: 503,
    IndexMismatchError: 503,
}


def status_for(ex: QAError) -> int:
    """The HTTP status of a domain error (400 unless listed)."""
    return next((ERROR_STATUS[t] for t in type(ex).__mro__ if t in ERROR_STATUS), 400)


def describe_invalid(errors: Sequence[dict[str, Any]]) -> str:
    """Validation errors as one sentence; a body that is not JSON says so, with the place."""
    for e in errors:
        if e["type"] == "json_invalid":
            where = e["loc"][1] if len(e["loc"]) > 1 else None
            reason = (e.get("ctx") or {}).get("error", "")
            at = f" at character {where}" if isinstance(where, int) else ""
            return (
                f"The request body is not valid JSON{at}"
                + (f" ({reason})" if reason else "")
                + '; send a JSON object such as {"question": "…"}.'
            )
    problems = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in errors)
    return f"Invalid request: {problems}."


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts)


@dataclass(frozen=True)
class BodyRule:
    """How large a request body may be, the sentence refusing a larger one, and whether a
    declared Content-Length over the limit is refused before the route runs."""

    limit: int
    message: str
    refuse_declared: bool = True


class BodyLimit:
    """Refuse request bodies over a limit with 413 instead of reading them into memory.

    A body sent without a Content-Length (chunked) is counted as it arrives. Uploads check
    their declared size themselves, after authentication (`read_upload`).
    """

    def __init__(self, app: ASGIApp, *, rule_for: Callable[[Scope], BodyRule]) -> None:
        self.app = app
        self.rule_for = rule_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.rule_for(scope)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if rule.refuse_declared and declared.isdigit() and int(declared) > rule.limit:
            response = error_response(scope["path"], 413, rule.message)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > rule.limit:
                    raise HTTPException(413, rule.message)
            return event

        await self.app(scope, limited_receive, send)


class WorkerHeader:
    """Name the worker process on every response (`X-ATMP-Worker: <pid>`), so a client or a
    load balancer's log can tell the workers of `atmp-qa serve --workers N` apart."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-atmp-worker", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, named_send)


def explain_http_error(request: Request, ex: StarletteHTTPException) -> str:
    """Starlette's bare phrases ("Not Found") as sentences that say what to do."""
    method, path = request.method, request.url.path
    if ex.status_code == 404 and ex.detail == "Not Found":
        return f"There is no {method} {path} endpoint; the API reference is at /docs."
    if ex.status_code == 405:
        allowed = (ex.headers or {}).get("Allow", "")
        return f"{method} is not allowed on {path}" + (f"; use {allowed}." if allowed else ".")
    if ex.status_code == 400 and ex.detail == "There was an error parsing the body":
        return (
            "The request body could not be parsed; send a JSON object in UTF-8, "
            'such as {"question": "…"}.'
        )
    return str(ex.detail)


OPENAI_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_response(
    path: str,
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """The error body: `{"detail": …}`, or OpenAI's `{"error": {…}}` envelope on /v1 paths
    (so OpenAI clients show the sentence)."""
    if path == "/v1" or path.startswith("/v1/"):
        kind = "server_error" if status >= 500 else OPENAI_ERROR_TYPES.get(status)
        error = {
            "message": message,
            "type": kind or "invalid_request_error",
            "param": param,
            "code": code,
        }
        return JSONResponse({"error": error, **(extra or {})}, status_code=status, headers=headers)
    return JSONResponse({"detail": message, **(extra or {})}, status_code=status, headers=headers)


def create_app(settings: Settings, *, qa: QA | None = None) -> FastAPI:
    """Build the FastAPI app; pass `qa` (from `load_service`) to reuse a loaded service (tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = qa or load_service(settings)
        service.warm_up()  # loads the model's weights, so the first request is fast
        # Ingests embed with their own model instance: tokenizers are not thread-safe.
        jobs = IngestJobs(
            service,
            embedder=load_embedder(service.settings),
            store=service.settings.index_dir / "jobs",
        )
        app.state.qa, app.state.jobs = service, jobs
        watcher = IndexWatcher(service, interval_s=service.settings.index_poll_s).start()
        # One BLAS thread while serving (see `blas_threads`), once every library is loaded.
        blas = threadpool_limits(settings.blas_threads or None, user_api="blas")
        try:
            async with mcp_endpoint.running():
                yield
        finally:
            blas.restore_original_limits()
            watcher.stop()
            app.state.jobs.shutdown()

    # Swagger UI and ReDoc from the assets fastapi-offline ships, not a CDN: /docs works offline.
    app = FastAPIOffline(
        title="ATMP-QA",
        version=__version__,
        summary="Answers with citations from EU/UK advanced-therapy (ATMP) law.",
        lifespan=lifespan,
    )
    app.state.settings = settings

    def loaded_qa() -> QA:
        service: QA | None = getattr(app.state, "qa", None)
        if service is None:
            raise NotReadyError("The index is not loaded yet; retry when GET /ready answers 200.")
        return service

    mcp_endpoint = HttpEndpoint(
        build_server(loaded_qa),
        transport_security(settings.host, settings.cors_origins),
    )

    upload_rule = BodyRule(
        settings.max_upload_bytes + MULTIPART_SLACK,
        f"The upload is larger than the limit of {settings.max_upload_bytes:,} bytes; "
        "raise QA_MAX_UPLOAD_BYTES or split the document.",
        refuse_declared=False,
    )
    json_rule = BodyRule(
        MAX_BODY_BYTES,
        f"The request body is larger than {MAX_BODY_BYTES:,} bytes; a question is at most "
        "2,000 characters.",
    )

    def body_rule(scope: Scope) -> BodyRule:
        upload = scope["method"] == "POST" and scope["path"] == "/documents"
        return upload_rule if upload else json_rule

    app.add_middleware(BodyLimit, rule_for=body_rule)
    app.add_middleware(WorkerHeader)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(QAError)
    async def domain_error(request: Request, ex: QAError) -> JSONResponse:
        status = status_for(ex)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error_response(
            request.url.path,
            status,
            str(ex),
            param=getattr(ex, "param", None),
            code=getattr(ex, "code", None),
            headers=headers,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, ex: StarletteHTTPException) -> JSONResponse:
        return error_response(
            request.url.path, ex.status_code, explain_http_error(request, ex), headers=ex.headers
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, ex: Exception) -> JSONResponse:
        # A bug: uvicorn logs the traceback; the client still gets the usual one-line body.
        return error_response(
            request.url.path,
            500,
            f"The server failed to handle {request.method} {request.url.path} "
            "(an internal error); the server log has the details.",
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, ex: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in ex.errors()]
        return error_response(
            request.url.path,
            422,
            describe_invalid(ex.errors()),
            param=_field(errors[0]["loc"]) if errors else None,
            extra={"errors": errors},
        )

    app.include_router(queries.router)
    app.include_router(admin.router)
    app.include_router(chat.router)
    # MCP over streamable HTTP: the same tools as `atmp-qa mcp`
    app.router.routes.append(Route("/mcp", mcp_endpoint, include_in_schema=False))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def chat_page() -> FileResponse:
        """The built-in chat page."""
        return FileResponse(STATIC_DIR / "index.html")

    return app


def worker_app() -> FastAPI:
    """The app of one `atmp-qa serve --workers N` process: settings from the environment
    (which the workers inherit), the index loaded by the worker itself at startup."""
    return create_app(Settings())
