"""HTTP request and response bodies (pydantic lives here, at the edge) and their converters."""

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from qa.answer import Answer, Citation
from qa.chunking import Chunk
from qa.config import MAX_ASK_K, MAX_FILTER_DOC_IDS, MAX_QUESTION_CHARS
from qa.index import DocumentRecord
from qa.retrieval.search import Filters, Passage

Jurisdiction = Literal["EU", "UK"]
# Where a document came from: the official text as mirrored (sha256 checked against
# sources.toml), a file uploaded through POST /documents, or any other local file.
Origin = Annotated[
    Literal["official mirror", "uploaded", "local file"],
    Field(
        description="Where the text came from: `official mirror` (its sha256 matches "
        "sources.toml), `uploaded` (POST /documents) or `local file`."
    ),
]
Question = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS)
]
DocId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _as_list(value: object) -> object:
    """ "EU" and ["EU"] mean the same filter."""
    return [value] if isinstance(value, str) else value


class FiltersIn(BaseModel):
    """Restrict retrieval to jurisdictions and/or documents (empty: no restriction). Each
    takes one value or a list: `"jurisdiction": "EU"` or `["EU", "UK"]`."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter must not be ignored

    jurisdiction: Annotated[list[Jurisdiction], BeforeValidator(_as_list)] = Field(
        default_factory=list, examples=["EU", ["EU", "UK"]]
    )
    doc_ids: Annotated[list[DocId], BeforeValidator(_as_list)] = Field(
        default_factory=list, max_length=MAX_FILTER_DOC_IDS, examples=[["32007R1394"]]
    )

    def to_filters(self) -> Filters:
        """The retrieval form of the filters."""
        return Filters(jurisdictions=frozenset(self.jurisdiction), doc_ids=frozenset(self.doc_ids))


class AskRequest(BaseModel):
    """A question, how many passages to consider, and optional filters."""

    model_config = ConfigDict(extra="forbid")

    question: Question = Field(examples=["How long must traceability data be kept?"])
    top_k: int = Field(
        5,
        ge=1,
        le=MAX_ASK_K,
        validation_alias=AliasChoices("k", "top_k"),
        description="Passages to retrieve and cite from (`k`, as in `/search` and the CLI; "
        "`top_k` is accepted too).",
    )
    filters: FiltersIn | None = None


class CitationOut(BaseModel):
    """A passage behind the answer; `quote` is the verbatim sentence(s) it contributed."""

    n: int
    chunk_id: str
    doc_id: str
    title: str
    short_title: str
    section: str
    page: int | None
    url: str | None
    quote: str
    text: str
    score: float
    used: bool = Field(
        True, description="Quoted in the answer; false for a 'see also' passage it does not quote."
    )
    jurisdiction: str | None = None
    origin: Origin
    provision_url: str | None = Field(
        None,
        description="The cited provision's own page on the official site (legislation.gov.uk "
        "regulation or schedule paragraph, EUR-Lex article or annex anchor where the page has "
        "one); otherwise the act's `url`.",
    )


class AskResponse(BaseModel):
    """An answer with `[n]` markers pointing into `citations`, or an abstention."""

    answer: str
    abstained: bool
    citations: list[CitationOut]
    related: list[CitationOut]
    caveats: list[str] = Field(
        default_factory=list,
        description="How current the quoted texts are, one line each (excerpts, consolidations "
        "as at a date, superseded or amending texts), from corpus/sources.toml.",
    )
    took_ms: float
    index_build: str = Field(
        "",
        description="The published index build the answer was drawn from (`GET /ready` shows "
        "the one being served); every passage of one answer comes from one build.",
    )
    generator: str | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="Only with QA_LLM_BASE_URL set: `llm:<model>` for a generated answer, "
        "`extractive` when the model was not called or its answer was not usable.",
    )
    generator_error: str | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="Why the model's answer is not shown (unreachable, timeout, no citation…).",
    )


class PassageOut(BaseModel):
    """A retrieved passage with its citation fields."""

    rank: int
    score: float
    chunk_id: str
    doc_id: str
    title: str
    short_title: str = ""
    section: str
    page: int | None
    url: str | None
    text: str
    origin: Origin


class SearchResponse(BaseModel):
    """Passages for a query, best first."""

    results: list[PassageOut]


class DocumentOut(BaseModel):
    """An indexed document."""

    doc_id: str
    title: str
    short_title: str
    jurisdiction: str | None
    kind: str | None
    version_date: str | None
    status: str = Field(
        "current",
        description="Version status of the text held: current, not-current, excerpt, "
        "as-made-amending, not-yet-applicable, to-be-repealed or superseded.",
    )
    caveat: str = Field(
        "", description="One line to show with answers drawn from this text; empty if none."
    )
    url: str | None
    chunks: int
    pages: int | None
    file_name: str
    origin: Origin


class DocumentsResponse(BaseModel):
    """Every indexed document, by id."""

    documents: list[DocumentOut]


class SectionOut(BaseModel):
    """One passage of a document in reading order: where it sits and how to fetch it."""

    chunk_id: str
    section: str
    heading: str
    heading_path: list[str]
    page: int | None


class DocumentDetail(DocumentOut):
    """A document with its sections in reading order."""

    sections: list[SectionOut]


class ChunkOut(BaseModel):
    """A passage with everything needed to show and cite it."""

    chunk_id: str
    doc_id: str
    title: str
    short_title: str
    jurisdiction: str | None
    section: str
    heading: str
    heading_path: list[str]
    page: int | None
    page_end: int | None
    url: str | None
    ordinal: int
    text: str
    origin: Origin


class PassageDetail(BaseModel):
    """A passage with its neighbours in the same document (`before` ends next to it)."""

    passage: ChunkOut
    before: list[ChunkOut]
    after: list[ChunkOut]


class HealthOut(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"
    version: str


class ReadyOut(BaseModel):
    """The loaded index."""

    status: Literal["ready"] = "ready"
    documents: int
    chunks: int
    model: str
    built_at: str
    index_build: str = Field("", description="The published build being served.")
    worker_pid: int = Field(0, description="The worker process that answered.")
    rss_mib: float = Field(0.0, description="That worker's resident memory, in MiB.")


def passage_out(passage: Passage) -> PassageOut:
    """The public form of a passage (the same fields as `atmp-qa search --json`)."""
    return PassageOut.model_validate(passage.to_json())


def citation_out(citation: Citation) -> CitationOut:
    """The public form of a citation."""
    return CitationOut.model_validate(asdict(citation))


def answer_out(answer: Answer) -> AskResponse:
    """The public form of an answer."""
    return AskResponse(
        answer=answer.text,
        abstained=answer.abstained,
        citations=[citation_out(c) for c in answer.citations],
        related=[citation_out(c) for c in answer.related],
        caveats=list(answer.caveats),
        took_ms=answer.took_ms,
        index_build=answer.index_build,
        generator=answer.notes.get("generator"),
        generator_error=answer.notes.get("generator_error"),
    )


def document_out(record: DocumentRecord) -> DocumentOut:
    """The public form of a manifest entry (the file name, never the server's path)."""
    return DocumentOut(
        doc_id=record.doc_id,
        title=record.title,
        short_title=record.short_title,
        jurisdiction=record.jurisdiction,
        kind=record.kind,
        version_date=record.version_date,
        status=record.status,
        caveat=record.caveat,
        url=record.url,
        chunks=record.chunks,
        pages=record.pages,
        file_name=Path(record.source_path).name,
        origin=record.origin,
    )


def document_detail(record: DocumentRecord, chunks: list[Chunk]) -> DocumentDetail:
    """A document with its passages' places, in reading order."""
    sections = [
        SectionOut(
            chunk_id=c.chunk_id,
            section=c.section,
            heading=c.heading,
            heading_path=list(c.heading_path),
            page=c.page,
        )
        for c in chunks
    ]
    return DocumentDetail(**document_out(record).model_dump(), sections=sections)


def chunk_out(chunk: Chunk) -> ChunkOut:
    """The public form of a chunk."""
    return ChunkOut(
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        title=chunk.title,
        short_title=chunk.short_title,
        jurisdiction=chunk.jurisdiction,
        section=chunk.section,
        heading=chunk.heading,
        heading_path=list(chunk.heading_path),
        page=chunk.page,
        page_end=chunk.page_end,
        url=chunk.url,
        ordinal=chunk.ordinal,
        text=chunk.text,
        origin=chunk.origin,
    )


def passage_detail(chunk: Chunk, before: list[Chunk], after: list[Chunk]) -> PassageDetail:
    """A passage with its neighbours, each in its public form."""
    return PassageDetail(
        passage=chunk_out(chunk),
        before=[chunk_out(c) for c in before],
        after=[chunk_out(c) for c in after],
    )
