"""The service as the HTTP layer, MCP and the workers run it: queries in parallel threads,
their embeddings micro-batched.

Requests are handled on the server's thread pool; each runs retrieval and answer composition
on its own thread, through `QA`'s first-come, first-served gate (`qa.gate`; `QA` is safe to
share: a query reads one snapshot of the index, see `QA.prepare`). The question's embedding,
computed before the gate, goes through `BatchingEmbedder`, so one model call
serves every query waiting at that moment and only one thread ever runs the model: memory
stays flat under load (when 40 request threads each ran torch, every one got its own thread
team and malloc arena, and the server grew from ~630 MiB to ~1.1 GiB under 32 clients).
Background ingests embed with a model instance of their own (see `IngestJobs`), so a long
ingest never holds queries up.
"""

from qa.batching import BatchingEmbedder
from qa.config import Settings
from qa.embed import Embedder
from qa.pipeline import QA, load_embedder


def load_service(settings: Settings, *, embedder: Embedder | None = None) -> QA:
    """The loaded service, its query embeddings batched across request threads."""
    batching = BatchingEmbedder(
        embedder or load_embedder(settings), window_s=settings.embed_batch_window_ms / 1000
    )
    return QA.from_settings(settings, embedder=batching)
