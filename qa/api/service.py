"""The service as the HTTP layer runs it: queries one at a time, ingests on their own model.

Requests are handled on a thread pool, but a Hugging Face fast tokenizer must not be used by two
threads at once (it fails with "expected sequence of length …"), and the retriever's cache of
query vectors is a plain dict. A query takes tens of milliseconds, so running them one at a time
costs little; background ingests embed with a model instance of their own (see `IngestJobs`),
so a long ingest never holds queries up.
"""

import threading

from qa.answer import Answer
from qa.config import Settings
from qa.embed import Embedder
from qa.index import Index
from qa.pipeline import QA
from qa.retrieve import Filters, Passage, Weights


class SerialQA(QA):
    """A `QA` whose queries run one at a time, so request threads can share it."""

    def __init__(self, settings: Settings, embedder: Embedder, index: Index) -> None:
        super().__init__(settings, embedder, index)
        self._query_lock = threading.RLock()

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        weights: Weights | None = None,
    ) -> list[Passage]:
        """`QA.search`, one caller at a time."""
        with self._query_lock:
            return super().search(query, k=k, filters=filters, weights=weights)

    def ask(
        self, question: str, *, top_k: int | None = None, filters: Filters | None = None
    ) -> Answer:
        """`QA.ask`, one caller at a time."""
        with self._query_lock:
            return super().ask(question, top_k=top_k, filters=filters)
