"""Micro-batching of query embeddings (issue 12, point 3), with the real model and real threads.

Concurrent questions are embedded in fewer model calls than questions, each thread gets its
own question's vector, a lone question is not delayed, and a model failure reaches every
waiting request instead of hanging it.
"""

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from qa.api.service import load_service
from qa.batching import BatchingEmbedder
from qa.embed import Embedder, ProgressFn

from .test_api import mini_settings
from .test_api_jobs import GatedEmbedder

QUESTIONS = [f"How long must traceability data for product {n} be kept?" for n in range(24)]


class CountingGate(GatedEmbedder):
    """The gated real model, counting the texts of each call that gets through."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner)
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        vectors = super().embed(texts, progress=progress)
        self.calls.append(len(texts))
        return vectors


def test_concurrent_questions_share_model_calls(embedder: Embedder) -> None:
    gated = CountingGate(embedder)
    batching = BatchingEmbedder(gated)
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        futures = [pool.submit(batching.embed, [q]) for q in QUESTIONS]
        # The first question is in the model; the others wait for it, then go in together.
        threading.Timer(0.5, gated.gate.set).start()
        vectors = np.vstack([f.result(30) for f in futures])
    assert sum(gated.calls) == len(QUESTIONS)
    assert len(gated.calls) < len(QUESTIONS) / 2, gated.calls
    assert batching.batches == len(gated.calls) and batching.batched == len(QUESTIONS)
    assert np.allclose(vectors, embedder.embed(QUESTIONS), atol=1e-5)


def test_a_lone_question_goes_straight_in(embedder: Embedder) -> None:
    batching = BatchingEmbedder(embedder)
    for question in QUESTIONS[:3]:
        assert np.allclose(batching.embed([question])[0], embedder.embed([question])[0], atol=1e-5)
    assert batching.batches == 3
    # Several texts at once (an ingest) are not queued behind queries.
    assert batching.embed(QUESTIONS[:5]).shape == (5, 384) and batching.batches == 3


def test_a_model_failure_reaches_every_waiting_question(embedder: Embedder) -> None:
    broken = GatedEmbedder(embedder, fail=True)
    batching = BatchingEmbedder(broken)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(batching.embed, [q]) for q in QUESTIONS[:8]]
        broken.gate.set()
        for future in futures:
            with pytest.raises(RuntimeError, match="boom"):
                future.result(30)
    broken.fail = False
    assert batching.embed(["still working?"]).shape == (1, 384)


def test_the_service_answers_in_parallel_threads_with_batched_embeddings(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = mini_settings(tmp_path, embedder)
    service = load_service(settings, embedder=embedder)
    assert isinstance(service.embedder, BatchingEmbedder)
    alone = {q: service.ask(q).text for q in QUESTIONS[:6]}
    threads: set[str] = set()

    def ask(question: str) -> str:
        threads.add(threading.current_thread().name)
        return service.ask(question + " ").text  # a new text: not the retriever's cached vector

    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(ask, QUESTIONS[:6] * 2))
    assert together == [alone[q] for q in QUESTIONS[:6] * 2]
    assert len(threads) > 1
