"""Composition root: the only place that turns `Settings` into working components."""

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa.answer import Answer, abstain, compose_answer, evidence_strength
from qa.config import Settings
from qa.embed import Embedder, ProgressFn, SentenceTransformerEmbedder
from qa.errors import SourceError, UnknownDocumentError
from qa.gate import FifoGate
from qa.generate import AnswerStream, ChatModel, generate_answer
from qa.index import DenseOptions, Index
from qa.ingest import ChunkSettings, IngestReport, build_index
from qa.onnx_embed import OnnxEmbedder
from qa.parsing import ParseLimits
from qa.refusal import refusal_reason
from qa.retrieval.query import Query
from qa.retrieval.references import NamedAct
from qa.retrieval.search import Filters, Passage, Retriever, Weights
from qa.sources import Source, load_sources, sources_by_id


def load_embedder(settings: Settings) -> Embedder:
    """The configured model (the bundled MiniLM by default) on the configured runtime."""
    if settings.embedder_runtime == "torch":
        return SentenceTransformerEmbedder(
            settings.model_path, batch_size=settings.embed_batch_size or 32
        )
    return OnnxEmbedder(
        settings.model_path,
        cache_dir=settings.resolved_model_cache_dir,
        variant=settings.onnx_variant,
        batch_size=settings.embed_batch_size or 4,
        threads=settings.embed_threads,
    )


def dense_options(settings: Settings) -> DenseOptions:
    """How the loaded index searches its vectors (QA_DENSE_INDEX and its knobs)."""
    return DenseOptions(
        kind=settings.dense_index,
        hnsw_m=settings.hnsw_m,
        hnsw_ef_search=settings.hnsw_ef_search,
        candidates=settings.dense_candidates,
    )


def load_source_map(settings: Settings) -> dict[str, Source]:
    """Sources by id, or an empty map when the manifest is absent."""
    path = settings.resolved_sources_file
    if not path.exists():
        return {}
    return sources_by_id(load_sources(path))


def unindexed_sources(settings: Settings, index: Index) -> list[NamedAct]:
    """The texts sources.toml lists that the index does not hold, with their official URL,
    so a question naming one is refused with a sentence naming it."""
    try:
        sources = load_source_map(settings)
    except SourceError:
        return []
    return [
        NamedAct(s.short_title, s.url, tuple(s.aliases))
        for s in sources.values()
        if s.id not in index.manifest.documents
    ]


def load_chat_model(settings: Settings) -> ChatModel | None:
    """The configured OpenAI-compatible model, or None when answers stay extractive."""
    if not settings.llm_base_url or not settings.llm_model:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return ChatModel(
        settings.llm_base_url,
        model=settings.llm_model,
        api_key=key,
        timeout_s=settings.llm_timeout_s,
        max_tokens=settings.llm_max_tokens,
    )


def ingest(
    settings: Settings,
    paths: Sequence[Path] | None = None,
    *,
    rebuild: bool = False,
    embedder: Embedder | None = None,
    on_embed_start: Callable[[int], ProgressFn | None] | None = None,
) -> IngestReport:
    """Build or update the index from `paths` (default: the corpus directory).

    A sources.toml that exists but cannot be read is an error (`SourceError`): indexing
    without it would pass official texts off as local files, and local files as nothing.
    """
    sources = load_source_map(settings)
    return build_index(
        list(paths) if paths else [settings.corpus_dir],
        index_dir=settings.index_dir,
        embedder=embedder or load_embedder(settings),
        chunking=ChunkSettings(settings.chunk_max_chars, settings.chunk_min_chars),
        sources=sources,
        rebuild=rebuild,
        on_embed_start=on_embed_start,
        corpus_dir=settings.corpus_dir,
        limits=parse_limits(settings),
    )


def parse_limits(settings: Settings) -> ParseLimits:
    """What reading and chunking one document may cost."""
    return ParseLimits(settings.ingest_doc_timeout_s, settings.ingest_doc_memory_mb * 1024**2)


class QA:
    """The loaded service: an embedder plus the current index, swappable at run time."""

    def __init__(self, settings: Settings, embedder: Embedder, index: Index) -> None:
        self.settings = settings
        self.embedder = embedder
        self._retriever = Retriever(index, embedder, unindexed=unindexed_sources(settings, index))
        self._lock = threading.Lock()
        # Queries are worked on `query_concurrency` at a time, first come, first served.
        self._gate = FifoGate(settings.query_concurrency or None)
        self.weights = settings.retrieval
        self.chat_model = load_chat_model(settings)

    @classmethod
    def from_settings(cls, settings: Settings, *, embedder: Embedder | None = None) -> "QA":
        """Load the model and the index named by the settings."""
        embedder = embedder or load_embedder(settings)
        index = Index.load(
            settings.index_dir,
            model=embedder.model_name,
            dim=embedder.dim,
            dense=dense_options(settings),
        )
        return cls(settings, embedder, index)

    @property
    def index(self) -> Index:
        """The index queries currently run against."""
        return self._retriever.index

    def reload(self) -> None:
        """Load the newest published index and switch to it; queries in flight finish on the old."""
        fresh = Index.load(
            self.settings.index_dir,
            model=self.embedder.model_name,
            dim=self.embedder.dim,
            dense=dense_options(self.settings),
        )
        retriever = Retriever(
            fresh, self.embedder, unindexed=unindexed_sources(self.settings, fresh)
        )
        with self._lock:
            self._retriever = retriever

    def check_filters(self, filters: Filters | None) -> None:
        """Refuse a filter naming documents the index does not hold (it would match nothing)."""
        if filters is None:
            return
        unknown = sorted(filters.doc_ids - set(self._retriever.index.manifest.documents))
        if unknown:
            names = ", ".join(unknown)
            raise UnknownDocumentError(
                f"Unknown document id{'s' if len(unknown) > 1 else ''}: {names}; "
                "GET /documents (or `atmp-qa docs`) lists the indexed ones."
            )

    def analyse(self, question: str) -> Query:
        """The question as retrieval and answering read it (see `qa.retrieval.query`)."""
        return self._retriever.analyse(question)

    def search(
        self,
        query: str | Query,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        weights: Weights | None = None,
    ) -> list[Passage]:
        """The passages that best match `query` (hybrid retrieval), best first."""
        self.check_filters(filters)
        retriever = self._retriever
        text = query.text if isinstance(query, Query) else query
        vector = retriever.query_vector(text)  # before the gate: waiting questions batch
        with self._gate:
            return retriever.search(
                query,
                k=k or self.settings.search_k,
                filters=filters,
                weights=weights or self.weights,
                vector=vector,
            )

    def warm_up(self) -> None:
        """Run one query end to end so the first real request is not slow (no model call)."""
        self.prepare("How long must traceability data be kept?")
        self.embedder.word_pieces("warm-up")

    def ask(
        self, question: str, *, top_k: int | None = None, filters: Filters | None = None
    ) -> Answer:
        """Answer from the indexed documents with checked citations, or abstain.

        With a chat model configured, the answer is generated from the passages (the extractive
        answer when the model fails or cites nothing); abstentions never call the model.
        """
        started = time.perf_counter()
        draft = self.prepare(question, top_k=top_k, filters=filters)
        if self.chat_model is None:
            return draft
        if draft.abstained:
            return replace(draft, notes={**draft.notes, "generator": "extractive"})
        answer = generate_answer(
            self.chat_model, draft, passage_chars=self.settings.llm_passage_chars
        )
        return replace(answer, took_ms=round((time.perf_counter() - started) * 1000, 2))

    def ask_stream(
        self, question: str, *, top_k: int | None = None, filters: Filters | None = None
    ) -> AnswerStream:
        """`ask`, with the generated text streamed as the model writes it (iterate once)."""
        started = time.perf_counter()
        if self.chat_model is None:
            return AnswerStream(self.ask(question, top_k=top_k, filters=filters))
        draft = self.prepare(question, top_k=top_k, filters=filters)
        if draft.abstained:
            draft = replace(draft, notes={**draft.notes, "generator": "extractive"})
        return AnswerStream(
            draft,
            self.chat_model,
            passage_chars=self.settings.llm_passage_chars,
            started=started,
        )

    def prepare(
        self, question: str, *, top_k: int | None = None, filters: Filters | None = None
    ) -> Answer:
        """The extractive answer or the abstention: retrieval and sentence choice, no model call."""
        started = time.perf_counter()
        self.check_filters(filters)
        retriever = self._retriever
        vector = retriever.query_vector(question)  # before the gate: waiting questions batch
        with self._gate:
            query = retriever.analyse(question)
            passages = retriever.search(
                query,
                k=top_k or self.settings.search_k,
                filters=filters,
                weights=self.weights,
                vector=vector,
            )
            return self._answer(retriever, query, passages, vector, started)

    def _answer(
        self,
        retriever: Retriever,
        query: Query,
        passages: list[Passage],
        vector: np.ndarray,
        started: float,
    ) -> Answer:
        """The answer composed from the passages, or the abstention with its reason."""
        question = query.text
        idf = retriever.index.lexical.idf
        evidence = evidence_strength(question, passages, idf)
        reason = refusal_reason(
            query,
            passages,
            evidence,
            abstain_below=self.settings.abstain_below,
            strong_evidence=self.settings.strong_evidence,
            rare_word_evidence=self.settings.rare_word_evidence,
            topicality=retriever.topicality(vector),  # the vector retrieval used: no new call
            off_topic_below=self.settings.off_topic_below,
        )
        if reason is not None:
            answer = abstain(question, passages, evidence, reason)
        else:
            records = retriever.index.manifest.documents
            answer = compose_answer(
                query,
                passages,
                idf=idf,
                caveat_of=lambda doc_id: records[doc_id].caveat if doc_id in records else "",
            )
        took_ms = round((time.perf_counter() - started) * 1000, 2)
        build = retriever.index.path.name if retriever.index.path is not None else ""
        return replace(answer, took_ms=took_ms, evidence=round(evidence, 4), index_build=build)
