"""`POST /ask` latency over HTTP: a live uvicorn on loopback, the small real index."""

import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from qa.embed import Embedder

from .test_api import live_server, mini_app, mini_settings

SUBJECTS = [
    "traceability records",
    "the licence for exempt products",
    "batch records",
    "serious adverse reactions",
    "the product name and batch number",
    "somatic cell therapy products made in hospitals",
    "release testing of cell-based products",
    "entry into force of the regulation",
    "the patient who received each product",
    "blood transfusions and organ transplants",
]
TEMPLATES = [
    "What do the rules say about {}?",
    "How long must {} be kept?",
    "Who is responsible for {}?",
]
QUESTIONS = [t.format(s) for t in TEMPLATES for s in SUBJECTS]  # 30, all different


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[str]:
    settings = mini_settings(tmp_path_factory.mktemp("latency"), embedder)
    with live_server(mini_app(settings, embedder)) as url:
        yield url


def test_ask_p50_over_http(base_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    timings: list[float] = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        client.post("/ask", json={"question": "warm the connection"})
        for question in QUESTIONS:
            started = time.perf_counter()
            response = client.post("/ask", json={"question": question})
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    p50 = statistics.median(timings)
    p90 = statistics.quantiles(timings, n=10)[-1]
    with capsys.disabled():
        print(f"\n/ask over HTTP, {len(timings)} requests: p50 {p50:.1f} ms, p90 {p90:.1f} ms")
    assert p50 < 1000, f"/ask p50 is {p50:.0f} ms"


def test_concurrent_asks_all_succeed(base_url: str) -> None:
    def ask(question: str) -> int:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.post("/ask", json={"question": question}).status_code

    # More distinct questions than the retriever caches vectors for, from 8 threads at once.
    questions = [f"{q} Case {i}." for i, q in enumerate(QUESTIONS * 3)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(ask, questions))
    assert statuses == [200] * len(questions)
