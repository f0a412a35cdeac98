"""Micro-batching: concurrent queries' embeddings computed in one model call.

Request threads run retrieval and answer composition side by side; only the embedding of the
question goes through `BatchingEmbedder`, whose one batching thread takes the first waiting
question, everything else that is waiting (optionally after a short window), embeds them
together and hands each thread its vector. Alone, a query is embedded at once; under load, the
questions that arrive while a batch is in the model form the next batch, so one call serves
many. Only this thread calls the model, so the process keeps one set of model threads and
buffers however many requests are in flight.
"""

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from qa.embed import Embedder, ProgressFn


class BatchingEmbedder:
    """Wraps an `Embedder`: single-text calls from many threads are embedded in batches; other
    calls (an ingest's passages) go straight to the model."""

    def __init__(self, inner: Embedder, *, window_s: float = 0.0, max_batch: int = 64) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.window_s = window_s
        self.max_batch = max_batch
        self.batches = 0  # model calls made for queries (for tests and the benchmark)
        self.batched = 0  # queries embedded
        self._waiting: queue.SimpleQueue[tuple[str, Future[np.ndarray]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self.inner.dim

    def word_pieces(self, word: str) -> int:
        """How many pieces the model's tokenizer cuts a word into."""
        return self.inner.word_pieces(word)

    def embed(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        """One text: embedded with whatever else is waiting; several: directly."""
        if len(texts) != 1 or progress is not None:
            return self.inner.embed(texts, progress=progress)
        future: Future[np.ndarray] = Future()
        self._waiting.put((texts[0], future))
        self._ensure_started()
        return future.result()[None, :]

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="embed-batcher", daemon=True
                    )
                    self._thread.start()

    def _take_batch(self) -> list[tuple[str, Future[np.ndarray]]]:
        batch = [self._waiting.get()]
        deadline = time.monotonic() + self.window_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    batch.append(self._waiting.get(timeout=remaining))
                else:
                    batch.append(self._waiting.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            try:
                vectors = self.inner.embed([text for text, _ in batch])
            except BaseException as ex:  # every waiting request gets the error, none hangs
                for _, future in batch:
                    future.set_exception(ex)
                continue
            self.batches += 1
            self.batched += len(batch)
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(vector)
