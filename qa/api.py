"""HTTP layer: `create_app(settings)`; the model and index load once, in the lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from qa import __version__
from qa.config import Settings
from qa.errors import IndexMismatchError, IndexNotFoundError, QAError
from qa.pipeline import QA, Passage

ERROR_STATUS: dict[type[QAError], int] = {
    IndexNotFoundError: 503,
    IndexMismatchError: 503,
}


class PassageOut(BaseModel):
    """A retrieved passage with its citation fields."""

    rank: int
    score: float
    chunk_id: str
    doc_id: str
    title: str
    section: str
    page: int | None
    url: str | None
    text: str


class SearchResponse(BaseModel):
    """Passages for a query, best first."""

    results: list[PassageOut]


def passage_out(passage: Passage) -> PassageOut:
    """The public form of a passage."""
    c = passage.chunk
    return PassageOut(
        rank=passage.rank,
        score=round(passage.score, 4),
        chunk_id=c.chunk_id,
        doc_id=c.doc_id,
        title=c.title,
        section=c.section,
        page=c.page,
        url=c.url,
        text=c.text,
    )


def get_qa(request: Request) -> QA:
    """The loaded service (set in the lifespan)."""
    qa: QA = request.app.state.qa
    return qa


QADep = Annotated[QA, Depends(get_qa)]


def create_app(settings: Settings, *, qa: QA | None = None) -> FastAPI:
    """Build the FastAPI app; pass `qa` to reuse an already-loaded service (tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.qa = qa or QA.from_settings(settings)
        app.state.qa.search("warm-up query", k=1)  # so the first request is not slow
        yield

    app = FastAPI(title="ATMP-QA", version=__version__, lifespan=lifespan)

    @app.exception_handler(QAError)
    async def qa_error(request: Request, ex: QAError) -> JSONResponse:
        status = next((s for t, s in ERROR_STATUS.items() if isinstance(ex, t)), 400)
        return JSONResponse(status_code=status, content={"detail": str(ex)})

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness."""
        return {"status": "ok", "version": __version__}

    @app.get("/search", response_model=SearchResponse)
    def search(
        qa: QADep,
        q: Annotated[str, Query(min_length=1, max_length=2000, description="Query text")],
        k: Annotated[int, Query(ge=1, le=50, description="Number of passages")] = 5,
    ) -> SearchResponse:
        """Passages most similar to `q`."""
        if not q.strip():
            raise QAError("The query `q` is empty; send some words to search for.")
        return SearchResponse(results=[passage_out(p) for p in qa.search(q, k=k)])

    return app
