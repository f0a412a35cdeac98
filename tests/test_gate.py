"""The first-come, first-served query gate (issue 12, point 3), with real threads, and the
service behind it: a worker composes one answer at a time, in arrival order, while the
questions' embeddings are still batched across every waiting request."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qa.api.service import load_service
from qa.embed import Embedder
from qa.gate import FifoGate

from .test_api import mini_settings
from .test_batching import QUESTIONS, CountingGate


def wait_for(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_waiting_threads_enter_in_the_order_they_arrived() -> None:
    gate = FifoGate(1)
    entered: list[int] = []
    leave = [threading.Event() for _ in range(6)]

    def visit(n: int) -> None:
        with gate:
            entered.append(n)
            assert leave[n].wait(10)

    threads = [threading.Thread(target=visit, args=(n,)) for n in range(6)]
    for n, thread in enumerate(threads):
        thread.start()  # 0 goes in; 1–5 queue behind it, one after another
        wait_for(lambda n=n: gate.waiting == n and entered == [0])
    for n in range(6):
        leave[n].set()
        wait_for(lambda n=n: len(entered) == min(n + 2, 6))
    for thread in threads:
        thread.join(10)
    assert entered == [0, 1, 2, 3, 4, 5]
    assert gate.waiting == 0


def test_no_more_than_the_limit_are_inside_at_once() -> None:
    gate = FifoGate(2)
    inside, most = 0, 0
    count = threading.Lock()

    def visit(_: int) -> None:
        nonlocal inside, most
        with gate:
            with count:
                inside += 1
                most = max(most, inside)
            time.sleep(0.02)
            with count:
                inside -= 1

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(visit, range(16)))
    assert most == 2 and inside == 0


def test_a_gate_without_a_limit_lets_everyone_in_and_a_zero_limit_is_refused() -> None:
    gate = FifoGate(None)
    together = threading.Barrier(6, timeout=10)  # breaks (raises) if any were held back

    def visit(_: int) -> None:
        with gate:
            together.wait()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(visit, range(6)))
    with pytest.raises(ValueError, match="at least one slot"):
        FifoGate(0)


def test_an_exception_inside_hands_the_turn_on() -> None:
    gate = FifoGate(1)
    with pytest.raises(RuntimeError), gate:
        raise RuntimeError("a failed query")
    done = threading.Event()
    threading.Thread(target=lambda: (gate.__enter__(), done.set())).start()
    assert done.wait(5), "the gate stayed shut after an exception"


def test_the_service_answers_one_at_a_time_with_the_embeddings_still_batched(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = mini_settings(tmp_path, embedder, query_concurrency=1)
    alone = {q: load_service(settings, embedder=embedder).ask(q).text for q in QUESTIONS[:8]}
    model = CountingGate(embedder)
    service = load_service(settings, embedder=model)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(service.ask, q) for q in QUESTIONS[:8]]
        # Every question reaches the model before any answer is composed, so they batch.
        threading.Timer(0.5, model.gate.set).start()
        answers = [f.result(60).text for f in futures]
    assert answers == [alone[q] for q in QUESTIONS[:8]]
    assert sum(model.calls) == 8 and len(model.calls) <= 3, model.calls
