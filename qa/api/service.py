"""The service as the HTTP layer runs it: queries one at a time, on one thread.

Requests are handled on a thread pool of up to 40 threads, but a query is CPU-bound model
work that takes tens of milliseconds, and the model must not tokenize in two threads at once.
So every query runs on one dedicated worker thread, first come first served: the request
threads only wait for it. Besides keeping queries apart, this keeps memory flat under load:
when each of 40 request threads ran the model itself, every one of them got its own PyTorch
thread team and malloc arena, and the server grew from ~630 MiB to ~1.1 GiB under 32
concurrent clients. Background ingests embed with a model instance of their own on their own
thread (see `IngestJobs`), so a long ingest never holds queries up.
"""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from qa.answer import Answer
from qa.config import Settings
from qa.embed import Embedder
from qa.index import Index
from qa.pipeline import QA
from qa.retrieval.query import Query
from qa.retrieval.search import Filters, Passage, Weights

T = TypeVar("T")


class SerialQA(QA):
    """A `QA` whose queries run one at a time on one worker thread, so request threads can
    share it."""

    def __init__(self, settings: Settings, embedder: Embedder, index: Index) -> None:
        super().__init__(settings, embedder, index)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-query")
        self._worker_thread: int | None = None

    def _serially(self, work: Callable[[], T]) -> T:
        """Run `work` on the query thread (directly, when already on it) and return its result."""
        if threading.get_ident() == self._worker_thread:
            return work()
        return self._worker.submit(self._on_worker, work).result()

    def _on_worker(self, work: Callable[[], T]) -> T:
        self._worker_thread = threading.get_ident()
        return work()

    def search(
        self,
        query: str | Query,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        weights: Weights | None = None,
    ) -> list[Passage]:
        """`QA.search`, on the query thread."""
        parent = super().search
        return self._serially(lambda: parent(query, k=k, filters=filters, weights=weights))

    def prepare(
        self, question: str, *, top_k: int | None = None, filters: Filters | None = None
    ) -> Answer:
        """`QA.prepare` (retrieval and the extractive answer), on the query thread; a model
        call that follows runs on the request's thread, so it never holds other queries up."""
        parent = super().prepare
        return self._serially(lambda: parent(question, top_k=top_k, filters=filters))
