"""The app factory and error mapping, plus the API over the whole shared corpus.

Also the helpers the other `test_api_*` files share: a small real index built from the
mini corpus with the real model, a TestClient over it, and a live uvicorn on loopback.
"""

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_info

from qa.api import create_app
from qa.api.app import status_for
from qa.api.errors import (
    AdminDisabledError,
    ConflictError,
    NotFoundError,
    NotReadyError,
    UnauthorizedError,
    UnsupportedTypeError,
    UploadError,
    UploadTooLargeError,
)
from qa.api.service import load_service
from qa.config import Settings
from qa.embed import Embedder
from qa.errors import IndexMismatchError, IndexNotFoundError, IngestError, QAError, ReadError
from qa.pipeline import ingest

from .conftest import DATA, make_settings

TRACEABILITY = "How long must traceability records be kept?"


def mini_settings(root: Path, embedder: Embedder, **overrides: Any) -> Settings:
    """A copy of the mini corpus under `root`, indexed with the real model."""
    shutil.copytree(DATA / "mini", root / "corpus")
    settings = make_settings(root, **overrides)
    ingest(settings, embedder=embedder)
    return settings


def mini_app(settings: Settings, embedder: Embedder) -> FastAPI:
    """The app over an index built by `mini_settings`, sharing the loaded model."""
    return create_app(settings, qa=load_service(settings, embedder=embedder))


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    with running(config):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def running(config: uvicorn.Config) -> Iterator[None]:
    """Run a uvicorn server in a thread until the block ends."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def error_fields(response: Any) -> set[str]:
    """The field names a 422 response's `errors` point at."""
    return {str(part) for error in response.json()["errors"] for part in error["loc"]}


# -- error mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (QAError, 400),
        (UploadError, 400),
        (UnauthorizedError, 401),
        (AdminDisabledError, 403),
        (NotFoundError, 404),
        (ConflictError, 409),
        (IngestError, 409),
        (UploadTooLargeError, 413),
        (UnsupportedTypeError, 415),
        (ReadError, 422),
        (NotReadyError, 503),
        (IndexNotFoundError, 503),
        (IndexMismatchError, 503),
    ],
)
def test_each_domain_error_has_one_status(error: type[QAError], status: int) -> None:
    assert status_for(error("x")) == status


def test_an_unlisted_subclass_takes_its_base_status() -> None:
    class TinyUpload(UploadTooLargeError):
        pass

    assert status_for(TinyUpload("x")) == 413


def test_app_refuses_to_start_without_an_index(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(IndexNotFoundError), TestClient(create_app(settings)):
        pass


def blas_threads() -> list[int]:
    """Threads of each process-wide BLAS pool (numpy's OpenBLAS; an OpenMP-built one, as
    faiss bundles, keeps a count per thread, so this thread cannot see the server's)."""
    return [
        pool["num_threads"]
        for pool in threadpool_info()
        if pool["user_api"] == "blas" and pool.get("threading_layer") != "openmp"
    ]


def test_a_serving_app_uses_one_blas_thread_and_restores_the_default(
    tmp_path: Path, embedder: Embedder
) -> None:
    """numpy's BLAS would share each question's matrix-vector product out over every core,
    its threads spinning against ONNX Runtime's (QA_BLAS_THREADS)."""
    app = mini_app(mini_settings(tmp_path, embedder), embedder)
    before = blas_threads()
    if not before or max(before) == 1:
        pytest.skip("numpy's BLAS runs one thread here already (one core)")
    with TestClient(app) as client:
        assert blas_threads() == [1] * len(before)
        assert client.post("/ask", json={"question": TRACEABILITY}).status_code == 200
    assert blas_threads() == before
    # An app that fails to start leaves the limits as they were too.
    with pytest.raises(IndexNotFoundError), TestClient(create_app(make_settings(tmp_path / "x"))):
        pass
    assert blas_threads() == before


def test_ready_is_503_with_a_sentence_until_the_index_is_loaded(tmp_path: Path) -> None:
    client = TestClient(create_app(make_settings(tmp_path)))  # lifespan not run: nothing loaded
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The index is not loaded yet; retry when GET /ready answers 200."
    }
    assert client.get("/health").status_code == 200


# -- the whole shared corpus ----------------------------------------------------------------


@pytest.fixture(scope="module")
def client(real_index: Settings, embedder: Embedder) -> Iterator[TestClient]:
    with TestClient(mini_app(real_index, embedder)) as test_client:
        yield test_client


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_search(client: TestClient) -> None:
    response = client.get(
        "/search", params={"q": "How long must traceability data for an ATMP be kept?", "k": 3}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert any(
        r["doc_id"] == "32007R1394" and r["section"].startswith("Article 15") for r in results
    )


def test_ask_cites_the_traceability_article(client: TestClient) -> None:
    response = client.post(
        "/ask", json={"question": "How long must traceability data for an ATMP be kept?"}
    )
    assert response.status_code == 200
    body = response.json()
    assert not body["abstained"] and "30 years" in body["answer"]
    assert any(
        c["doc_id"] == "32007R1394" and c["section"].startswith("Article 15")
        for c in body["citations"]
    )


def test_ready_describes_the_whole_corpus(client: TestClient) -> None:
    body = client.get("/ready").json()
    assert body["status"] == "ready" and body["documents"] == 19 and body["chunks"] > 1000


def test_documents_show_each_texts_version_status(client: TestClient) -> None:
    docs = {d["doc_id"]: d for d in client.get("/documents").json()["documents"]}
    assert len(docs) == 19 and all(d["status"] and "caveat" in d for d in docs.values())
    hmr = docs["uksi-2012-1916"]
    assert hmr["status"] == "excerpt" and hmr["caveat"].startswith("HMR 2012: excerpts")
    assert docs["32006R0507"]["status"] == "current" and docs["32006R0507"]["caveat"] == ""
    detail = client.get("/documents/32007R1394").json()
    assert detail["status"] == "not-current" and "2012-07-02" in detail["caveat"]
    assert detail["sections"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x", "k": 0}, "k"),
        ({"q": "x", "k": "many"}, "k"),
        ({"q": "x", "jurisdiction": "FR"}, "jurisdiction"),
        ({}, "q"),
    ],
)
def test_search_bad_input_is_422_naming_the_field(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 422
    assert field in error_fields(response)
    assert response.json()["detail"].startswith(f"Invalid request: {field}")
