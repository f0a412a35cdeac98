"""Composition root: the only place that turns `Settings` into working components."""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.chunking import Chunk
from qa.config import Settings
from qa.embed import Embedder, ProgressFn, SentenceTransformerEmbedder
from qa.errors import SourceError
from qa.index import Index
from qa.ingest import ChunkSettings, IngestReport, build_index
from qa.sources import Source, load_sources, sources_by_id


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its rank and score."""

    rank: int
    score: float
    chunk: Chunk


def load_embedder(settings: Settings) -> Embedder:
    """The configured sentence-transformers model (the bundled MiniLM by default)."""
    return SentenceTransformerEmbedder(settings.model_path, batch_size=settings.embed_batch_size)


def load_source_map(settings: Settings) -> dict[str, Source]:
    """Sources by id, or an empty map when the manifest is absent."""
    path = settings.resolved_sources_file
    if not path.exists():
        return {}
    return sources_by_id(load_sources(path))


def ingest(
    settings: Settings,
    paths: Sequence[Path] | None = None,
    *,
    rebuild: bool = False,
    embedder: Embedder | None = None,
    on_embed_start: Callable[[int], ProgressFn | None] | None = None,
) -> IngestReport:
    """Build or update the index from `paths` (default: the corpus directory)."""
    try:
        sources = load_source_map(settings)
    except SourceError:
        sources = {}  # metadata only: documents still index with their own titles
    return build_index(
        list(paths) if paths else [settings.corpus_dir],
        index_dir=settings.index_dir,
        embedder=embedder or load_embedder(settings),
        chunking=ChunkSettings(settings.chunk_max_chars, settings.chunk_min_chars),
        sources=sources,
        rebuild=rebuild,
        on_embed_start=on_embed_start,
    )


class QA:
    """The loaded service: an embedder plus the current index, swappable at run time."""

    def __init__(self, settings: Settings, embedder: Embedder, index: Index) -> None:
        self.settings = settings
        self.embedder = embedder
        self._index = index
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, embedder: Embedder | None = None) -> "QA":
        """Load the model and the index named by the settings."""
        embedder = embedder or load_embedder(settings)
        index = Index.load(settings.index_dir, model=embedder.model_name, dim=embedder.dim)
        return cls(settings, embedder, index)

    @property
    def index(self) -> Index:
        """The index queries currently run against."""
        return self._index

    def reload(self) -> None:
        """Load the newest published index and switch to it; queries in flight finish on the old."""
        fresh = Index.load(
            self.settings.index_dir, model=self.embedder.model_name, dim=self.embedder.dim
        )
        with self._lock:
            self._index = fresh

    def search(self, query: str, *, k: int | None = None) -> list[Passage]:
        """Passages most similar to `query`, best first."""
        index = self._index
        vector = self.embedder.embed([query])[0]
        hits = index.search(vector, k or self.settings.search_k)
        return [Passage(rank=i + 1, score=s, chunk=c) for i, (c, s) in enumerate(hits)]
