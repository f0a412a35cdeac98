"""Read endpoints: ask, search, browse documents and passages, liveness and readiness."""

import os
from typing import Annotated

from fastapi import APIRouter, Path, Query

from qa import __version__
from qa.api.deps import QADep
from qa.api.library import document_chunks, document_record, passage_with_neighbours
from qa.api.schemas import (
    AskRequest,
    AskResponse,
    DocumentDetail,
    DocumentsResponse,
    HealthOut,
    Jurisdiction,
    PassageDetail,
    Question,
    ReadyOut,
    SearchResponse,
    answer_out,
    document_detail,
    document_out,
    passage_detail,
    passage_out,
)
from qa.config import MAX_FILTER_DOC_IDS, MAX_SEARCH_K
from qa.retrieval.search import Filters

router = APIRouter()


def _split(values: list[str]) -> list[str]:
    """Repeated (`?doc_ids=a&doc_ids=b`) and comma-separated (`?doc_ids=a,b`) values alike."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@router.get("/health", tags=["service"])
def health() -> HealthOut:
    """Liveness: the process answers."""
    return HealthOut(version=__version__)


@router.get("/ready", tags=["service"], responses={503: {"description": "Index not loaded"}})
def ready(qa: QADep) -> ReadyOut:
    """Readiness: the index is loaded; what it holds and when it was built."""
    manifest = qa.index.manifest
    return ReadyOut(
        documents=len(manifest.documents),
        chunks=manifest.chunk_count,
        model=manifest.model,
        built_at=manifest.built_at,
        index_build=qa.index.path.name if qa.index.path is not None else "",
        worker_pid=os.getpid(),
        rss_mib=round(resident_mib(), 1),
    )


def resident_mib() -> float:
    """This process's resident memory (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@router.post("/ask", tags=["answers"])
def ask(body: AskRequest, qa: QADep) -> AskResponse:
    """Answer a question from the indexed documents, with citations, or abstain."""
    filters = body.filters.to_filters() if body.filters else None
    return answer_out(qa.ask(body.question, top_k=body.top_k, filters=filters))


@router.get("/search", tags=["answers"])
def search(
    qa: QADep,
    q: Annotated[Question, Query(description="Query text")],
    k: Annotated[int, Query(ge=1, le=MAX_SEARCH_K, description="Number of passages")] = 5,
    jurisdiction: Annotated[
        list[Jurisdiction], Query(description="Only these (repeat for both)")
    ] = [],  # noqa: B006
    doc_ids: Annotated[
        list[str],
        Query(
            max_length=MAX_FILTER_DOC_IDS,
            description="Only these documents (repeat or comma-separate)",
        ),
    ] = [],  # noqa: B006
    doc_id: Annotated[list[str], Query(deprecated=True, description="Old name of `doc_ids`")] = [],  # noqa: B006
) -> SearchResponse:
    """Passages that best match `q`, best first (no answer composed)."""
    filters = Filters(
        jurisdictions=frozenset(jurisdiction), doc_ids=frozenset(_split(doc_ids + doc_id))
    )
    return SearchResponse(results=[passage_out(p) for p in qa.search(q, k=k, filters=filters)])


@router.get("/documents", tags=["documents"])
def list_documents(qa: QADep) -> DocumentsResponse:
    """Every indexed document."""
    records = qa.index.manifest.documents.values()
    return DocumentsResponse(documents=[document_out(r) for r in records])


@router.get("/documents/{doc_id}", tags=["documents"], responses={404: {"description": "Unknown"}})
def get_document(qa: QADep, doc_id: str) -> DocumentDetail:
    """A document's metadata and its sections in reading order."""
    index = qa.index
    return document_detail(document_record(index, doc_id), document_chunks(index, doc_id))


@router.get("/passages/{chunk_id}", tags=["documents"], responses={404: {"description": "Unknown"}})
def get_passage(
    qa: QADep,
    chunk_id: Annotated[str, Path(description="A chunk_id from /ask, /search or /documents")],
    around: Annotated[int, Query(ge=0, le=5, description="Neighbours on each side")] = 1,
) -> PassageDetail:
    """A passage with its neighbours in the same document, for showing a citation."""
    return passage_detail(*passage_with_neighbours(qa.index, chunk_id, around=around))
