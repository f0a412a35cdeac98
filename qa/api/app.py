"""The app factory: load the model and index once, map errors, mount the routes and the page."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from qa import __version__
from qa.api import admin, chat, queries
from qa.api.errors import (
    AdminDisabledError,
    ConflictError,
    NotFoundError,
    NotReadyError,
    UnauthorizedError,
    UnsupportedTypeError,
    UploadError,
    UploadTooLargeError,
)
from qa.api.jobs import IngestJobs
from qa.api.service import SerialQA
from qa.config import Settings
from qa.errors import IndexMismatchError, IndexNotFoundError, IngestError, QAError, ReadError
from qa.pipeline import QA, load_embedder

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

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
    NotReadyError: 503,
    IndexNotFoundError: 503,
    IndexMismatchError: 503,
}


def status_for(ex: QAError) -> int:
    """The HTTP status of a domain error (400 unless listed)."""
    return next((ERROR_STATUS[t] for t in type(ex).__mro__ if t in ERROR_STATUS), 400)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts)


def create_app(settings: Settings, *, qa: QA | None = None) -> FastAPI:
    """Build the FastAPI app; pass `qa` (a `SerialQA`) to reuse a loaded service (tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = qa or SerialQA.from_settings(settings)
        service.warm_up()  # loads the model's weights, so the first request is fast
        # Ingests embed with their own model instance: tokenizers are not thread-safe.
        jobs = IngestJobs(service, embedder=load_embedder(service.settings))
        app.state.qa, app.state.jobs = service, jobs
        try:
            yield
        finally:
            app.state.jobs.shutdown()

    app = FastAPI(
        title="ATMP-QA",
        version=__version__,
        summary="Answers with citations from EU/UK advanced-therapy (ATMP) law.",
        lifespan=lifespan,
    )
    app.state.settings = settings
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
        return JSONResponse({"detail": str(ex)}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, ex: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in ex.errors()]
        problems = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(
            {"detail": f"Invalid request: {problems}.", "errors": errors}, status_code=422
        )

    app.include_router(queries.router)
    app.include_router(admin.router)
    app.include_router(chat.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def chat_page() -> FileResponse:
        """The built-in chat page."""
        return FileResponse(STATIC_DIR / "index.html")

    return app
